/* percore-bench: start the load threads, move the run through its phases,
 * show progress, report. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "tls.h"

const char *const pcb_error_names[PCB_ERRORS] = {
    "connect", "closed", "mismatch", "protocol",
    "order",   "lost",   "tls",      "not_resumed",
};

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

uint64_t pcb_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void pcb_error(struct pcb_thread *t, enum pcb_error e)
{
    PCB_ADD(t, errors[e], 1);
}

void pcb_thread_ready(struct pcb_thread *t)
{
    if (t->ready)
        return;
    t->ready = true;
    atomic_fetch_add(&t->run->ready, 1);
}

void pcb_thread_done(struct pcb_thread *t)
{
    if (t->done)
        return;
    t->done = true;
    atomic_store(&t->end_ns, pcb_now_ns());
    atomic_fetch_add(&t->run->done, 1);
}

uint64_t pcb_run_start(const struct pcb_thread *t)
{
    return t->run->t_start;
}

/* Phases move one step at a time on each thread, so a mode sees WARMUP
 * before MEASURE even when the main thread skipped the warmup. */
static void wake_cb(struct ev_loop *loop, ev_async *w, int revents)
{
    struct pcb_thread *t = w->data;
    int target = atomic_load(&t->run->phase);
    while ((int)t->phase < target) {
        t->phase++;
        /* With --messages every answer counts, from the first. */
        t->measuring = t->phase == PCB_MEASURE ||
                       (t->phase == PCB_WARMUP && t->cfg->messages);
        t->run->ops->phase(t);
        if (t->phase == PCB_STOP)
            atomic_fetch_add(&t->run->stopped, 1);
    }
    if (t->phase == PCB_QUIT)
        ev_break(loop, EVBREAK_ALL);
}

static void *thread_main(void *arg)
{
    struct pcb_thread *t = arg;
    const struct pcb_config *cfg = t->cfg;
    if (cfg->ncpus) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(cfg->cpus[t->id % cfg->ncpus], &set);
        int r = pthread_setaffinity_np(pthread_self(), sizeof set, &set);
        if (r)
            fprintf(stderr,
                    "percore-bench: thread %u: cannot pin to CPU "
                    "%d: %s\n",
                    t->id, cfg->cpus[t->id % cfg->ncpus], strerror(r));
    }
    ev_async_init(&t->wake, wake_cb);
    t->wake.data = t;
    ev_async_start(t->loop, &t->wake);
    if (t->count == 0) {
        pcb_thread_ready(t);
        pcb_thread_done(t);
    } else if (t->run->ops->setup(t) < 0) {
        snprintf(t->setup_error, sizeof t->setup_error, "out of memory");
        pcb_thread_ready(t);
    }
    ev_run(t->loop, 0);
    t->run->ops->fini(t);
    return NULL;
}

static void set_phase(struct pcb_run *run, enum pcb_phase p)
{
    atomic_store(&run->phase, p);
    for (unsigned i = 0; i < run->cfg->threads; i++)
        ev_async_send(run->threads[i].loop, &run->threads[i].wake);
}

static uint64_t sum(const struct pcb_run *run, size_t offset)
{
    uint64_t n = 0;
    for (unsigned i = 0; i < run->cfg->threads; i++)
        n += atomic_load_explicit(
            (atomic_uint_fast64_t *)((char *)&run->threads[i].c + offset),
            memory_order_relaxed);
    return n;
}
#define SUM(run, field) sum(run, offsetof(struct pcb_counters, field))

static uint64_t errors_now(const struct pcb_run *run)
{
    uint64_t n = 0;
    for (int e = 0; e < PCB_ERRORS; e++)
        n += sum(run, offsetof(struct pcb_counters, errors) +
                          (size_t)e * sizeof(atomic_uint_fast64_t));
    return n;
}

/* The live line on stderr, only when it is a terminal. */
struct progress {
    bool on;
    uint64_t last_ns, last_count;
};

static void progress_show(struct progress *p, const struct pcb_run *run,
                          const char *what)
{
    if (!p->on)
        return;
    uint64_t now = pcb_now_ns();
    if (now - p->last_ns < 500000000u && what == NULL)
        return;
    const struct pcb_config *cfg = run->cfg;
    int phase = atomic_load(&run->phase);
    if (phase == PCB_SETUP) {
        fprintf(stderr, "\r\033[Kconnecting: %llu of %u set up, %llu errors",
                (unsigned long long)SUM(run, ready), cfg->connections,
                (unsigned long long)errors_now(run));
    } else {
        uint64_t count =
            pcb_rooms_mode(cfg->mode) ? SUM(run, received) : SUM(run, messages);
        double dt = (double)(now - p->last_ns) / 1e9;
        double rate = p->last_ns && count >= p->last_count
                          ? (double)(count - p->last_count) / dt
                          : 0;
        double since = (double)(now - run->t_start) / 1e9;
        static const char *const units[PCB_MODES] = {
            "msg/s", "conn/s", "msg/s", "deliveries/s", "handshakes/s",
            "deliveries/s"};
        fprintf(stderr,
                "\r\033[K%6.1fs %-7s %12.0f %s  %llu open  %llu "
                "errors",
                since,
                what                   ? what
                : phase == PCB_WARMUP  ? "warmup"
                : phase == PCB_MEASURE ? "measure"
                                       : "drain",
                rate, units[cfg->mode], (unsigned long long)SUM(run, open),
                (unsigned long long)errors_now(run));
        p->last_count = count;
    }
    p->last_ns = now;
}

static void progress_end(struct progress *p)
{
    if (p->on)
        fprintf(stderr, "\r\033[K");
}

/* Sleeps until `until` (ns) or until `stop` says so, showing progress. */
static void wait_until(struct pcb_run *run, struct progress *p, uint64_t until,
                       bool (*stop)(struct pcb_run *))
{
    for (;;) {
        uint64_t now = pcb_now_ns();
        if (now >= until || interrupted || (stop && stop(run)))
            return;
        uint64_t step = until - now < 5000000u ? until - now : 5000000u;
        struct timespec ts = {0, (long)step};
        nanosleep(&ts, NULL);
        progress_show(p, run, NULL);
    }
}

static bool all_ready(struct pcb_run *run)
{
    return atomic_load(&run->ready) == run->cfg->threads;
}

static bool all_done(struct pcb_run *run)
{
    return atomic_load(&run->done) == run->cfg->threads;
}

/* chat: every member that reads has every line that was sent (but its
 * own, where the server does not echo). Only once every thread has
 * stopped sending: a line sent after `sent` was read would be reported
 * lost. */
static bool all_delivered(struct pcb_run *run)
{
    if (atomic_load(&run->stopped) < run->cfg->threads)
        return false;
    uint64_t sent = SUM(run, sent);
    return SUM(run, received) >= sent * pcb_chat_fanout(run->cfg);
}

static double self_cpu(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static void raise_nofile(const struct pcb_config *cfg)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    unsigned need =
        cfg->connections +
        (cfg->target == PCB_TARGET_REDIS ? cfg->rooms * cfg->senders : 0) +
        cfg->threads * 4 + 16;
    if (rl.rlim_cur < need && cfg->mode != PCB_CHURN &&
        cfg->mode != PCB_HANDSHAKE)
        fprintf(stderr,
                "percore-bench: warning: %u connections need about "
                "%u open files; the limit is %llu\n",
                cfg->connections, need, (unsigned long long)rl.rlim_cur);
}

static int write_ready_file(const char *path, uint64_t n)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f || fprintf(f, "%llu\n", (unsigned long long)n) < 0 ||
        fclose(f) != 0 || rename(tmp, path) < 0) {
        fprintf(stderr, "percore-bench: --ready-file %s: %s\n", path,
                strerror(errno));
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    static struct pcb_config cfg;
    char err[256];
    int r = pcb_args_parse(&cfg, argc, argv, err, sizeof err);
    if (r == PCB_ARGS_EXIT)
        return 0;
    if (r < 0) {
        fprintf(stderr, "percore-bench: %s\n", err);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    raise_nofile(&cfg);

    static struct pcb_run run;
    run.cfg = &cfg;
    run.ops = cfg.mode == PCB_CHURN       ? &pcb_churn_ops
              : pcb_rooms_mode(cfg.mode) ? &pcb_chat_ops
              : cfg.mode == PCB_HANDSHAKE ? &pcb_handshake_ops
                                          : &pcb_echo_ops;
    if (pcb_resolve(&cfg, &run) < 0)
        return 2;
    if (cfg.tls && !(run.tls_ctx = pcb_tls_ctx_new(&cfg)))
        return 2;
    pcb_pattern_init();

    struct pcb_result res = {.cfg = &cfg};
    for (unsigned i = 0; i < cfg.npids; i++)
        if (!pcb_proc_sample(cfg.server_pid[i]).ok) {
            fprintf(stderr,
                    "percore-bench: --server-pid %d: no such "
                    "process\n",
                    cfg.server_pid[i]);
            return 2;
        }
    res.before = pcb_proc_sample_all(&cfg, res.start_each);

    run.threads = calloc(cfg.threads, sizeof *run.threads);
    if (!run.threads)
        return 2;
    for (unsigned i = 0; i < cfg.threads; i++) {
        struct pcb_thread *t = &run.threads[i];
        t->id = i;
        t->run = &run;
        t->cfg = &cfg;
        pcb_thread_share(&cfg, i, &t->first, &t->count);
        t->hist = malloc(sizeof *t->hist);
        t->scratch = malloc(PCB_SCRATCH);
        t->loop = ev_loop_new(EVFLAG_AUTO | EVFLAG_NOSIGMASK);
        if (!t->hist || !t->scratch || !t->loop) {
            fprintf(stderr, "percore-bench: out of memory\n");
            return 2;
        }
        pcb_hist_reset(t->hist);
    }
    struct progress prog = {.on = !cfg.quiet && isatty(2)};
    uint64_t t0 = pcb_now_ns();
    for (unsigned i = 0; i < cfg.threads; i++) {
        if ((r = pthread_create(&run.threads[i].tid, NULL, thread_main,
                                &run.threads[i]))) {
            fprintf(stderr, "percore-bench: pthread_create: %s\n", strerror(r));
            return 2;
        }
    }

    /* Setup: every connection established (and joined). */
    wait_until(&run, &prog, t0 + (uint64_t)(cfg.connect_timeout * 1e9),
               all_ready);
    bool setup_ok = all_ready(&run) && !interrupted;
    res.setup_s = (double)(pcb_now_ns() - t0) / 1e9;
    if (setup_ok && cfg.ready_file[0])
        write_ready_file(cfg.ready_file, SUM(&run, open));

    if (setup_ok) {
        run.t_start = pcb_now_ns();
        set_phase(&run, PCB_WARMUP);
        if (cfg.warmup > 0)
            wait_until(&run, &prog, run.t_start + (uint64_t)(cfg.warmup * 1e9),
                       NULL);
        res.start = pcb_proc_sample_all(&cfg, res.start_each);
        res.client_cpu_s = -self_cpu();
        run.t_measure = pcb_now_ns();
        set_phase(&run, PCB_MEASURE);
        if (cfg.messages) {
            wait_until(&run, &prog, UINT64_MAX, all_done);
            run.t_stop = run.t_measure;
            for (unsigned i = 0; i < cfg.threads; i++) {
                uint64_t e = atomic_load(&run.threads[i].end_ns);
                if (e > run.t_stop)
                    run.t_stop = e;
            }
            if (!all_done(&run))
                run.t_stop = pcb_now_ns();
        } else {
            wait_until(&run, &prog,
                       run.t_measure + (uint64_t)(cfg.duration * 1e9),
                       all_done);
            run.t_stop = pcb_now_ns();
        }
        res.end = pcb_proc_sample_all(&cfg, res.end_each);
        res.client_cpu_s += self_cpu();
        res.open_at_stop = SUM(&run, open);
        set_phase(&run, PCB_STOP);
        wait_until(&run, &prog, pcb_now_ns() + (uint64_t)(cfg.drain * 1e9),
                   pcb_rooms_mode(cfg.mode) ? all_delivered : all_done);
    } else {
        run.t_start = run.t_measure = run.t_stop = pcb_now_ns();
        fprintf(stderr,
                "percore-bench: %s after %.1f s: %llu of %u "
                "connections set up\n",
                interrupted ? "interrupted" : "setup timed out", res.setup_s,
                (unsigned long long)SUM(&run, ready), cfg.connections);
    }
    set_phase(&run, PCB_QUIT);
    for (unsigned i = 0; i < cfg.threads; i++)
        pthread_join(run.threads[i].tid, NULL);
    progress_end(&prog);

    /* Sum up. The threads have ended: plain reads from here on. */
    res.hist = malloc(sizeof *res.hist);
    if (!res.hist)
        return 2;
    pcb_hist_reset(res.hist);
    res.window_s = (double)(run.t_stop - run.t_measure) / 1e9;
    res.interrupted = interrupted;
    res.messages = SUM(&run, messages);
    res.bytes = SUM(&run, bytes);
    res.opened = SUM(&run, opened);
    res.sent = SUM(&run, sent);
    res.received = SUM(&run, received);
    res.stalled_cut = SUM(&run, stalled_cut);
    res.resumed = SUM(&run, resumed);
    res.offered = SUM(&run, offered);
    for (unsigned i = 0; i < cfg.threads; i++) {
        if (!res.tls.protocol[0])
            res.tls = run.threads[i].tls;
        pcb_hist_merge(res.hist, run.threads[i].hist);
        for (int e = 0; e < PCB_ERRORS; e++)
            res.errors[e] += atomic_load(&run.threads[i].c.errors[e]);
    }
    if (pcb_rooms_mode(cfg.mode)) {
        res.expected = res.sent * pcb_chat_fanout(&cfg);
        if (res.received < res.expected)
            res.errors[PCB_ERR_LOST] += res.expected - res.received;
    }
    for (int e = 0; e < PCB_ERRORS; e++)
        res.errors_total += res.errors[e];
    if (!setup_ok && !res.errors_total)
        res.errors[PCB_ERR_CONNECT] = res.errors_total = 1;

    if (cfg.json)
        pcb_report_json(stdout, &res);
    else
        pcb_report_text(stdout, &res);
    fflush(stdout);

    for (unsigned i = 0; i < cfg.threads; i++) {
        free(run.threads[i].hist);
        free(run.threads[i].scratch);
        ev_loop_destroy(run.threads[i].loop);
    }
    free(run.threads);
    free(res.hist);
    if (run.tls_ctx)
        pcb_tls_ctx_free(run.tls_ctx);
    return res.errors_total || interrupted ? 1 : 0;
}
