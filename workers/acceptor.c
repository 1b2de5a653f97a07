#include "workers/acceptor.h"

#include <errno.h>
#include <ev.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#include "core/log.h"
#include "core/server.h"
#include "workers/accept.h"
#include "workers/worker.h"

#define ACCEPTOR_BATCH 64

/* One listener in acceptor mode, by slot; fd -1 when the slot is none. */
struct acceptor_listener {
    struct pc_acceptor *a;
    unsigned slot;
    int fd;
    const struct pc_listener_config *lc; /* in a->cfg */
    ev_io io;
    ev_timer pause;
};

/* A new listener set from a reload: each slot's socket (-1: none). */
struct acceptor_update {
    struct acceptor_update *next;
    const struct pc_config *cfg;
    int fds[PC_MAX_SLOTS];
};

struct pc_acceptor {
    struct pc_server *srv;
    const struct pc_config *cfg; /* the last update's: balance, names */
    /* cfg->generation once applied (release): main frees older configs
     * and closes the sockets it left (pc_acceptor_generation). */
    atomic_uint_fast64_t generation;
    struct ev_loop *loop;
    pthread_t thread;
    ev_async stop;
    ev_async update_bell;
    pthread_mutex_t lock;                /* guards the two below */
    struct acceptor_update *pending, **pending_tail;
    struct acceptor_listener ls[PC_MAX_SLOTS];
    unsigned next;  /* round-robin cursor */
    int spare_fd;
    uint64_t exhausted_burst;
};

static struct pc_worker *pick_worker(struct pc_acceptor *a)
{
    struct pc_server *srv = a->srv;
    unsigned n = srv->nworkers, start = a->next++ % n;
    if (a->cfg->balance == PC_BALANCE_ROUND_ROBIN)
        return &srv->workers[start];
    /* Least connections, from the workers' own counters; ties go round
     * robin so an idle server still spreads its first connections. */
    unsigned best = start;
    uint64_t least = PC_STAT_GET(&srv->workers[start], connections);
    for (unsigned k = 1; k < n; k++) {
        unsigned i = (start + k) % n;
        uint64_t c = PC_STAT_GET(&srv->workers[i], connections);
        if (c < least) {
            least = c;
            best = i;
        }
    }
    return &srv->workers[best];
}

static void hand_off(void *arg, int fd)
{
    struct acceptor_listener *l = arg;
    struct pc_mail *m = calloc(1, sizeof *m);
    if (!m) {
        close(fd);
        return;
    }
    m->kind = PC_MAIL_CONN;
    m->fd = fd;
    m->listener = l->slot;
    pc_worker_send(pick_worker(l->a), m);
}

static void accept_cb(struct ev_loop *loop, ev_io *io, int revents)
{
    (void)revents;
    struct acceptor_listener *l = io->data;
    struct pc_acceptor *a = l->a;
    struct pc_accept_result r =
        pc_accept_batch(io->fd, &a->spare_fd, ACCEPTOR_BATCH, hand_off, l);
    const char *name = l->lc->name;
    if (r.exhausted) {
        if (a->exhausted_burst == 0)
            pc_log(PC_LOG_WARN, "acceptor: out of file descriptors on %s: "
                   "dropping new connections until some close", name);
        a->exhausted_burst += r.exhausted;
        PC_STAT_BUMP(a->srv->acceptor_stats[l->slot].fd_exhausted,
                     r.exhausted);
        ev_io_stop(loop, io);
        ev_timer_set(&l->pause, PC_ACCEPT_PAUSE, 0.);
        ev_timer_start(loop, &l->pause);
    } else if (r.accepted && a->exhausted_burst) {
        /* The burst may have spanned listeners: name none. */
        pc_log(PC_LOG_NOTICE, "acceptor: accepting again after dropping "
               "%llu connections for lack of file descriptors",
               (unsigned long long)a->exhausted_burst);
        a->exhausted_burst = 0;
    }
    if (r.errors)
        PC_STAT_BUMP(a->srv->acceptor_stats[l->slot].accept_errors,
                     r.errors);
}

static void resume_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)revents;
    struct acceptor_listener *l = t->data;
    if (l->fd >= 0)
        ev_io_start(loop, &l->io);
}

/* What a socket that leaves still queued is handed over first: those
 * clients were accepted by the kernel before the reload. */
static void drain_socket(struct acceptor_listener *l, int fd)
{
    struct pc_accept_result r;
    do {
        r = pc_accept_batch(fd, &l->a->spare_fd, ACCEPTOR_BATCH, hand_off, l);
        if (r.errors)
            PC_STAT_BUMP(l->a->srv->acceptor_stats[l->slot].accept_errors,
                         r.errors);
    } while (r.accepted == ACCEPTOR_BATCH);
}

static const struct pc_listener_config *listener_in(const struct pc_config *c,
                                                     unsigned slot)
{
    for (unsigned i = 0; i < c->nlisteners; i++)
        if (c->listeners[i].slot == slot)
            return &c->listeners[i];
    return NULL;
}

static void watch(struct acceptor_listener *l, int fd)
{
    l->fd = fd;
    ev_io_set(&l->io, fd, EV_READ);
    ev_io_start(l->a->loop, &l->io);
}

/* New sockets are watched before the ones they replace stop; what those
 * still hold goes to the workers; then main may close them. */
static void apply(struct pc_acceptor *a, struct acceptor_update *u)
{
    int old[PC_MAX_SLOTS];
    for (unsigned i = 0; i < PC_MAX_SLOTS; i++) {
        struct acceptor_listener *l = &a->ls[i];
        old[i] = -1;
        if (l->fd >= 0 && l->fd != u->fds[i]) {
            ev_io_stop(a->loop, &l->io);
            ev_timer_stop(a->loop, &l->pause);
            old[i] = l->fd;
            l->fd = -1;
        }
    }
    a->cfg = u->cfg;
    for (unsigned i = 0; i < PC_MAX_SLOTS; i++) {
        struct acceptor_listener *l = &a->ls[i];
        if (u->fds[i] < 0)
            continue;
        l->lc = listener_in(a->cfg, i);
        if (l->fd != u->fds[i])
            watch(l, u->fds[i]);
    }
    for (unsigned i = 0; i < PC_MAX_SLOTS; i++) {
        bool taken_over = false; /* by another listener of this reload */
        for (unsigned k = 0; k < PC_MAX_SLOTS && old[i] >= 0; k++)
            taken_over |= u->fds[k] == old[i];
        if (old[i] >= 0 && !taken_over)
            drain_socket(&a->ls[i], old[i]);
    }
    atomic_store_explicit(&a->generation, a->cfg->generation,
                          memory_order_release);
}

static void update_cb(struct ev_loop *loop, ev_async *w, int revents)
{
    (void)loop;
    (void)revents;
    struct pc_acceptor *a = w->data;
    pthread_mutex_lock(&a->lock);
    struct acceptor_update *u = a->pending;
    a->pending = NULL;
    a->pending_tail = &a->pending;
    pthread_mutex_unlock(&a->lock);
    while (u) {
        struct acceptor_update *next = u->next;
        apply(a, u);
        free(u);
        u = next;
    }
    ev_async_send(a->srv->loop, &a->srv->acceptor_moved);
}

void pc_acceptor_update(struct pc_acceptor *a, const struct pc_config *cfg,
                        const struct pc_server *srv)
{
    struct acceptor_update *u = calloc(1, sizeof *u);
    if (!u) {
        /* Like a reload mail: no half-applied listener set. */
        pc_log(PC_LOG_ERR, "out of memory signalling the acceptor");
        abort();
    }
    u->cfg = cfg;
    for (unsigned i = 0; i < PC_MAX_SLOTS; i++)
        u->fds[i] = -1;
    for (unsigned i = 0; i < cfg->nlisteners; i++) {
        const struct pc_listener_config *lc = &cfg->listeners[i];
        if (lc->distribution == PC_DIST_ACCEPTOR)
            u->fds[lc->slot] = srv->listeners[lc->slot].fds[0];
    }
    pthread_mutex_lock(&a->lock);
    *a->pending_tail = u;
    a->pending_tail = &u->next;
    pthread_mutex_unlock(&a->lock);
    ev_async_send(a->loop, &a->update_bell);
}

uint64_t pc_acceptor_generation(struct pc_acceptor *a)
{
    return a ? atomic_load_explicit(&a->generation, memory_order_acquire)
             : UINT64_MAX;
}

static void stop_cb(struct ev_loop *loop, ev_async *w, int revents)
{
    (void)w;
    (void)revents;
    ev_break(loop, EVBREAK_ALL);
}

static void *acceptor_main(void *arg)
{
    struct pc_acceptor *a = arg;
    (void)pthread_setname_np(pthread_self(), "pc-acceptor");
    ev_run(a->loop, 0);
    return NULL;
}

int pc_acceptor_start(struct pc_server *srv, bool even_if_idle,
                      struct pc_acceptor **out)
{
    *out = NULL;
    struct pc_acceptor *a = calloc(1, sizeof *a);
    if (!a)
        return -ENOMEM;
    a->srv = srv;
    a->cfg = srv->cfg;
    atomic_init(&a->generation, srv->cfg->generation);
    unsigned used = 0;
    for (unsigned i = 0; i < PC_MAX_SLOTS; i++) {
        struct acceptor_listener *l = &a->ls[i];
        l->a = a;
        l->slot = i;
        l->fd = -1;
        ev_io_init(&l->io, accept_cb, -1, EV_READ);
        l->io.data = l;
        ev_init(&l->pause, resume_cb);
        l->pause.data = l;
    }
    for (unsigned i = 0; i < srv->cfg->nlisteners; i++) {
        const struct pc_listener_config *lc = &srv->cfg->listeners[i];
        if (lc->distribution != PC_DIST_ACCEPTOR)
            continue;
        struct acceptor_listener *l = &a->ls[lc->slot];
        l->lc = lc;
        l->fd = srv->listeners[lc->slot].fds[0];
        ev_io_set(&l->io, l->fd, EV_READ);
        used++;
    }
    if (used == 0 && !even_if_idle) {
        free(a);
        return 0;
    }
    a->loop = ev_loop_new(srv->backend | EVFLAG_NOENV | EVFLAG_NOSIGMASK);
    if (!a->loop) {
        free(a);
        return -ENOSYS;
    }
    pthread_mutex_init(&a->lock, NULL);
    a->pending_tail = &a->pending;
    a->spare_fd = pc_accept_spare_open();
    ev_async_init(&a->stop, stop_cb);
    ev_async_start(a->loop, &a->stop);
    ev_async_init(&a->update_bell, update_cb);
    a->update_bell.data = a;
    ev_async_start(a->loop, &a->update_bell);
    for (unsigned i = 0; i < PC_MAX_SLOTS; i++)
        if (a->ls[i].fd >= 0)
            ev_io_start(a->loop, &a->ls[i].io);
    /* Signals are the main thread's alone (a reload may start this
     * thread long after the workers, which block them from birth). */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int r = pthread_create(&a->thread, NULL, acceptor_main, a);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (r) {
        if (a->spare_fd >= 0)
            close(a->spare_fd);
        pthread_mutex_destroy(&a->lock);
        ev_loop_destroy(a->loop);
        free(a);
        return -r;
    }
    *out = a;
    return 0;
}

void pc_acceptor_stop(struct pc_acceptor *a)
{
    if (!a)
        return;
    ev_async_send(a->loop, &a->stop);
    pthread_join(a->thread, NULL);
    /* Updates it never applied: their sockets are main's to close. */
    for (struct acceptor_update *u = a->pending, *next; u; u = next) {
        next = u->next;
        free(u);
    }
    if (a->spare_fd >= 0)
        close(a->spare_fd);
    pthread_mutex_destroy(&a->lock);
    ev_loop_destroy(a->loop);
    free(a);
}
