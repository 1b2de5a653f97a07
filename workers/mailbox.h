/* A worker's mailbox: a multi-producer, single-consumer queue of mail.
 *
 * Producers (any thread) push with one compare-and-swap onto a stack; the
 * consumer (the owning worker) takes the whole stack with one exchange and
 * reverses it, which gives every producer's mail back in the order that
 * producer pushed it. No locks, and no ABA problem because the consumer
 * never pops single nodes. The ev_async doorbell carries no data: push
 * tells the caller whether the box was empty, and only then must it ring,
 * because a non-empty box has a ring pending already. */
#ifndef PC_WORKERS_MAILBOX_H
#define PC_WORKERS_MAILBOX_H

#include <stdatomic.h>
#include <stdbool.h>

#include "percore/percore.h"

struct pc_config;

enum pc_mail_kind {
    PC_MAIL_CONN,  /* an accepted socket to adopt: fd, listener (slot) */
    PC_MAIL_MSG,   /* a module message: msg */
    PC_MAIL_DRAIN, /* stop accepting and finish connections */
    PC_MAIL_RELOAD,/* a new config and listener set: cfg, fds */
    PC_MAIL_STOP,  /* every worker has drained: leave the loop */
};

struct pc_mail {
    struct pc_mail *next;
    enum pc_mail_kind kind;
    int fd;
    unsigned listener;
    struct pc_msg *msg;
    const struct pc_config *cfg; /* PC_MAIL_RELOAD: the new settings */
    /* PC_MAIL_RELOAD: this worker's reuseport socket per slot (-1: none),
     * PC_MAX_SLOTS of them, the receiver's to free; the listener's
     * sockets_generation says whether it is a new one. */
    int *fds;
};

struct pc_mailbox {
    _Atomic(struct pc_mail *) top;
};

void pc_mailbox_init(struct pc_mailbox *mb);
/* Any thread. Ownership of m passes to the mailbox. Returns true if the
 * mailbox was empty: the caller must then wake the consumer. */
bool pc_mailbox_push(struct pc_mailbox *mb, struct pc_mail *m);
/* Consumer thread only. Everything queued so far, oldest first per
 * producer, as a list the caller now owns; NULL if empty. */
struct pc_mail *pc_mailbox_take(struct pc_mailbox *mb);

#endif
