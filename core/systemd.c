/* systemd integration: sd_notify, socket activation and the watchdog. */
#include "core/systemd.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include "core/listener.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/server.h"

/* STATUS= is refreshed this often (and only sent when its text changed). */
#define PC_STATUS_PERIOD 2.0
/* Time on top of the drain timeout asked for at stop: joining workers,
 * closing, and writing the last log lines. */
#define PC_STOP_MARGIN_USEC (5 * 1000000ULL)

struct pc_systemd {
    struct pc_server *srv;
    uint64_t watchdog_usec; /* WatchdogSec= of the unit; 0: none */
    struct pc_watchdog wd;
    uint64_t *loops; /* scratch for one check */
    ev_timer watchdog_timer;
    ev_timer status_timer;
    bool notify_socket; /* NOTIFY_SOCKET is set: systemd listens */
    bool timers;        /* started on the main loop */
    char status[256];   /* last STATUS= sent */
#ifdef PC_FAULT_HOOKS
    ev_signal fault_signal;
    unsigned fault_worker;
    bool fault_armed;
#endif
};

static uint64_t monotonic_usec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000ULL + (uint64_t)ts.tv_nsec / 1000;
}

/* ---- socket activation ------------------------------------------------ */

static void close_untaken(struct pc_activation *a)
{
    for (unsigned i = 0; i < a->n; i++)
        if (!a->fds[i].taken && a->fds[i].fd >= 0) {
            close(a->fds[i].fd);
            a->fds[i].fd = -1;
        }
}

int pc_activation_collect(struct pc_activation *a, char *err, size_t errlen)
{
    memset(a, 0, sizeof *a);
    char **names = NULL;
    /* Checks LISTEN_PID against getpid(): variables inherited from a
     * parent that was itself activated are not ours. Unsetting them keeps
     * them from reaching anything we run. */
    int n = sd_listen_fds_with_names(1, &names);
    if (n <= 0) {
        if (n < 0)
            snprintf(err, errlen,
                     "cannot read the sockets systemd passed "
                     "(LISTEN_FDS): %s",
                     strerror(-n));
        return n;
    }
    int r = n;
    for (int i = 0; i < n; i++) {
        int fd = SD_LISTEN_FDS_START + i;
        const char *name = names && names[i] ? names[i] : "unknown";
        if (r > 0 && (unsigned)i == PC_MAX_LISTENERS) {
            snprintf(err, errlen,
                     "systemd passed %d sockets; percored "
                     "takes at most %d",
                     n, PC_MAX_LISTENERS);
            r = -E2BIG;
        }
        if (r > 0 && sd_is_socket(fd, AF_UNSPEC, SOCK_STREAM, 1) <= 0) {
            snprintf(err, errlen,
                     "the socket systemd passed as '%s' is "
                     "not a listening stream socket (use ListenStream= "
                     "with Accept=no)",
                     name);
            r = -EINVAL;
        }
        if (r > 0 && strlen(name) >= PC_NAME_MAX) {
            snprintf(err, errlen,
                     "the socket systemd passed as '%s' has "
                     "a name longer than a listener name can be",
                     name);
            r = -ENAMETOOLONG;
        }
        /* Listening sockets from systemd are blocking unless the unit
         * says NonBlocking=yes; accept loops need them non-blocking so a
         * connection another thread took leaves them with EAGAIN. */
        int fl = fcntl(fd, F_GETFL);
        if (r > 0 && (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)) {
            r = -errno;
            snprintf(err, errlen, "the socket systemd passed as '%s': %s", name,
                     strerror(-r));
        }
        if (r > 0) {
            struct pc_inherited *h = &a->fds[a->n++];
            h->fd = fd;
            snprintf(h->name, sizeof h->name, "%s", name);
        } else {
            close(fd);
        }
        free(names ? names[i] : NULL);
    }
    free(names);
    if (r < 0) {
        close_untaken(a);
        a->n = 0;
    }
    return r;
}

int pc_activation_take(struct pc_activation *a, const char *name)
{
    for (unsigned i = 0; i < a->n; i++) {
        struct pc_inherited *h = &a->fds[i];
        if (!h->taken && h->fd >= 0 && strcmp(h->name, name) == 0) {
            h->taken = true;
            return h->fd;
        }
    }
    return -1;
}

static bool same_address(const struct sockaddr_storage *x, socklen_t xl,
                         const struct pc_sockaddr *y)
{
    char a[PC_ADDR_MAX], b[PC_ADDR_MAX];
    pc_sockaddr_format((const struct sockaddr *)x, xl, a, sizeof a);
    pc_sockaddr_format((const struct sockaddr *)&y->ss, y->len, b, sizeof b);
    return strcmp(a, b) == 0;
}

int pc_systemd_adopt(struct pc_activation *a, struct pc_listener_config *lc,
                     struct pc_listener *l)
{
    int fd = pc_activation_take(a, lc->name);
    if (fd < 0)
        return 0;
    l->fds[0] = fd;
    l->nfds = 1;
    l->inherited = true;
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
        len = 0;
    pc_sockaddr_format((struct sockaddr *)&ss, len, l->bound, sizeof l->bound);
    struct pc_sockaddr want;
    char err[PC_ERR_MAX];
    if (pc_listen_parse(lc->listen, &want, err, sizeof err) == 0 &&
        !same_address(&ss, len, &want))
        pc_log(PC_LOG_NOTICE,
               "listener %s: serving on %s, the socket "
               "systemd passed, not on %s as the config says",
               lc->name, l->bound, lc->listen);
    if (lc->distribution == PC_DIST_REUSEPORT)
        pc_log(PC_LOG_INFO,
               "listener %s: one socket from systemd, so the "
               "acceptor thread hands its connections to the workers "
               "(reuseport needs a socket per worker)",
               lc->name);
    lc->distribution = PC_DIST_ACCEPTOR;
    return 1;
}

int pc_activation_finish(struct pc_activation *a, char *err, size_t errlen)
{
    int r = 0;
    for (unsigned i = 0; i < a->n && r == 0; i++) {
        const struct pc_inherited *h = &a->fds[i];
        if (h->taken)
            continue;
        if (strcmp(h->name, "unknown") == 0 ||
            strstr(h->name, ".socket") != NULL)
            snprintf(err, errlen,
                     "systemd passed a socket named '%s': set "
                     "FileDescriptorName= in its socket unit to the name "
                     "of the listener it is for",
                     h->name);
        else
            snprintf(err, errlen,
                     "systemd passed a socket named '%s' "
                     "(FileDescriptorName=), but the config has no "
                     "[listener %s]",
                     h->name, h->name);
        r = -ENOENT;
    }
    close_untaken(a);
    return r;
}

/* ---- watchdog decision ------------------------------------------------ */

int pc_watchdog_init(struct pc_watchdog *wd, unsigned n, uint64_t stale_usec,
                     uint64_t now_usec)
{
    memset(wd, 0, sizeof *wd);
    wd->stuck = -1;
    wd->n = n;
    wd->stale_usec = stale_usec;
    wd->loops = calloc(n ? n : 1, sizeof *wd->loops);
    wd->moved_usec = calloc(n ? n : 1, sizeof *wd->moved_usec);
    if (!wd->loops || !wd->moved_usec) {
        pc_watchdog_free(wd);
        return -ENOMEM;
    }
    for (unsigned i = 0; i < n; i++)
        wd->moved_usec[i] = now_usec;
    return 0;
}

void pc_watchdog_free(struct pc_watchdog *wd)
{
    free(wd->loops);
    free(wd->moved_usec);
    wd->loops = wd->moved_usec = NULL;
    wd->n = 0;
}

int pc_watchdog_check(struct pc_watchdog *wd, const uint64_t *loops,
                      uint64_t now_usec)
{
    int stuck = -1;
    for (unsigned i = 0; i < wd->n; i++) {
        if (loops[i] != wd->loops[i]) {
            wd->loops[i] = loops[i];
            wd->moved_usec[i] = now_usec;
        } else if (stuck < 0 && now_usec - wd->moved_usec[i] > wd->stale_usec) {
            stuck = (int)i;
        }
    }
    return stuck;
}

/* ---- notifications ---------------------------------------------------- */

size_t pc_systemd_status(struct pc_server *srv, char *buf, size_t size)
{
    unsigned long long accepted = 0;
    for (unsigned i = 0; i < srv->nworkers; i++)
        accepted += PC_WORKER_SUM(&srv->workers[i], accepted);
    int n = snprintf(buf, size,
                     "%u workers, %llu connections open, %llu "
                     "accepted",
                     srv->nworkers,
                     (unsigned long long)atomic_load_explicit(
                         &srv->connections, memory_order_relaxed),
                     accepted);
    return n < 0 ? 0 : (size_t)n < size ? (size_t)n : size - 1;
}

/* Main thread. A manager that went away is reported once, not every
 * STATUS= refresh. */
static void notify(const char *state)
{
    static bool warned;
    int r = sd_notify(0, state);
    if (r < 0 && !warned) {
        warned = true;
        pc_log(PC_LOG_WARN, "cannot notify systemd (NOTIFY_SOCKET): %s",
               strerror(-r));
    }
}

static void send_status(struct pc_systemd *sd, const char *prefix)
{
    char status[sizeof sd->status], msg[sizeof sd->status + 64];
    pc_systemd_status(sd->srv, status, sizeof status);
    if (!prefix && strcmp(status, sd->status) == 0)
        return;
    memcpy(sd->status, status, sizeof status);
    snprintf(msg, sizeof msg, "%sSTATUS=%s", prefix ? prefix : "", status);
    notify(msg);
}

static void status_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop;
    (void)revents;
    struct pc_systemd *sd = t->data;
    if (sd->wd.stuck < 0)
        send_status(sd, NULL);
}

static void watchdog_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop;
    (void)revents;
    struct pc_systemd *sd = t->data;
    struct pc_server *srv = sd->srv;
    uint64_t now = monotonic_usec();
    for (unsigned i = 0; i < srv->nworkers; i++)
        sd->loops[i] = PC_STAT_GET(&srv->workers[i], loops);
    int was = sd->wd.stuck;
    int stuck = pc_watchdog_check(&sd->wd, sd->loops, now);
    sd->wd.stuck = stuck;
    if (stuck < 0) {
        notify("WATCHDOG=1");
        if (was >= 0) {
            pc_log(PC_LOG_NOTICE, "watchdog: worker %d runs its loop again",
                   was);
            send_status(sd, "");
        }
    } else if (stuck != was) {
        double secs = (double)(now - sd->wd.moved_usec[stuck]) / 1e6;
        pc_log(PC_LOG_ERR,
               "watchdog: worker %d has not run its event loop "
               "for %.1fs: no longer telling systemd that percored is "
               "alive, so it restarts percored after WatchdogSec=%gs",
               stuck, secs, (double)sd->watchdog_usec / 1e6);
        char msg[128];
        snprintf(msg, sizeof msg, "STATUS=worker %d stuck for %.1fs", stuck,
                 secs);
        notify(msg);
    }
    /* Wake every worker: one whose loop runs moves its loop counter (each
     * pass through the loop counts) well before the next check. */
    for (unsigned i = 0; i < srv->nworkers; i++)
        ev_async_send(srv->workers[i].loop, &srv->workers[i].doorbell);
}

#ifdef PC_FAULT_HOOKS
static void fault_cb(struct ev_loop *loop, ev_signal *s, int revents)
{
    (void)loop;
    (void)revents;
    struct pc_systemd *sd = s->data;
    pc_log(PC_LOG_WARN,
           "debug: SIGUSR2: making worker %u hang "
           "(PERCORED_DEBUG_HANG_WORKER)",
           sd->fault_worker);
    pc_worker_fault_hang(&sd->srv->workers[sd->fault_worker]);
}

/* Debug builds only: with PERCORED_DEBUG_HANG_WORKER=N in the environment,
 * SIGUSR2 makes worker N stop running its loop as a bug would, so a test
 * can check that the watchdog notices. */
static void fault_arm(struct pc_systemd *sd)
{
    const char *v = getenv("PERCORED_DEBUG_HANG_WORKER");
    char *end;
    if (!v)
        return;
    unsigned long n = strtoul(v, &end, 10);
    if (!*v || *end || n >= sd->srv->nworkers) {
        pc_log(PC_LOG_WARN,
               "debug: PERCORED_DEBUG_HANG_WORKER=%s: not a "
               "worker number below %u; ignored",
               v, sd->srv->nworkers);
        return;
    }
    sd->fault_worker = (unsigned)n;
    ev_signal_init(&sd->fault_signal, fault_cb, SIGUSR2);
    sd->fault_signal.data = sd;
    ev_signal_start(sd->srv->loop, &sd->fault_signal);
    sd->fault_armed = true;
    pc_log(PC_LOG_WARN, "debug: SIGUSR2 will make worker %lu hang", n);
}
#endif

/* ---- the service's life ----------------------------------------------- */

void pc_systemd_ready(struct pc_server *srv)
{
    struct pc_systemd *sd = calloc(1, sizeof *sd);
    if (!sd) {
        notify("READY=1");
        return;
    }
    sd->srv = srv;
    sd->wd.stuck = -1;
    sd->notify_socket = getenv("NOTIFY_SOCKET") != NULL;
    uint64_t usec = 0;
    int r = sd_watchdog_enabled(0, &usec);
    if (r < 0)
        pc_log(PC_LOG_WARN,
               "ignoring the systemd watchdog settings "
               "(WATCHDOG_USEC): %s",
               strerror(-r));
    else if (r > 0)
        sd->watchdog_usec = usec;
    srv->systemd = sd;
    send_status(sd, "READY=1\n");
    ev_timer_init(&sd->status_timer, status_cb, PC_STATUS_PERIOD,
                  PC_STATUS_PERIOD);
    sd->status_timer.data = sd;
    if (sd->notify_socket)
        ev_timer_start(srv->loop, &sd->status_timer);
    if (sd->watchdog_usec) {
        /* Checked four times per WatchdogSec; a worker is stuck after half
         * of it, which leaves one check to spare before systemd gives up
         * on us. */
        uint64_t now = monotonic_usec();
        sd->loops = calloc(srv->nworkers, sizeof *sd->loops);
        if (!sd->loops || pc_watchdog_init(&sd->wd, srv->nworkers,
                                           sd->watchdog_usec / 2, now) < 0) {
            pc_log(PC_LOG_ERR, "out of memory: cannot run the watchdog");
        } else {
            double period = (double)sd->watchdog_usec / 4e6;
            ev_timer_init(&sd->watchdog_timer, watchdog_cb, 0., period);
            sd->watchdog_timer.data = sd;
            ev_timer_start(srv->loop, &sd->watchdog_timer);
            pc_log(PC_LOG_INFO,
                   "systemd watchdog: every %gs, checking "
                   "that every worker runs its loop",
                   (double)sd->watchdog_usec / 1e6);
        }
    }
    sd->timers = true;
#ifdef PC_FAULT_HOOKS
    fault_arm(sd);
#endif
}

void pc_systemd_reloading(struct pc_server *srv)
{
    (void)srv;
    char msg[128];
    /* MONOTONIC_USEC lets a manager that knows Type=notify-reload tell
     * this reload from an earlier one; systemd 252 ignores it. */
    snprintf(msg, sizeof msg,
             "RELOADING=1\nSTATUS=reloading\n"
             "MONOTONIC_USEC=%llu",
             (unsigned long long)monotonic_usec());
    notify(msg);
}

void pc_systemd_reloaded(struct pc_server *srv)
{
    if (srv->systemd)
        send_status(srv->systemd, "READY=1\n");
}

void pc_systemd_stopping(struct pc_server *srv)
{
    char msg[256];
    uint64_t extend =
        (uint64_t)(srv->cfg->drain_timeout * 1e6) + PC_STOP_MARGIN_USEC;
    snprintf(msg, sizeof msg,
             "STOPPING=1\nSTATUS=stopping: draining %llu "
             "connections for up to %gs\nEXTEND_TIMEOUT_USEC=%llu",
             (unsigned long long)atomic_load_explicit(&srv->connections,
                                                      memory_order_relaxed),
             srv->cfg->drain_timeout, (unsigned long long)extend);
    notify(msg);
}

void pc_systemd_detach(struct pc_server *srv)
{
    struct pc_systemd *sd = srv->systemd;
    if (!sd)
        return;
    if (sd->timers) {
        ev_timer_stop(srv->loop, &sd->status_timer);
        ev_timer_stop(srv->loop, &sd->watchdog_timer);
#ifdef PC_FAULT_HOOKS
        if (sd->fault_armed)
            ev_signal_stop(srv->loop, &sd->fault_signal);
#endif
    }
    pc_watchdog_free(&sd->wd);
    free(sd->loops);
    free(sd);
    srv->systemd = NULL;
}
