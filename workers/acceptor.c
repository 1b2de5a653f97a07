#include "workers/acceptor.h"

#include <errno.h>
#include <ev.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "core/log.h"
#include "core/server.h"
#include "workers/accept.h"
#include "workers/worker.h"

#define ACCEPTOR_BATCH 64

struct acceptor_listener {
    struct pc_acceptor *a;
    unsigned index;
    ev_io io;
    ev_timer pause;
};

struct pc_acceptor {
    struct pc_server *srv;
    const struct pc_config *cfg; /* as started: a reload makes a new one */
    struct ev_loop *loop;
    pthread_t thread;
    ev_async stop;
    struct acceptor_listener ls[PC_MAX_LISTENERS];
    unsigned nls;
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
    m->listener = l->index;
    pc_worker_send(pick_worker(l->a), m);
}

static void accept_cb(struct ev_loop *loop, ev_io *io, int revents)
{
    (void)revents;
    struct acceptor_listener *l = io->data;
    struct pc_acceptor *a = l->a;
    struct pc_accept_result r =
        pc_accept_batch(io->fd, &a->spare_fd, ACCEPTOR_BATCH, hand_off, l);
    const char *name = a->cfg->listeners[l->index].name;
    if (r.exhausted) {
        if (a->exhausted_burst == 0)
            pc_log(PC_LOG_WARN, "acceptor: out of file descriptors on %s: "
                   "dropping new connections until some close", name);
        a->exhausted_burst += r.exhausted;
        PC_STAT_BUMP(a->srv->acceptor_stats[l->index].fd_exhausted,
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
        PC_STAT_BUMP(a->srv->acceptor_stats[l->index].accept_errors,
                     r.errors);
}

static void resume_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)revents;
    struct acceptor_listener *l = t->data;
    ev_io_start(loop, &l->io);
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

int pc_acceptor_start(struct pc_server *srv, struct pc_acceptor **out)
{
    *out = NULL;
    struct pc_acceptor *a = calloc(1, sizeof *a);
    if (!a)
        return -ENOMEM;
    a->srv = srv;
    a->cfg = srv->cfg;
    for (unsigned i = 0; i < srv->cfg->nlisteners; i++) {
        if (srv->cfg->listeners[i].distribution != PC_DIST_ACCEPTOR)
            continue;
        struct acceptor_listener *l = &a->ls[a->nls++];
        l->a = a;
        l->index = i;
        ev_io_init(&l->io, accept_cb, srv->listeners[i].fds[0], EV_READ);
        l->io.data = l;
        ev_init(&l->pause, resume_cb);
        l->pause.data = l;
    }
    if (a->nls == 0) {
        free(a);
        return 0;
    }
    a->loop = ev_loop_new(srv->backend | EVFLAG_NOENV | EVFLAG_NOSIGMASK);
    if (!a->loop) {
        free(a);
        return -ENOSYS;
    }
    a->spare_fd = pc_accept_spare_open();
    ev_async_init(&a->stop, stop_cb);
    ev_async_start(a->loop, &a->stop);
    for (unsigned i = 0; i < a->nls; i++)
        ev_io_start(a->loop, &a->ls[i].io);
    int r = pthread_create(&a->thread, NULL, acceptor_main, a);
    if (r) {
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
    if (a->spare_fd >= 0)
        close(a->spare_fd);
    ev_loop_destroy(a->loop);
    free(a);
}
