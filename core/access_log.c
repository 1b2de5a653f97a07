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
    unsigned n;
    int pipes[PC_MAX_LISTENERS][2];
    int ctl[2];      /* main -> writer: 'r' reopen, 's' stop */
    pthread_t thread;
    /* What the config names, written by main, read by the writer at 'r'. */
    pthread_mutex_t lock;
    char want[PC_MAX_LISTENERS][PC_ADDR_MAX];
    char names[PC_MAX_LISTENERS][PC_NAME_MAX]; /* set at start only */
    struct sink sinks[PC_MAX_LISTENERS];
    atomic_uint_fast64_t dropped; /* lines a full pipe refused */
    uint64_t dropped_said;        /* the writer's: how many it reported */
    char *buf;                    /* the writer's: one pipe's capacity */
    size_t buf_size;
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
            if (!s->failing)
                pc_log(PC_LOG_ERR, "access log of [listener %s]: %s: %s; "
                       "its lines are lost until a write succeeds",
                       log->names[i], s->path, strerror(w < 0 ? errno : EIO));
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
static void drain(struct pc_access_log *log, unsigned i)
{
    for (;;) {
        ssize_t n = read(log->pipes[i][0], log->buf, log->buf_size);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        sink_write(log, i, log->buf, (size_t)n);
    }
}

/* A file is opened anew even when its name did not change: logrotate
 * renamed the old one away. A failure keeps the old one. */
static void reopen_all(struct pc_access_log *log)
{
    for (unsigned i = 0; i < log->n; i++) {
        char want[PC_ADDR_MAX];
        pthread_mutex_lock(&log->lock);
        snprintf(want, sizeof want, "%s", log->want[i]);
        pthread_mutex_unlock(&log->lock);
        drain(log, i); /* what was queued goes where it was meant to */
        struct sink s;
        int e = sink_open(&s, want);
        if (e < 0) {
            pc_log(PC_LOG_ERR, "access log of [listener %s]: cannot open %s: "
                   "%s; still writing to %s", log->names[i], want,
                   strerror(-e), *log->sinks[i].path ? log->sinks[i].path
                                                     : "nowhere");
            continue;
        }
        sink_close(&log->sinks[i]);
        log->sinks[i] = s;
    }
}

static void *writer_main(void *arg)
{
    struct pc_access_log *log = arg;
    (void)pthread_setname_np(pthread_self(), "pc-access");
    struct pollfd p[PC_MAX_LISTENERS + 1];
    p[0] = (struct pollfd){.fd = log->ctl[0], .events = POLLIN};
    for (unsigned i = 0; i < log->n; i++)
        p[i + 1] = (struct pollfd){.fd = log->pipes[i][0], .events = POLLIN};
    for (bool stop = false; !stop;) {
        /* Wakes once a second to say how many lines were dropped. */
        int r = poll(p, log->n + 1, 1000);
        if (r < 0 && errno != EINTR)
            break;
        for (unsigned i = 0; i < log->n; i++)
            if (p[i + 1].revents)
                drain(log, i);
        char c;
        while (p[0].revents && read(log->ctl[0], &c, 1) == 1) {
            if (c == 'r')
                reopen_all(log);
            else
                stop = true;
        }
        uint64_t d = atomic_load_explicit(&log->dropped, memory_order_relaxed);
        if (d != log->dropped_said) {
            pc_log(PC_LOG_WARN, "access log: %llu lines dropped so far (the "
                   "files took them slower than connections closed)",
                   (unsigned long long)d);
            log->dropped_said = d;
        }
    }
    for (unsigned i = 0; i < log->n; i++)
        drain(log, i);
    return NULL;
}

static void set_wanted(struct pc_access_log *log, const struct pc_config *cfg)
{
    pthread_mutex_lock(&log->lock);
    for (unsigned i = 0; i < log->n && i < cfg->nlisteners; i++)
        snprintf(log->want[i], sizeof log->want[i], "%s",
                 cfg->listeners[i].access_log);
    pthread_mutex_unlock(&log->lock);
}

static void free_log(struct pc_access_log *log)
{
    for (unsigned i = 0; i < log->n; i++) {
        close(log->pipes[i][0]);
        close(log->pipes[i][1]);
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
    int e = 0;
    bool said = false;
    if (pipe2(log->ctl, O_NONBLOCK | O_CLOEXEC) < 0)
        e = -errno;
    for (; !e && log->n < cfg->nlisteners; log->n++) {
        unsigned i = log->n;
        if (pipe2(log->pipes[i], O_NONBLOCK | O_CLOEXEC) < 0) {
            e = -errno;
            break;
        }
        int cap = fcntl(log->pipes[i][0], F_GETPIPE_SZ);
        if (cap > 0 && (size_t)cap > log->buf_size)
            log->buf_size = (size_t)cap;
        const struct pc_listener_config *l = &cfg->listeners[i];
        snprintf(log->names[i], sizeof log->names[i], "%s", l->name);
        if ((e = sink_open(&log->sinks[i], l->access_log)) < 0) {
            pc_log(PC_LOG_ERR, "[listener %s] access_log: %s: %s", l->name,
                   l->access_log, strerror(-e));
            said = true;
            close(log->pipes[i][0]);
            close(log->pipes[i][1]);
            break;
        }
    }
    if (!e && !(log->buf = malloc(log->buf_size ? log->buf_size : 65536)))
        e = -ENOMEM;
    if (!log->buf_size)
        log->buf_size = 65536;
    if (!e) {
        set_wanted(log, cfg);
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, &old);
        e = -pthread_create(&log->thread, NULL, writer_main, log);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
    }
    if (e) {
        if (!said)
            pc_log(PC_LOG_ERR, "access logs: %s", strerror(-e));
        free_log(log);
        return e;
    }
    *out = log;
    return 0;
}

void pc_access_log_write(struct pc_access_log *log, unsigned li,
                         const char *line, size_t len)
{
    if (li >= log->n || write(log->pipes[li][1], line, len) != (ssize_t)len)
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
