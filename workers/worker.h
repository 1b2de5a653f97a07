/* Worker threads: one libev loop each, pinned to one CPU, owning the
 * connections it accepted or was handed. Everything in struct pc_worker is
 * touched only by its own thread, except where a field says otherwise. */
#ifndef PC_WORKERS_WORKER_H
#define PC_WORKERS_WORKER_H

#include <ev.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/config.h"
#include "percore/percore.h"
#include "workers/mailbox.h"
#include "workers/outq.h"
#include "workers/stats.h"
#include "workers/tls.h"

struct pc_server;

/* One listener as seen by one worker: the module instance, the accept
 * watcher (reuseport), and the connections ordered by last activity.
 * Each worker has one per slot (PC_MAX_SLOTS), in use while proto is set;
 * only that worker touches it, except `stats`, which anyone reads. A
 * reload starts services for new listeners, moves kept ones to new
 * sockets, and retires removed ones: a retired service accepts nothing,
 * keeps its module state and its listener's settings (in the config it
 * retains) and is freed when its last connection closes
 * (workers/services.c). */
struct pc_service {
    struct pc_worker *w;
    unsigned slot;
    const struct pc_listener_config *cfg;
    const struct pc_proto *proto; /* NULL: the slot is free here */
    void *wstate;
    bool initialised;      /* worker_init succeeded: it may take connections */
    bool retired;          /* its listener was removed by a reload */
    /* Configs this service keeps alive (pc_config.retained): the one
     * worker_init was given (modules may keep its section until
     * worker_fini), and once retired the one `cfg` is in. */
    const struct pc_config *init_cfg, *retained;
    size_t nconns;         /* open connections, handshakes included */
    int fd;                /* own listening socket (reuseport), or -1 */
    ev_io accept_io;
    ev_timer accept_pause; /* back-off after EMFILE */
    struct pc_conn *idle_head, *idle_tail; /* oldest activity first */
    /* TLS connections still in their handshake (not on the idle list, not
     * yet seen by the module), oldest first: their timeout is fixed from
     * the accept, so the head is always the next to expire. */
    struct pc_conn *hs_head, *hs_tail;
    size_t nhandshakes;
    /* Connections whose output waits for flush_timer (flush_delay > 0). */
    struct pc_conn **delayed;
    size_t ndelayed, delayed_cap;
    ev_timer flush_timer;
    struct pc_listener_stats stats; /* this listener's traffic here */
};

enum pc_conn_flag {
    PC_CONN_CLOSING = 1 << 0,   /* close once output is sent */
    PC_CONN_DEAD = 1 << 1,      /* fd closed, waiting to be freed */
    PC_CONN_FULL = 1 << 2,      /* above high watermark: reading paused */
    PC_CONN_HELD = 1 << 3,      /* module paused input */
    PC_CONN_PENDING = 1 << 4,   /* on the worker's pending list */
    PC_CONN_REOFFER = 1 << 5,   /* offer held input again */
    PC_CONN_DELAYED = 1 << 6,   /* on its service's delayed list */
    PC_CONN_BLOCKED = 1 << 7,   /* the socket refused bytes: wait for
                                   EV_WRITE before trying again */
    PC_CONN_CUT = 1 << 8,       /* pc_conn_cut: the goodbye is queued */
    PC_CONN_SHUT = 1 << 9,      /* cut, all sent, FIN sent: awaiting EOF */
    PC_CONN_TLS = 1 << 10,      /* a struct pc_tls_conn follows the state */
    PC_CONN_HANDSHAKE = 1 << 11, /* TLS handshake running: on svc's
                                    handshake list; the module has not
                                    seen it (no on_open yet) */
    PC_CONN_ENDING = 1 << 12,   /* pc_conn_end: CUT with the goodbye after
                                   all queued output; on the cut list (the
                                   linger) only once all is sent */
    PC_CONN_PEER_DONE = 1 << 13, /* cut or ending, and the peer's EOF came
                                    before ours was sent: close once all
                                    is sent, without waiting */
    PC_CONN_ACCESS = 1 << 14,   /* its listener keeps an access log: a
                                   struct pc_conn_access ends the
                                   allocation (conn_access.c) */
};

/* Input a module left unconsumed; allocated only while there is some. */
struct pc_inbuf {
    uint32_t len, cap;
    char data[];
};

/* Every idle connection pays for this struct, so it is kept at 128 bytes
 * (a jemalloc size class; 16 more would round up to 160). */
struct pc_conn {
    ev_io io;
    struct pc_service *svc;
    struct pc_conn *prev, *next; /* activity list of svc */
    ev_tstamp last_active;
    uint64_t id;
    struct pc_outq out;
    struct pc_inbuf *in; /* NULL when there is none */
    uint16_t flags;
    uint8_t reason;     /* why it is closing */
    uint32_t delayed_at; /* its index in svc->delayed while DELAYED */
    _Alignas(max_align_t) unsigned char state[];
};
_Static_assert(sizeof(struct pc_conn) <= 128, "see struct pc_conn");

/* How long a cut connection may take to send its last unit and goodbye
 * to a peer that reads slowly or not at all. Generous: a peer whose
 * window was zero is probed by TCP with a growing back-off (persist
 * timer), so one that starts reading again may take seconds to resume. */
#define PC_CUT_LINGER 5.0

struct pc_worker {
    struct pc_stats stats;      /* any thread reads; first: whole lines */
    unsigned id, count;
    int cpu;
    struct pc_server *srv;
    const struct pc_config *cfg; /* this worker's view; swapped by reload */
    /* cfg->generation, stored (release) once the worker and its modules
     * have moved to it: main frees what every worker has left behind. */
    atomic_uint_fast64_t cfg_generation;
    struct ev_loop *loop;
    pthread_t thread;
    struct pc_mailbox mailbox;  /* any thread pushes */
    ev_async doorbell;          /* any thread sends */
    ev_prepare prepare;
    ev_timer idle_timer;
    ev_timer drain_timer;
    char *scratch;
    size_t scratch_size;
    /* Connections to flush / re-offer before blocking: an array, not a
     * link in every connection, to keep struct pc_conn small. */
    struct pc_conn **pending, **pending_spare;
    size_t npending, pending_cap;
    struct pc_conn *graveyard;  /* closed, freed before blocking */
    /* Cut connections sending their last unit and goodbye, each closed
     * PC_CUT_LINGER seconds after its cut at the latest (index in the
     * connection's delayed_at: a cut connection is never delayed). */
    struct pc_conn **cut;
    double *cut_at;
    size_t ncut, cut_cap;
    ev_timer cut_timer;
    struct pc_service *svcs;    /* PC_MAX_SLOTS of them, by slot */
    /* Bit i set while svcs[i] is in use: written (release) by this
     * worker, read by main before it gives slot i to a new listener. */
    atomic_uint_fast64_t busy_slots;
    /* The counters of retired services freed here, so the per-worker
     * sums never go back when one goes. Written by this worker only. */
    struct pc_listener_stats retired_stats;
    uint64_t next_conn_id;
    int spare_fd;               /* reserved for the EMFILE accept-and-close */
    uint64_t exhausted_burst;   /* EMFILE drops since the last good accept */
    bool draining;
    bool drained;               /* counted in srv->workers_drained */
    int arena;                  /* its jemalloc arena, -1 if none */
    /* Module metrics (core/module_metrics.c), newest first: the worker
     * pushes with a release store, any thread reads after an acquire
     * load; the server frees them after pc_worker_destroy. */
    _Atomic(struct pc_metric *) metrics;
    /* pc_worker_slot: state modules of several listeners share here. */
    struct pc_worker_slot {
        const void *key;
        void *value;
        void (*on_message)(struct pc_worker *w, void *value,
                           struct pc_msg *m);
    } *slots;
    unsigned nslots;
    struct pc_access_log *access_log; /* the server's; writes need no lock */
};

/* Creates worker `id` of `count` (loop, mailbox, services). Main thread. */
int pc_worker_create(struct pc_worker *w, struct pc_server *srv, unsigned id,
                     unsigned count, unsigned backend);
/* Starts the thread; it pins itself, initialises modules and runs its loop
 * until drained. Main thread. */
int pc_worker_start(struct pc_worker *w);
/* Joins the thread. Main thread, after a drain; destroy only once every
 * worker is joined, since a worker may post to any other until it ends. */
void pc_worker_join(struct pc_worker *w);
/* Frees a created worker whose thread is not running: its loop, undelivered
 * mail, and the reuseport sockets it owns. Main thread. */
void pc_worker_destroy(struct pc_worker *w);

/* Reports a draining worker that has no connection left. Its loop keeps
 * running, since workers still serving may need it (a chat room's home
 * worker), until every worker has drained; then all leave their loops.
 * Worker thread. */
void pc_worker_check_drained(struct pc_worker *w);

/* Hands mail to worker w and rings its doorbell if needed. Any thread. */
void pc_worker_send(struct pc_worker *w, struct pc_mail *m);

#ifdef PC_FAULT_HOOKS
/* Debug builds only: makes worker w stop running its loop for ever, as a
 * bug would, so tests can check that the systemd watchdog notices. Any
 * thread. */
void pc_worker_fault_hang(struct pc_worker *w);
#endif

/* Takes ownership of an accepted, non-blocking socket. Worker thread. */
void pc_conn_adopt(struct pc_service *svc, int fd);
/* Flushes output / re-offers input of connections marked pending, then
 * frees closed ones. Worker thread, before the loop blocks. */
void pc_conn_run_pending(struct pc_worker *w);
/* Writes the output of s's connections that waited for its flush_delay.
 * Worker thread (s's flush timer). */
void pc_conn_flush_delayed(struct pc_service *s);
/* Closes connections idle past their listener's timeout and re-arms the
 * worker's idle timer. Worker thread. */
void pc_conn_expire_idle(struct pc_worker *w);
/* Closes cut connections past their linger. Worker thread (cut_timer). */
void pc_conn_expire_cut(struct pc_worker *w);
/* Cuts every connection of w with `why` (pc_conn_cut: each ends on a
 * unit boundary with its module's goodbye, within PC_CUT_LINGER).
 * Worker thread. */
void pc_conn_cut_all(struct pc_worker *w, enum pc_close_reason why);
/* The drain began: offers every open connection whose module has an
 * on_stop hook to it. Worker thread. */
void pc_conn_stop_all(struct pc_worker *w);
/* Ends every TLS handshake still running on w (a drain: a client not
 * yet served has nothing to lose). Worker thread. */
void pc_conn_end_handshakes(struct pc_worker *w);
/* Closes every connection of w with `why` at once. Worker thread. */
void pc_conn_close_all(struct pc_worker *w, enum pc_close_reason why);

#endif
