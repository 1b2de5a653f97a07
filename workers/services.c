/* A worker's services, one per listener slot: accepting on the worker's
 * own socket (reuseport), starting and finishing module instances, and
 * what a reload changes. Worker thread, except pc_service_setup at
 * creation (main thread, before the worker runs).
 *
 * A reload hands each worker the new config and, per slot, its new
 * reuseport socket. The worker starts services for new listeners, moves
 * kept ones onto their new sockets, and retires removed ones; a socket is
 * closed only after its successor accepts, and what its queue still holds
 * is accepted first. A retired service keeps its module state and its
 * connections, which close by themselves (or at the drain), and is freed
 * with its last one. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "workers/accept.h"
#include "workers/services.h"

#define PC_ACCEPT_BATCH 32

/* ---- accepting on the worker's own socket (reuseport) ---------------- */

static void adopt_cb(void *arg, int fd)
{
    pc_conn_adopt(arg, fd);
}

static void note_exhaustion(struct pc_service *s, struct pc_accept_result r)
{
    struct pc_worker *w = s->w;
    const char *listener = s->cfg->name;
    if (r.exhausted) {
        /* One line per burst: the first drop logs, recovery logs the sum. */
        if (w->exhausted_burst == 0)
            pc_log(PC_LOG_WARN, "worker %u: out of file descriptors "
                   "accepting on %s: dropping new connections until some "
                   "close", w->id, listener);
        w->exhausted_burst += r.exhausted;
        PC_LSTAT_ADD(s, fd_exhausted, r.exhausted);
    } else if (r.accepted && w->exhausted_burst) {
        pc_log(PC_LOG_NOTICE, "worker %u: accepting again on %s after "
               "dropping %llu connections for lack of file descriptors",
               w->id, listener, (unsigned long long)w->exhausted_burst);
        w->exhausted_burst = 0;
    }
    if (r.errors)
        PC_LSTAT_ADD(s, accept_errors, r.errors);
}

static void accept_cb(struct ev_loop *loop, ev_io *io, int revents)
{
    (void)revents;
    struct pc_service *s = io->data;
    struct pc_worker *w = s->w;
    struct pc_accept_result r = pc_accept_batch(io->fd, &w->spare_fd,
                                                PC_ACCEPT_BATCH, adopt_cb, s);
    note_exhaustion(s, r);
    if (r.exhausted) {
        ev_io_stop(loop, io);
        ev_timer_set(&s->accept_pause, PC_ACCEPT_PAUSE, 0.);
        ev_timer_start(loop, &s->accept_pause);
    }
}

static void accept_resume_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)revents;
    struct pc_service *s = t->data;
    if (!s->w->draining && s->fd >= 0)
        ev_io_start(loop, &s->accept_io);
}

static void flush_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop;
    (void)revents;
    pc_conn_flush_delayed(t->data);
}

/* Stops watching s's socket and gives it up (the caller closes it, or a
 * new service of the same reload took it over). */
static int release_socket(struct pc_service *s)
{
    int fd = s->fd;
    if (!s->proto)
        return -1;
    ev_timer_stop(s->w->loop, &s->accept_pause);
    if (fd >= 0)
        ev_io_stop(s->w->loop, &s->accept_io);
    s->fd = -1;
    return fd;
}

/* A service whose module did not start takes no connections: its socket
 * closes, so the kernel queues none for it. */
static void watch_socket(struct pc_service *s, int fd)
{
    if (!s->initialised && fd >= 0) {
        close(fd);
        fd = -1;
    }
    s->fd = fd;
    ev_io_set(&s->accept_io, fd, EV_READ);
    if (fd >= 0 && s->initialised && !s->w->draining)
        ev_io_start(s->w->loop, &s->accept_io);
}

/* The connections the kernel already completed on a socket about to be
 * closed are the clients' all the same: take them before closing. */
static void close_after_accepting(struct pc_service *s, int fd)
{
    if (s->initialised && !s->w->draining) {
        struct pc_accept_result r;
        do {
            r = pc_accept_batch(fd, &s->w->spare_fd, PC_ACCEPT_BATCH,
                                adopt_cb, s);
            note_exhaustion(s, r);
        } while (r.accepted == PC_ACCEPT_BATCH);
    }
    close(fd);
}

void pc_services_stop_accepting(struct pc_worker *w)
{
    /* Closing our reuseport sockets makes the kernel stop queueing
     * connections for us; the acceptor's sockets are the main thread's. */
    for (unsigned i = 0; i < PC_MAX_SLOTS; i++) {
        int fd = release_socket(&w->svcs[i]);
        if (fd >= 0)
            close(fd);
    }
}

/* ---- a service's life ------------------------------------------------ */

static void retain(const struct pc_config *c)
{
    atomic_fetch_add_explicit((atomic_uint *)&c->retained, 1,
                              memory_order_relaxed);
}

static void unretain(const struct pc_config *c)
{
    if (c)
        atomic_fetch_sub_explicit((atomic_uint *)&c->retained, 1,
                                  memory_order_release);
}

void pc_service_setup(struct pc_worker *w, struct pc_service *s,
                      const struct pc_config *cfg,
                      const struct pc_listener_config *lc, int fd)
{
    /* The counters stay where they are (readers on other threads): a
     * freed service zeroed them. */
    s->w = w;
    s->slot = lc->slot;
    s->cfg = lc;
    s->proto = lc->proto;
    s->wstate = NULL;
    s->initialised = s->retired = false;
    s->retained = NULL;
    s->init_cfg = cfg;
    retain(cfg);
    s->nconns = 0;
    s->fd = fd;
    ev_io_init(&s->accept_io, accept_cb, fd, EV_READ);
    s->accept_io.data = s;
    ev_init(&s->accept_pause, accept_resume_cb);
    s->accept_pause.data = s;
    ev_init(&s->flush_timer, flush_cb);
    s->flush_timer.data = s;
    atomic_fetch_or_explicit(&w->busy_slots, (uint_fast64_t)1 << lc->slot,
                             memory_order_release);
}

int pc_service_init_module(struct pc_service *s)
{
    struct pc_worker *w = s->w;
    if (s->proto->worker_init) {
        int r = s->proto->worker_init(w, &s->cfg->section, &s->wstate);
        if (r != 0) {
            pc_log(PC_LOG_ERR, "worker %u: module %s failed to start for "
                   "listener %s (%d)", w->id, s->proto->name, s->cfg->name,
                   r);
            return r < 0 ? r : -EINVAL;
        }
    }
    s->initialised = true;
    return 0;
}

/* The module instance ends and the slot is free again on this worker. */
static void service_free(struct pc_service *s)
{
    struct pc_worker *w = s->w;
    if (s->initialised && s->proto->worker_fini)
        s->proto->worker_fini(w, s->wstate);
    int fd = release_socket(s);
    if (fd >= 0)
        close(fd);
    ev_timer_stop(w->loop, &s->flush_timer);
    free(s->delayed);
    s->delayed = NULL;
    s->ndelayed = s->delayed_cap = 0;
    pc_listener_stats_move(&w->retired_stats, &s->stats);
    unretain(s->retained);
    unretain(s->init_cfg);
    s->proto = NULL;
    s->cfg = NULL;
    s->retained = s->init_cfg = NULL;
    s->initialised = s->retired = false;
    atomic_fetch_and_explicit(&w->busy_slots,
                              ~((uint_fast64_t)1 << s->slot),
                              memory_order_release);
}

void pc_service_conn_closed(struct pc_service *s)
{
    s->nconns--;
    if (s->retired && s->nconns == 0) {
        pc_log(PC_LOG_INFO, "worker %u: the last connection of removed "
               "listener %s closed", s->w->id, s->cfg->name);
        service_free(s);
    }
}

int pc_services_init(struct pc_worker *w)
{
    const struct pc_config *cfg = w->cfg;
    for (unsigned i = 0; i < cfg->nlisteners; i++) {
        int r = pc_service_init_module(&w->svcs[cfg->listeners[i].slot]);
        if (r < 0)
            return r;
    }
    for (unsigned i = 0; i < PC_MAX_SLOTS; i++)
        if (w->svcs[i].fd >= 0)
            ev_io_start(w->loop, &w->svcs[i].accept_io);
    return 0;
}

void pc_services_fini(struct pc_worker *w)
{
    for (unsigned i = 0; i < PC_MAX_SLOTS; i++)
        if (w->svcs[i].proto)
            service_free(&w->svcs[i]);
}

/* ---- a reload -------------------------------------------------------- */

static bool fd_in(const int *fds, int fd)
{
    for (unsigned i = 0; i < PC_MAX_SLOTS; i++)
        if (fds[i] == fd)
            return true;
    return false;
}

void pc_services_reload(struct pc_worker *w, const struct pc_config *cfg,
                        const int *fds)
{
    const struct pc_config *old = w->cfg;
    bool kept[PC_MAX_SLOTS] = {false};
    int old_fd[PC_MAX_SLOTS];
    for (unsigned i = 0; i < cfg->nlisteners; i++)
        kept[cfg->listeners[i].slot] = true;
    /* 1. Watchers off every socket that changes hands, before any new
     * one starts: a socket may pass from one listener to another. */
    for (unsigned i = 0; i < PC_MAX_SLOTS; i++) {
        struct pc_service *s = &w->svcs[i];
        old_fd[i] = -1;
        if (!s->proto || s->retired)
            continue;
        bool moves = !kept[i];
        for (unsigned k = 0; k < cfg->nlisteners && !moves; k++)
            moves = cfg->listeners[k].slot == i &&
                    cfg->listeners[k].sockets_generation == cfg->generation;
        if (moves)
            old_fd[i] = release_socket(s);
    }
    w->cfg = cfg;
    /* 2. New listeners start (in config order, as at start-up), kept ones
     * take their new settings and sockets. */
    for (unsigned i = 0; i < cfg->nlisteners; i++) {
        const struct pc_listener_config *lc = &cfg->listeners[i];
        struct pc_service *s = &w->svcs[lc->slot];
        bool fresh = lc->sockets_generation == cfg->generation;
        if (!s->proto) {
            pc_service_setup(w, s, cfg, lc, -1);
            if (pc_service_init_module(s) < 0)
                pc_log(PC_LOG_ERR, "worker %u: listener %s takes no "
                       "connections here", w->id, lc->name);
            watch_socket(s, fds[lc->slot]);
            continue;
        }
        s->cfg = lc;
        if (fresh)
            watch_socket(s, fds[lc->slot]);
        if (s->initialised && s->proto->reload)
            s->proto->reload(w, s->wstate, &lc->section);
    }
    /* 3. Removed listeners retire, keeping the config their settings are
     * in (released with their last connection). */
    for (unsigned i = 0; i < PC_MAX_SLOTS; i++) {
        struct pc_service *s = &w->svcs[i];
        if (!s->proto || s->retired || kept[i])
            continue;
        s->retired = true;
        s->retained = old;
        retain(old);
    }
    /* 4. The old sockets no listener took over: what they queued is
     * accepted, then they close. */
    for (unsigned i = 0; i < PC_MAX_SLOTS; i++)
        if (old_fd[i] >= 0 && !fd_in(fds, old_fd[i]))
            close_after_accepting(&w->svcs[i], old_fd[i]);
    for (unsigned i = 0; i < PC_MAX_SLOTS; i++) {
        struct pc_service *s = &w->svcs[i];
        if (s->proto && s->retired && s->nconns == 0)
            service_free(s);
    }
    /* Published last: main frees what no worker reads any more. */
    atomic_store_explicit(&w->cfg_generation, cfg->generation,
                          memory_order_release);
}
