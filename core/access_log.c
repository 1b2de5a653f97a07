/* The access logs' pipes and their writer thread (access_log.h says why a
 * pipe per listener and a thread). */
#include "core/access_log.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "core/log.h"

/* Where one listener's lines go: the writer thread's alone once it runs. */
struct sink {
    int fd;          /* -1: none (or syslog) */
    bool syslog;
    bool failing;    /* a write failed: said once, until one succeeds */
    char path[PC_ADDR_MAX];
};

struct pc_access_log {
    /* Write ends, per slot, -1 until made: workers load them (acquire),
     * main stores them once (release) before any worker can log there. */
    atomic_int wfd[PC_MAX_SLOTS];
    int ctl[2];      /* main -> writer: 'r' reopen, 's' stop */
    pthread_t thread;
    /* Main writes, the writer reads, both under lock: the read ends, what
     * the config names and the listener names, per slot. */
    pthread_mutex_t lock;
    int rfd[PC_MAX_SLOTS];
    char want[PC_MAX_SLOTS][PC_ADDR_MAX];
    char names[PC_MAX_SLOTS][PC_NAME_MAX];
    /* The writer's alone. */
    struct sink sinks[PC_MAX_SLOTS];
    uint64_t dropped_said;
    char *buf;                    /* one pipe's capacity */
    size_t buf_size;
    atomic_uint_fast64_t dropped; /* lines refused: full pipe, no pipe */
};

/* Opens the place `path` names into s. 0 or -errno. */
static int sink_open(struct sink *s, const char *path)
{
    int fd = -1;
    bool to_syslog = strcmp(path, "syslog") == 0;
    if (to_syslog) {
        openlog("percored", LOG_NDELAY | LOG_PID, LOG_DAEMON);
    } else if (strcmp(path, "stderr") == 0) {
        fd = STDERR_FILENO;
    } else if (*path) {
        fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
        if (fd < 0)
            return -errno;
    }
    s->fd = fd;
    s->syslog = to_syslog;
    s->failing = false;
    snprintf(s->path, sizeof s->path, "%s", path);
    return 0;
}

static void sink_close(struct sink *s)
{
    if (s->fd > STDERR_FILENO)
        close(s->fd);
    s->fd = -1;
}

static void name_of(struct pc_access_log *log, unsigned i,
                    char name[PC_NAME_MAX])
{
    pthread_mutex_lock(&log->lock);
    memcpy(name, log->names[i], PC_NAME_MAX);
    pthread_mutex_unlock(&log->lock);
}

static void sink_write(struct pc_access_log *log, unsigned i, const char *p,
                       size_t len)
{
    struct sink *s = &log->sinks[i];
    if (s->syslog) {
        for (const char *end = p + len; p < end;) {
            const char *nl = memchr(p, '\n', (size_t)(end - p));
            size_t n = (size_t)((nl ? nl : end) - p);
            syslog(LOG_INFO, "%.*s", (int)n, p);
            p += n + 1;
        }
        return;
    }
    while (s->fd >= 0 && len) {
        ssize_t w = write(s->fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            int e = w < 0 ? errno : EIO;
            if (!s->failing) {
                char name[PC_NAME_MAX];
                name_of(log, i, name);
                pc_log(PC_LOG_ERR, "access log of [listener %s]: %s: %s; "
                       "its lines are lost until a write succeeds", name,
                       s->path, strerror(e));
            }
            s->failing = true;
            return;
        }
        s->failing = false;
        p += w;
        len -= (size_t)w;
    }
}

/* Moves what pipe i holds to its sink. The buffer is the pipe's whole
 * capacity, so one read takes every line in it, each whole (a write of
 * at most PIPE_BUF is never split). */
static void drain(struct pc_access_log *log, unsigned i, int fd)
{
    for (;;) {
        ssize_t n = read(fd, log->buf, log->buf_size);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        sink_write(log, i, log->buf, (size_t)n);
    }
}

/* A file is opened anew even when its name did not change: logrotate
 * renamed the old one away. A failure keeps the old one. */
static void reopen_all(struct pc_access_log *log, const int *rfd)
{
    for (unsigned i = 0; i < PC_MAX_SLOTS; i++) {
        char want[PC_ADDR_MAX], name[PC_NAME_MAX];
        pthread_mutex_lock(&log->lock);
        memcpy(want, log->want[i], sizeof want);
        memcpy(name, log->names[i], sizeof name);
        pthread_mutex_unlock(&log->lock);
        if (!*want && !*log->sinks[i].path)
            continue;
        if (rfd[i] >= 0)
            drain(log, i, rfd[i]); /* what was queued goes where it was meant */
        struct sink s = {.fd = -1};
        int e = sink_open(&s, want);
        if (e < 0) {
            pc_log(PC_LOG_ERR, "access log of [listener %s]: cannot open %s: "
                   "%s; still writing to %s", name, want, strerror(-e),
                   *log->sinks[i].path ? log->sinks[i].path : "nowhere");
            continue;
        }
        sink_close(&log->sinks[i]);
        log->sinks[i] = s;
        /* Said, so that a rotation can tell when the old file is done. */
        if (*want)
            pc_log(PC_LOG_INFO, "access log of [listener %s]: writing to %s",
                   name, want);
    }
}

/* The pipes to watch: the control pipe, then every slot's read end. */
static unsigned watch(struct pc_access_log *log, struct pollfd *p,
                      unsigned *slot_of, int *rfd)
{
    unsigned n = 0;
    p[n++] = (struct pollfd){.fd = log->ctl[0], .events = POLLIN};
    pthread_mutex_lock(&log->lock);
    for (unsigned i = 0; i < PC_MAX_SLOTS; i++) {
        rfd[i] = log->rfd[i];
        if (rfd[i] >= 0) {
            slot_of[n] = i;
            p[n++] = (struct pollfd){.fd = rfd[i], .events = POLLIN};
        }
    }
    pthread_mutex_unlock(&log->lock);
    return n;
}

static void *writer_main(void *arg)
{
    struct pc_access_log *log = arg;
    (void)pthread_setname_np(pthread_self(), "pc-access");
    struct pollfd p[PC_MAX_SLOTS + 1];
    unsigned slot_of[PC_MAX_SLOTS + 1];
    int rfd[PC_MAX_SLOTS];
    unsigned n = watch(log, p, slot_of, rfd);
    reopen_all(log, rfd);
    for (bool stop = false; !stop;) {
        /* Wakes once a second to say how many lines were dropped. */
        int r = poll(p, n, 1000);
        if (r < 0 && errno != EINTR)
            break;
        for (unsigned k = 1; r > 0 && k < n; k++)
            if (p[k].revents)
                drain(log, slot_of[k], p[k].fd);
        char c;
        while (r > 0 && p[0].revents && read(log->ctl[0], &c, 1) == 1) {
            if (c == 'r') {
                n = watch(log, p, slot_of, rfd); /* new slots too */
                reopen_all(log, rfd);
            } else {
                stop = true;
            }
        }
        uint64_t d = atomic_load_explicit(&log->dropped, memory_order_relaxed);
        if (d != log->dropped_said) {
            pc_log(PC_LOG_WARN, "access log: %llu lines dropped so far (the "
                   "files took them slower than connections closed)",
                   (unsigned long long)d);
            log->dropped_said = d;
        }
    }
    for (unsigned k = 1; k < n; k++)
        drain(log, slot_of[k], p[k].fd);
    return NULL;
}

static void set_wanted(struct pc_access_log *log, const struct pc_config *cfg)
{
    pthread_mutex_lock(&log->lock);
    for (unsigned i = 0; i < cfg->nlisteners; i++) {
        const struct pc_listener_config *l = &cfg->listeners[i];
        snprintf(log->want[l->slot], sizeof log->want[0], "%s", l->access_log);
        snprintf(log->names[l->slot], sizeof log->names[0], "%s", l->name);
    }
    pthread_mutex_unlock(&log->lock);
}

static void free_log(struct pc_access_log *log)
{
    for (unsigned i = 0; i < PC_MAX_SLOTS; i++) {
        int w = atomic_load_explicit(&log->wfd[i], memory_order_relaxed);
        if (w >= 0) {
            close(w);
            close(log->rfd[i]);
        }
        sink_close(&log->sinks[i]);
    }
    if (log->ctl[0] >= 0) {
        close(log->ctl[0]);
        close(log->ctl[1]);
    }
    pthread_mutex_destroy(&log->lock);
    free(log->buf);
    free(log);
}

int pc_access_log_prepare(struct pc_access_log *log,
                          const struct pc_config *cfg, char *why,
                          size_t size)
{
    for (unsigned i = 0; i < cfg->nlisteners; i++) {
        const struct pc_listener_config *l = &cfg->listeners[i];
        if (!*l->access_log)
            continue;
        /* Opened once here to say now, not in the writer later, when a
         * file cannot be written. */
        struct sink t = {.fd = -1};
        int e = sink_open(&t, l->access_log);
        if (e < 0) {
            snprintf(why, size, "[listener %s] access_log: %s: %s", l->name,
                     l->access_log, strerror(-e));
            return e;
        }
        sink_close(&t);
        if (atomic_load_explicit(&log->wfd[l->slot], memory_order_relaxed) >=
            0)
            continue;
        int fds[2];
        if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) < 0) {
            e = errno;
            snprintf(why, size, "[listener %s] access_log: no pipe: %s",
                     l->name, strerror(e));
            return -e;
        }
        pthread_mutex_lock(&log->lock);
        log->rfd[l->slot] = fds[0];
        pthread_mutex_unlock(&log->lock);
        atomic_store_explicit(&log->wfd[l->slot], fds[1],
                              memory_order_release);
    }
    return 0;
}

int pc_access_log_start(struct pc_access_log **out,
                        const struct pc_config *cfg)
{
    struct pc_access_log *log = calloc(1, sizeof *log);
    if (!log) {
        pc_log(PC_LOG_ERR, "access logs: out of memory");
        return -ENOMEM;
    }
    pthread_mutex_init(&log->lock, NULL);
    log->ctl[0] = log->ctl[1] = -1;
    for (unsigned i = 0; i < PC_MAX_SLOTS; i++) {
        atomic_init(&log->wfd[i], -1);
        log->rfd[i] = -1;
        log->sinks[i].fd = -1;
    }
    char why[PC_ERR_MAX];
    int e = pipe2(log->ctl, O_NONBLOCK | O_CLOEXEC) < 0 ? -errno : 0;
    if (e)
        snprintf(why, sizeof why, "access logs: %s", strerror(-e));
    else
        e = pc_access_log_prepare(log, cfg, why, sizeof why);
    /* Every pipe gets the default capacity, the control pipe's too: the
     * writer's buffer takes a whole pipe in one read. */
    int cap = e ? -1 : fcntl(log->ctl[0], F_GETPIPE_SZ);
    log->buf_size = cap > 0 ? (size_t)cap : 65536;
    if (!e && !(log->buf = malloc(log->buf_size))) {
        e = -ENOMEM;
        snprintf(why, sizeof why, "access logs: out of memory");
    }
    if (!e) {
        set_wanted(log, cfg);
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, &old);
        e = -pthread_create(&log->thread, NULL, writer_main, log);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (e)
            snprintf(why, sizeof why, "access logs: %s", strerror(-e));
    }
    if (e) {
        pc_log(PC_LOG_ERR, "%s", why);
        free_log(log);
        return e;
    }
    *out = log;
    return 0;
}

void pc_access_log_write(struct pc_access_log *log, unsigned slot,
                         const char *line, size_t len)
{
    int fd = slot < PC_MAX_SLOTS ? atomic_load_explicit(&log->wfd[slot],
                                                        memory_order_acquire)
                                 : -1;
    if (fd < 0 || write(fd, line, len) != (ssize_t)len)
        atomic_fetch_add_explicit(&log->dropped, 1, memory_order_relaxed);
}

void pc_access_log_reopen(struct pc_access_log *log,
                          const struct pc_config *cfg)
{
    if (!log)
        return;
    set_wanted(log, cfg);
    if (write(log->ctl[1], "r", 1) != 1)
        pc_log(PC_LOG_ERR, "access logs: cannot ask for a reopen: %s",
               strerror(errno));
}

void pc_access_log_stop(struct pc_access_log *log)
{
    if (!log)
        return;
    /* The control pipe is empty but for a few reopens: 's' fits. */
    if (write(log->ctl[1], "s", 1) == 1)
        pthread_join(log->thread, NULL);
    free_log(log);
}
