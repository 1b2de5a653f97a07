/* The slot engine of the modes that open a new connection per exchange
 * (churn, handshake): each of a thread's `count` slots connects, hands the
 * connection to the mode's step, and once the mode says the exchange is
 * complete counts its latency (connect() to completion), closes (the
 * client first, as a web client would) and starts over until its quota
 * or the phase ends it. A failure is counted and the slot waits a little
 * before it tries again. Everything here runs on the slot's load thread. */
#ifndef PCB_SLOTS_H
#define PCB_SLOTS_H

#include <stddef.h>

#include "bench.h"

struct pcb_slot;

/* The mode's part. Every hook runs on the load thread, with the slot
 * connected (busy) unless said otherwise. */
struct pcb_slot_ops {
    /* The TCP connect succeeded (opened and open already counted): start
     * the exchange. */
    void (*connected)(struct pcb_slot *sl);
    /* The socket's watcher fired. */
    void (*io)(struct pcb_slot *sl, int revents);
    /* The timer the mode set with pcb_slot_timer ran out. May be NULL if
     * the mode sets none. */
    void (*timeout)(struct pcb_slot *sl);
    /* In pcb_slot_complete, before the close: keep what the next
     * connection needs (the stream is still open). May be NULL. */
    void (*complete)(struct pcb_slot *sl);
    /* In pcb_slots_fini: free what the slot's data holds. May be NULL. */
    void (*release)(struct pcb_slot *sl);
};

struct pcb_slot {
    struct pcb_stream s;
    ev_timer timer; /* the backoff after a failure, or the mode's wait */
    struct pcb_slots *set;
    bool busy;      /* a connection is in progress */
    bool connected; /* its TCP connect succeeded */
    bool finished;  /* will start no more */
    unsigned index; /* the connection number, for quota and pattern */
    uint64_t begun, quota, started;
    void *data; /* the mode's per-slot state (data_size bytes), or NULL */
};

/* A thread's slots; t->mode points at it. */
struct pcb_slots {
    struct pcb_thread *t;
    const struct pcb_slot_ops *ops;
    struct pcb_slot *slots;
    unsigned char *data; /* count * data_size bytes, zeroed */
    unsigned finished;
};

/* A mode's setup: t->count slots with data_size zeroed bytes each for the
 * mode (0 for none), stored in t->mode; the thread is ready at once (every
 * connection is new). -1 if out of memory (pcb_slots_fini still frees what
 * was made). `ops` must outlive the run. */
int pcb_slots_setup(struct pcb_thread *t, const struct pcb_slot_ops *ops,
                    size_t data_size);
/* A mode's phase hook: starts the slots at PCB_WARMUP, finishes idle ones
 * at PCB_STOP, closes busy ones as lost at PCB_QUIT. */
void pcb_slots_phase(struct pcb_thread *t);
/* A mode's fini hook: releases each slot's data, frees the slots. */
void pcb_slots_fini(struct pcb_thread *t);

/* The mode's exchange is complete: counts the latency, a message and
 * cfg->size bytes if measuring, calls ops->complete, closes and starts
 * the next connection. */
void pcb_slot_complete(struct pcb_slot *sl);
/* Counts error e, closes, and tries again after a short backoff (a
 * refusing server must not turn the load generator into a busy loop). */
void pcb_slot_fail(struct pcb_slot *sl, enum pcb_error e);
/* The echo of cfg->size bytes both modes may make on a connection:
 * pcb_slot_echo_start queues it and starts sending; pcb_slot_echo_io, from
 * the mode's io hook, reads and checks what came back, calls echoed(sl)
 * once all of it is in and otherwise sends what is still queued. A
 * failure is pcb_slot_fail's. */
void pcb_slot_echo_start(struct pcb_slot *sl);
void pcb_slot_echo_io(struct pcb_slot *sl, int revents,
                      void (*echoed)(struct pcb_slot *sl));
/* Starts (or restarts) the slot's timer: ops->timeout runs after `seconds`
 * unless the connection ends first. */
void pcb_slot_timer(struct pcb_slot *sl, double seconds);

#endif
