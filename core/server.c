/* Server lifecycle on the main thread: bind, start workers, wait for
 * signals, reload, drain, stop. */
#include "core/server.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/access_log.h"
#include "core/cluster_config.h"
#include "core/listener.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/reload_listeners.h"
#include "core/reload_status.h"
#include "core/systemd.h"
#include "core/tls_context.h"
#include "workers/acceptor.h"
#include "workers/backend.h"
#include "workers/cpus.h"

/* ---- admission ------------------------------------------------------- */

static bool take(atomic_uint_fast64_t *n, int64_t limit)
{
    uint_fast64_t before = atomic_fetch_add_explicit(n, 1,
                                                     memory_order_relaxed);
    if (limit > 0 && before >= (uint_fast64_t)limit) {
        atomic_fetch_sub_explicit(n, 1, memory_order_relaxed);
        return false;
    }
    return true;
}

bool pc_server_admit(struct pc_server *srv, struct pc_worker *w,
                     const struct pc_service *s)
{
    const struct pc_config *cfg = w->cfg;
    if (cfg->max_connections_per_worker > 0 &&
        PC_STAT_GET(w, connections) >=
            (uint64_t)cfg->max_connections_per_worker)
        return false;
    if (!take(&srv->connections, cfg->max_connections))
        return false;
    if (!take(&srv->listener_connections[s->slot], s->cfg->max_connections)) {
        atomic_fetch_sub_explicit(&srv->connections, 1, memory_order_relaxed);
        return false;
    }
    return true;
}

void pc_server_release(struct pc_server *srv, unsigned slot)
{
    atomic_fetch_sub_explicit(&srv->connections, 1, memory_order_relaxed);
    atomic_fetch_sub_explicit(&srv->listener_connections[slot], 1,
                              memory_order_relaxed);
}

/* ---- start ----------------------------------------------------------- */

static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
            pc_log(PC_LOG_WARN, "cannot raise the open file limit to %llu",
                   (unsigned long long)rl.rlim_max);
    }
}

/* Reuseport sockets belong to their workers once the workers exist
 * (pc_worker_destroy closes them); the rest are the main thread's. */
static void close_listeners(struct pc_server *srv, bool reuseport_too)
{
    for (unsigned i = 0; i < srv->cfg->nlisteners; i++) {
        const struct pc_listener_config *lc = &srv->cfg->listeners[i];
        struct pc_listener *l = &srv->listeners[lc->slot];
        if (!l->nfds ||
            (lc->distribution == PC_DIST_REUSEPORT && !reuseport_too))
            continue;
        /* An inherited socket is only closed: systemd keeps its copy
         * listening (queueing clients for our next start) and owns the
         * path of a Unix one. */
        for (unsigned k = 0; k < l->nfds; k++)
            close(l->fds[k]);
        if (strncmp(lc->listen, "unix:", 5) == 0 && !l->inherited)
            unlink(lc->listen + 5);
        l->nfds = 0;
    }
    /* Every caller has stopped the acceptor (or never started it). */
    pc_listeners_close_released(srv, true);
}

int pc_server_bind(const struct pc_server *srv,
                   const struct pc_listener_config *lc, struct pc_listener *l,
                   char *err, size_t errlen)
{
    struct pc_sockaddr addr;
    int r = pc_listen_parse(lc->listen, &addr, err, errlen);
    if (r == 0) {
        bool rp = lc->distribution == PC_DIST_REUSEPORT;
        unsigned count = rp ? srv->nworkers : 1;
        r = pc_listen_open(&addr, lc->listen, count, rp, (int)lc->backlog,
                           l->fds, l->bound, sizeof l->bound, err, errlen);
        if (r == 0)
            l->nfds = count;
    }
    return r;
}

/* Listeners named by a socket systemd passed (socket activation) use it;
 * the others bind their own. */
static int bind_listeners(struct pc_server *srv, struct pc_activation *act)
{
    char err[PC_ERR_MAX];
    for (unsigned i = 0; i < srv->cfg->nlisteners; i++) {
        struct pc_listener_config *lc = &srv->cfg->listeners[i];
        struct pc_listener *l = &srv->listeners[lc->slot];
        if (pc_systemd_adopt(act, lc, l))
            continue;
        int r = pc_server_bind(srv, lc, l, err, sizeof err);
        if (r < 0) {
            pc_log(PC_LOG_ERR, "listener %s (%s): %s", lc->name, lc->where,
                   err);
            close_listeners(srv, true);
            return r;
        }
    }
    return 0;
}

static unsigned worker_count(const struct pc_config *cfg)
{
    if (cfg->workers > 0)
        return (unsigned)cfg->workers;
    return pc_cpus_usable("/sys/fs/cgroup", "/proc/self/cgroup");
}

int pc_server_start(struct pc_server *srv, struct pc_config *cfg)
{
    char err[PC_ERR_MAX];
    memset(srv, 0, sizeof *srv);
    srv->cfg = cfg;
    srv->start_time = pc_metrics_now();
    pc_log_set_level((enum pc_log_level)cfg->log_level);
    raise_fd_limit();
    int r = pc_backend_parse(cfg->backend, &srv->backend, err, sizeof err);
    if (r < 0) {
        pc_log(PC_LOG_ERR, "%s", err);
        return r;
    }
    srv->nworkers = worker_count(cfg);
    unsigned cpus = pc_cpus_usable("/sys/fs/cgroup", "/proc/self/cgroup");
    if (srv->nworkers > cpus)
        pc_log(PC_LOG_WARN, "%u workers on %u usable CPUs: workers share "
               "CPUs (pinned round-robin), so some wait for others; "
               "workers = auto gives one a CPU", srv->nworkers, cpus);
    struct pc_activation act;
    if ((r = pc_activation_collect(&act, err, sizeof err)) < 0) {
        pc_log(PC_LOG_ERR, "%s", err);
        return r;
    }
    if ((r = bind_listeners(srv, &act)) < 0) {
        pc_activation_finish(&act, err, sizeof err);
        return r;
    }
    if ((r = pc_activation_finish(&act, err, sizeof err)) < 0) {
        pc_log(PC_LOG_ERR, "%s", err);
        close_listeners(srv, true);
        return r;
    }

    if ((r = pc_access_log_start(&srv->access_log, cfg)) < 0) {
        close_listeners(srv, true);
        return r;
    }
    /* Workers inherit this mask: signals are the main thread's alone. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    pthread_mutex_init(&srv->start_lock, NULL);
    pthread_cond_init(&srv->start_cond, NULL);
    /* Whole cache lines: each worker writes its own counters only. */
    srv->workers = aligned_alloc(PC_CACHE_LINE,
                                 srv->nworkers * sizeof *srv->workers);
    if (srv->workers)
        memset(srv->workers, 0, srv->nworkers * sizeof *srv->workers);
    unsigned created = 0, started = 0;
    r = srv->workers ? 0 : -ENOMEM;
    for (; r == 0 && created < srv->nworkers; created++)
        r = pc_worker_create(&srv->workers[created], srv, created,
                             srv->nworkers, srv->backend);
    for (; r == 0 && started < srv->nworkers; started++)
        r = pc_worker_start(&srv->workers[started]);
    pthread_sigmask(SIG_SETMASK, &old, NULL);

    pthread_mutex_lock(&srv->start_lock);
    while (srv->ready < started)
        pthread_cond_wait(&srv->start_cond, &srv->start_lock);
    if (r < 0)
        srv->start_failed = true;
    bool failed = srv->start_failed;
    srv->released = true;
    pthread_cond_broadcast(&srv->start_cond);
    pthread_mutex_unlock(&srv->start_lock);

    if (!failed && (r = pc_acceptor_start(srv, false, &srv->acceptor)) < 0)
        failed = true;
    if (failed) {
        if (r < 0)
            pc_log(PC_LOG_ERR, "cannot start workers: %s", strerror(-r));
        for (unsigned i = 0; i < started; i++)
            pc_worker_join(&srv->workers[i]);
        for (unsigned i = 0; i < created; i++) {
            pc_worker_destroy(&srv->workers[i]);
            pc_module_metrics_free(&srv->workers[i]);
        }
        /* Reuseport sockets of workers never created are still ours. */
        for (unsigned i = 0; i < cfg->nlisteners; i++) {
            const struct pc_listener *l = &srv->listeners[cfg->listeners[i].slot];
            if (cfg->listeners[i].distribution == PC_DIST_REUSEPORT)
                for (unsigned k = created; k < l->nfds; k++)
                    close(l->fds[k]);
        }
        free(srv->workers);
        srv->workers = NULL;
        close_listeners(srv, false);
        pc_access_log_stop(srv->access_log);
        srv->access_log = NULL;
        return r < 0 ? r : -EINVAL;
    }
    bool tls = false, ktls = false;
    for (unsigned i = 0; i < cfg->nlisteners; i++) {
        const struct pc_listener_config *l = &cfg->listeners[i];
        pc_log(PC_LOG_NOTICE, "listening on %s (%s, %s, %s%s)",
               srv->listeners[l->slot].bound, l->name, l->protocol,
               l->distribution == PC_DIST_REUSEPORT ? "reuseport" : "acceptor",
               l->tls_ctx ? ", TLS" : "");
        tls |= l->tls_ctx != NULL;
        ktls |= l->tls_ctx && l->tls.ktls;
    }
    if (tls)
        pc_log(PC_LOG_NOTICE, "TLS: %s", !pc_tls_kernel_has_ktls()
               ? "this kernel offers no kTLS (no \"tls\" in "
                 "/proc/sys/net/ipv4/tcp_available_ulp): records are sealed "
                 "by the workers"
               : ktls ? "kTLS available: the kernel encrypts after each "
                        "handshake where the cipher allows"
                      : "kTLS available but off (tls_ktls = off)");
    return 0;
}

bool pc_server_worker_ready(struct pc_server *srv, int error)
{
    pthread_mutex_lock(&srv->start_lock);
    srv->ready++;
    if (error)
        srv->start_failed = true;
    pthread_cond_broadcast(&srv->start_cond);
    while (!srv->released)
        pthread_cond_wait(&srv->start_cond, &srv->start_lock);
    bool ok = !srv->start_failed;
    pthread_mutex_unlock(&srv->start_lock);
    return ok;
}

/* ---- running, reloading, stopping ------------------------------------ */

void pc_server_broadcast_mail(struct pc_server *srv, enum pc_mail_kind kind,
                              const struct pc_config *cfg)
{
    for (unsigned i = 0; i < srv->nworkers; i++) {
        struct pc_mail *m = calloc(1, sizeof *m);
        if (!m) {
            /* A worker that missed a drain or reload would run on alone
             * and the drain would never end: no half-applied state. */
            pc_log(PC_LOG_ERR, "out of memory signalling the workers");
            abort();
        }
        m->kind = kind;
        m->cfg = cfg;
        pc_worker_send(&srv->workers[i], m);
    }
}

void pc_server_stop(struct pc_server *srv)
{
    if (srv->stopping) {
        /* A second SIGTERM/SIGINT: close what is left now. */
        pc_log(PC_LOG_NOTICE, "stopping again: closing open connections now");
        pc_server_broadcast_mail(srv, PC_MAIL_DRAIN, NULL);
        return;
    }
    srv->stopping = true;
    pc_systemd_stopping(srv);
    pc_log(PC_LOG_NOTICE, "stopping: no new connections; draining open ones "
           "for up to %gs", srv->cfg->drain_timeout);
    /* Joined before the drain mail goes out, so every socket it handed
     * over is adopted (and then drained) before the worker sees it. */
    pc_acceptor_stop(srv->acceptor);
    srv->acceptor = NULL;
    close_listeners(srv, false);
    pc_server_broadcast_mail(srv, PC_MAIL_DRAIN, NULL);
}

/* What a reload cannot change, named so the operator knows to restart.
 * (Listeners, their distribution and the acceptor's balance change
 * live: core/reload_listeners.h.) */
static void report_restart_needed(const struct pc_config *old,
                                  const struct pc_config *new)
{
    if (old->workers != new->workers)
        pc_log(PC_LOG_WARN, "reload: 'workers' changed: needs a restart");
    if (strcmp(old->backend, new->backend) != 0)
        pc_log(PC_LOG_WARN, "reload: 'backend' changed: needs a restart");
    if (strcmp(old->modules, new->modules) != 0)
        pc_log(PC_LOG_WARN, "reload: 'modules' changed: needs a restart");
    if (pc_cluster_config_changed(old, new))
        pc_log(PC_LOG_WARN, "reload: [cluster] changed: needs a restart");
    if (strcmp(old->pid_file, new->pid_file) != 0)
        pc_log(PC_LOG_WARN, "reload: 'pid_file' changed: needs a restart");
}

/* Frees the replaced configs nothing reads any more: those older than the
 * oldest generation a worker or the acceptor has taken, that no retired
 * service retains. So reloads are unlimited. */
static void free_old_configs(struct pc_server *srv)
{
    uint64_t seen = pc_acceptor_generation(srv->acceptor);
    for (unsigned i = 0; i < srv->nworkers; i++) {
        uint64_t g = atomic_load_explicit(&srv->workers[i].cfg_generation,
                                          memory_order_acquire);
        if (g < seen)
            seen = g;
    }
    unsigned kept = 0;
    for (unsigned i = 0; i < srv->nold; i++) {
        struct pc_config *c = srv->old_cfgs[i];
        if (c->generation < seen &&
            atomic_load_explicit(&c->retained, memory_order_acquire) == 0) {
            pc_config_free(c);
            free(c);
        } else {
            srv->old_cfgs[kept++] = c;
        }
    }
    srv->nold = kept;
}

static int keep_old_config(struct pc_server *srv, struct pc_config *old)
{
    if (srv->nold == srv->old_cap) {
        unsigned cap = srv->old_cap ? srv->old_cap * 2 : 8;
        struct pc_config **a = realloc(srv->old_cfgs, cap * sizeof *a);
        if (!a)
            return -ENOMEM;
        srv->old_cfgs = a;
        srv->old_cap = cap;
    }
    srv->old_cfgs[srv->nold++] = old;
    return 0;
}

/* One reload mail per worker: the new config and its reuseport sockets
 * there. Before the acceptor's update, so a worker has a new listener's
 * service before the acceptor can hand it a connection. */
static void send_reload(struct pc_server *srv, const struct pc_config *cfg)
{
    for (unsigned i = 0; i < srv->nworkers; i++) {
        struct pc_mail *m = calloc(1, sizeof *m);
        int *fds = pc_listeners_worker_fds(srv, cfg, i);
        if (!m || !fds) {
            pc_log(PC_LOG_ERR, "out of memory signalling the workers");
            abort(); /* no worker left on another listener set */
        }
        m->kind = PC_MAIL_RELOAD;
        m->cfg = cfg;
        m->fds = fds;
        pc_worker_send(&srv->workers[i], m);
    }
    if (srv->acceptor)
        pc_acceptor_update(srv->acceptor, cfg, srv);
}

static void reload_config(struct pc_server *srv)
{
    char err[PC_ERR_MAX];
    free_old_configs(srv);
    struct pc_config *cfg = malloc(sizeof *cfg);
    if (!cfg) {
        pc_reload_outcome(srv, false, "reload refused: out of memory");
        return;
    }
    if (pc_config_load(cfg, srv->config_file, srv->overrides, err,
                       sizeof err) < 0) {
        pc_reload_outcome(srv, false,
                          "reload failed, keeping the running config: %s", err);
        free(cfg);
        return;
    }
    report_restart_needed(srv->cfg, cfg);
    /* Settings fixed at start keep their running values. */
    cfg->workers = srv->cfg->workers;
    memcpy(cfg->backend, srv->cfg->backend, sizeof cfg->backend);
    cfg->generation = srv->cfg->generation + 1;
    /* Every new socket is bound before anything changes. */
    struct pc_listener_plan *plan;
    if (pc_listeners_prepare(srv, cfg, &plan, err, sizeof err) < 0) {
        pc_reload_outcome(srv, false, "reload refused, keeping the running "
                          "config and listeners: %s", err);
        pc_config_free(cfg);
        free(cfg);
        return;
    }
    /* Pipes for new access logs exist before a worker can write there. */
    if (pc_access_log_prepare(srv->access_log, cfg, err, sizeof err) < 0) {
        pc_reload_outcome(srv, false, "reload refused, keeping the running "
                          "config and listeners: %s", err);
        pc_listeners_abandon(srv, plan);
        pc_config_free(cfg);
        free(cfg);
        return;
    }
    /* Workers may still read the old config until they take the new one
     * (free_old_configs, at a later reload, or at exit). */
    if (keep_old_config(srv, srv->cfg) < 0) {
        pc_reload_outcome(srv, false, "reload refused: out of memory");
        pc_listeners_abandon(srv, plan);
        pc_config_free(cfg);
        free(cfg);
        return;
    }
    pc_listeners_commit(srv, plan);
    srv->cfg = cfg;
    pc_log_set_level((enum pc_log_level)cfg->log_level);
    send_reload(srv, cfg);
    pc_reload_outcome(srv, true, "reloaded %s: listeners, limits, timeouts, "
                      "log level and TLS certificates applied",
                      srv->config_file ? srv->config_file : "settings");
}

void pc_server_reload(struct pc_server *srv)
{
    pc_systemd_reloading(srv);
    reload_config(srv);
    /* Applied or not: logrotate reloads to have the logs reopened. */
    pc_access_log_reopen(srv->access_log, srv->cfg);
    pc_systemd_reloaded(srv);
}

static void signal_cb(struct ev_loop *loop, ev_signal *s, int revents)
{
    (void)loop;
    (void)revents;
    struct pc_server *srv = s->data;
    switch (s->signum) {
    case SIGTERM:
    case SIGINT:
        pc_server_stop(srv);
        break;
    case SIGHUP:
        if (srv->stopping)
            pc_reload_outcome(srv, false,
                              "reload ignored: the server is stopping");
        else
            pc_server_reload(srv);
        break;
    case SIGUSR1:
        pc_server_log_stats(srv);
        break;
    }
}

/* The main loop runs through the drain (signals, the watchdog), and
 * ends when the last worker reports it has no connection left. */
static void acceptor_moved_cb(struct ev_loop *loop, ev_async *a,
                              int revents)
{
    (void)loop;
    (void)revents;
    pc_listeners_close_released(a->data, false);
}

static void drained_cb(struct ev_loop *loop, ev_async *a, int revents)
{
    (void)a;
    (void)revents;
    ev_break(loop, EVBREAK_ALL);
}

int pc_server_run(struct pc_server *srv)
{
    /* NOENV: LIBEV_FLAGS in the environment must not pick a refused
     * backend (io_uring) for the main loop either. */
    srv->loop = ev_default_loop(EVFLAG_AUTO | EVFLAG_NOENV);
    ev_signal *sigs[] = {&srv->sig_term, &srv->sig_int, &srv->sig_hup,
                         &srv->sig_usr1};
    int nums[] = {SIGTERM, SIGINT, SIGHUP, SIGUSR1};
    for (int i = 0; i < 4; i++) {
        ev_signal_init(sigs[i], signal_cb, nums[i]);
        sigs[i]->data = srv;
        ev_signal_start(srv->loop, sigs[i]);
    }
    ev_async_init(&srv->drained, drained_cb);
    srv->drained.data = srv;
    ev_async_start(srv->loop, &srv->drained);
    ev_async_init(&srv->acceptor_moved, acceptor_moved_cb);
    srv->acceptor_moved.data = srv;
    ev_async_start(srv->loop, &srv->acceptor_moved);
    signal(SIGPIPE, SIG_IGN);
    (void)pc_reload_status_start(srv);
    /* Said once the signals are handled: a SIGTERM sent on seeing this
     * line (or READY=1) drains instead of killing. */
    pc_log(PC_LOG_NOTICE, "percored %s running: %u workers, backend %s",
           PC_VERSION, srv->nworkers,
           pc_backend_name(ev_backend(srv->workers[0].loop)));
    pc_systemd_ready(srv);
    ev_run(srv->loop, 0);
    pc_systemd_detach(srv);
    /* Stopping a signal watcher gives the signal its default action back:
     * one more SIGTERM (an impatient script, a second systemctl stop)
     * would then kill a process that is only tidying up. Blocked first
     * (every other thread blocks them from birth), such a signal stays
     * pending until the exit. */
    sigset_t late;
    sigemptyset(&late);
    for (int i = 0; i < 4; i++)
        sigaddset(&late, nums[i]);
    pthread_sigmask(SIG_BLOCK, &late, NULL);
    for (int i = 0; i < 4; i++) {
        ev_signal_stop(srv->loop, sigs[i]);
        signal(nums[i], SIG_IGN);
    }
    pc_acceptor_stop(srv->acceptor);
    srv->acceptor = NULL;
    ev_async_stop(srv->loop, &srv->drained);
    ev_async_stop(srv->loop, &srv->acceptor_moved);
    for (unsigned i = 0; i < srv->nworkers; i++)
        pc_worker_join(&srv->workers[i]);
    for (unsigned i = 0; i < srv->nworkers; i++) {
        pc_worker_destroy(&srv->workers[i]);
        pc_module_metrics_free(&srv->workers[i]);
    }
    close_listeners(srv, false);
    pc_access_log_stop(srv->access_log); /* the workers' last lines too */
    srv->access_log = NULL;
    free(srv->workers);
    srv->workers = NULL;
    for (unsigned i = 0; i < srv->nold; i++) {
        pc_config_free(srv->old_cfgs[i]);
        free(srv->old_cfgs[i]);
    }
    free(srv->old_cfgs);
    srv->old_cfgs = NULL;
    free(srv->released_socks);
    srv->released_socks = NULL;
    pc_config_free(srv->cfg);
    free(srv->cfg);
    srv->cfg = NULL;
    pthread_mutex_destroy(&srv->start_lock);
    pthread_cond_destroy(&srv->start_cond);
    pc_log(PC_LOG_NOTICE, "stopped");
    return 0;
}
