/* percore-bench's run: threads, phases, counters, and what a mode
 * provides. One load thread owns one libev loop and its share of the
 * connections; the main thread only starts, times, watches and reports. */
#ifndef PCB_BENCH_H
#define PCB_BENCH_H

#include <ev.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#include "config.h"
#include "hist.h"

/* The run's phases, in order; the main thread moves them forward and wakes
 * every load thread with its ev_async. */
enum pcb_phase {
    PCB_SETUP,   /* connecting (and joining, for chat) */
    PCB_WARMUP,  /* load on, not measured */
    PCB_MEASURE, /* load on, measured */
    PCB_STOP,    /* no new load; collect the answers still owed */
    PCB_QUIT,    /* close everything now */
};

enum pcb_error {
    PCB_ERR_CONNECT,     /* connect() failed or timed out */
    PCB_ERR_CLOSED,      /* the server closed or reset a connection early */
    PCB_ERR_MISMATCH,    /* an echoed byte differs from the one sent */
    PCB_ERR_PROTOCOL,    /* an unexpected or malformed answer (chat, ERR) */
    PCB_ERR_ORDER,       /* chat: a sender's lines out of order or twice */
    PCB_ERR_LOST,        /* answers still owed when the drain time ran out */
    PCB_ERR_TLS,         /* a TLS handshake or record failed */
    PCB_ERR_NOT_RESUMED, /* --resume: a session offered, not taken */
    PCB_ERRORS
};
extern const char *const pcb_error_names[PCB_ERRORS];

/* Written by one load thread, read by the main thread while running:
 * relaxed loads and stores, no read-modify-write (see PCB_ADD). */
struct pcb_counters {
    atomic_uint_fast64_t messages;    /* measured: echoes / exchanges /
                                         chat deliveries */
    atomic_uint_fast64_t bytes;       /* measured bytes echoed */
    atomic_uint_fast64_t open;        /* connections open now */
    atomic_uint_fast64_t opened;      /* connections established, all time */
    atomic_uint_fast64_t ready;       /* connections set up (setup phase) */
    atomic_uint_fast64_t sent;        /* chat: lines sent, all phases */
    atomic_uint_fast64_t received;    /* chat: deliveries, all phases, to
                                         members that keep reading */
    atomic_uint_fast64_t stalled_cut; /* chat: stalled members the server
                                         disconnected */
    atomic_uint_fast64_t resumed;     /* handshake: measured, session taken */
    atomic_uint_fast64_t offered;     /* handshake: measured, session offered */
    atomic_uint_fast64_t errors[PCB_ERRORS];
};
#define PCB_ADD(t, field, n)                                                   \
    atomic_store_explicit(                                                     \
        &(t)->c.field,                                                         \
        atomic_load_explicit(&(t)->c.field, memory_order_relaxed) + (n),       \
        memory_order_relaxed)
#define PCB_GET(t, field)                                                      \
    atomic_load_explicit(&(t)->c.field, memory_order_relaxed)

struct pcb_run;
struct pcb_thread;
struct ssl_ctx_st;     /* OpenSSL's SSL_CTX, SSL and SSL_SESSION, kept */
struct ssl_st;         /* opaque here so that only tls.c needs OpenSSL's */
struct ssl_session_st; /* headers */

/* What a TLS handshake settled on, for the report. */
struct pcb_tls_info {
    char protocol[16], cipher[64], group[32];
};

/* What a mode does on a load thread. */
struct pcb_mode_ops {
    /* Start connecting this thread's share; call pcb_thread_ready() once
     * all of it is set up. Non-zero: the run cannot start. */
    int (*setup)(struct pcb_thread *t);
    /* The phase moved on (t->phase already holds the new one). On
     * PCB_STOP, call pcb_thread_done() once nothing more is owed; on
     * PCB_QUIT close everything. */
    void (*phase)(struct pcb_thread *t);
    /* After the loop ended: free the mode's state. */
    void (*fini)(struct pcb_thread *t);
};

struct pcb_thread {
    unsigned id;
    struct pcb_run *run;
    const struct pcb_config *cfg;
    pthread_t tid;
    struct ev_loop *loop;
    ev_async wake;
    enum pcb_phase phase; /* this thread's copy */
    bool measuring;       /* phase == PCB_MEASURE */
    bool done, ready;
    unsigned first, count; /* this thread's connections: [first, +count) */
    struct pcb_counters c;
    struct pcb_hist *hist;       /* latencies measured, ns */
    atomic_uint_fast64_t end_ns; /* when it finished (messages mode) */
    char *scratch;               /* PCB_SCRATCH bytes for reads */
    unsigned connecting;         /* connects in flight */
    void *mode;                  /* the mode's state */
    struct pcb_tls_info tls;     /* the thread's first TLS handshake */
    char setup_error[160];
};

struct pcb_run {
    const struct pcb_config *cfg;
    const struct pcb_mode_ops *ops;
    struct sockaddr_storage addr[PCB_MAX_ADDRS]; /* cfg->addr, resolved */
    socklen_t addrlen[PCB_MAX_ADDRS];
    struct ssl_ctx_st *tls_ctx; /* with --tls and in handshake mode */
    atomic_int phase;
    atomic_uint ready;   /* threads set up */
    atomic_uint done;    /* threads finished */
    atomic_uint stopped; /* threads that saw PCB_STOP: they send no more */
    uint64_t t_start;    /* ns, CLOCK_MONOTONIC: load switched on */
    uint64_t t_measure;
    uint64_t t_stop;
    struct pcb_thread *threads;
};

#define PCB_SCRATCH ((size_t)256 * 1024)

/* ---- provided by main.c, for the modes ---- */
uint64_t pcb_now_ns(void);
void pcb_error(struct pcb_thread *t, enum pcb_error e);
/* This thread's share is set up (once). */
void pcb_thread_ready(struct pcb_thread *t);
/* Nothing more is owed on this thread: its loop ends. */
void pcb_thread_done(struct pcb_thread *t);
/* The run's start time (t_start), readable once past PCB_SETUP. */
uint64_t pcb_run_start(const struct pcb_thread *t);

/* ---- net.c ---- */
/* Resolves every cfg->addr into run; -1 with a message on stderr. */
int pcb_resolve(const struct pcb_config *cfg, struct pcb_run *run);
/* A non-blocking, close-on-exec, TCP_NODELAY socket with connect() begun
 * to connection `index`'s server (the addresses take turns). Returns the
 * fd or -errno. */
int pcb_connect_start(const struct pcb_run *run, unsigned index, int rcvbuf);
/* After the socket became writable: 0 if connected, else -errno. */
int pcb_connect_result(int fd);

/* The echo payload: byte i of connection k's stream is
 * pcb_pattern[(i + pcb_pattern_shift(k)) % PCB_PATTERN], stored twice so
 * that any PCB_PATTERN bytes from any offset are contiguous. */
#define PCB_PATTERN 65536u
extern const unsigned char *pcb_pattern;
void pcb_pattern_init(void);
static inline uint64_t pcb_pattern_shift(unsigned conn)
{
    return (uint64_t)conn * 4099u % PCB_PATTERN;
}
static inline const unsigned char *pcb_pattern_at(uint64_t offset)
{
    return pcb_pattern + offset % PCB_PATTERN;
}

/* With --messages: how many of them connection (or churn slot) `index`
 * sends; without: no limit. */
static inline uint64_t pcb_quota(const struct pcb_config *cfg, unsigned index)
{
    if (!cfg->messages)
        return UINT64_MAX;
    return cfg->messages / cfg->connections +
           (index < cfg->messages % cfg->connections);
}

/* ---- the modes ---- */
extern const struct pcb_mode_ops pcb_echo_ops; /* echo and idle */
extern const struct pcb_mode_ops pcb_churn_ops;
extern const struct pcb_mode_ops pcb_chat_ops;
extern const struct pcb_mode_ops pcb_handshake_ops;

/* ---- report.c ---- */
/* A process's CPU time and memory, from /proc/PID/stat and status. */
struct pcb_proc_sample {
    bool ok;
    double cpu_s; /* user + system, all threads, dead ones too */
    long rss_kib;
};
struct pcb_proc_sample pcb_proc_sample(int pid);
/* The sum over cfg's --server-pid processes (ok: every one sampled), and
 * each one's in each[] (cfg->npids of them). */
struct pcb_proc_sample pcb_proc_sample_all(const struct pcb_config *cfg,
                                           struct pcb_proc_sample *each);

/* Everything a report says, summed over the threads once they ended. */
struct pcb_result {
    const struct pcb_config *cfg;
    double window_s;          /* measured time */
    double setup_s;           /* connecting (and joining) */
    uint64_t messages, bytes; /* measured */
    uint64_t opened, open_at_stop;
    uint64_t sent, received, expected; /* chat, all phases */
    uint64_t stalled_cut;              /* chat: see pcb_counters */
    uint64_t resumed, offered;         /* handshake: see pcb_counters */
    struct pcb_tls_info tls;           /* empty without TLS */
    uint64_t errors[PCB_ERRORS];
    uint64_t errors_total;
    struct pcb_hist *hist;
    /* The servers (summed over --server-pid's processes): before setup,
     * window start and end; and each process's own. */
    struct pcb_proc_sample before, start, end;
    struct pcb_proc_sample start_each[PCB_MAX_PIDS], end_each[PCB_MAX_PIDS];
    double client_cpu_s; /* percore-bench's own CPU time in the window */
    bool interrupted;    /* stopped early by a signal */
};
void pcb_report_text(FILE *f, const struct pcb_result *r);
void pcb_report_json(FILE *f, const struct pcb_result *r);

/* ---- net.c: a connection that sends the pattern and checks it back ---- */
struct pcb_stream {
    ev_io io;       /* io.fd is the socket; io.data is the mode's */
    int events;     /* what io watches now */
    uint64_t shift; /* pcb_pattern_shift() of the connection */
    uint64_t tx_target, tx_done, rx_done; /* bytes queued, sent, received */
    /* TLS (tls.c), NULL ssl for a plain stream. A write OpenSSL could not
     * finish must be repeated with the same length: tls_retry. */
    struct ssl_st *ssl;
    struct ssl_session_st *session; /* the newest one the server sent */
    bool got_session;
    uint64_t tls_retry;
};
/* Starts a connect; the watcher waits for EV_WRITE. -errno on failure. */
int pcb_stream_connect(struct pcb_thread *t, struct pcb_stream *s,
                       void (*cb)(struct ev_loop *, ev_io *, int), void *data,
                       unsigned conn);
void pcb_stream_watch(struct ev_loop *loop, struct pcb_stream *s, int events);
/* Sends what is queued, watching EV_WRITE while some is left. 0, or -1 if
 * the socket failed. */
int pcb_stream_flush(struct ev_loop *loop, struct pcb_stream *s);
/* One read, checked against the pattern: bytes read, 0 if none yet, or
 * -(1 + enum pcb_error) on EOF, a socket error or a wrong byte. */
long pcb_stream_read(struct pcb_thread *t, struct pcb_stream *s);
void pcb_stream_close(struct ev_loop *loop, struct pcb_stream *s);
/* n bytes just read into t->scratch, checked against the pattern and
 * counted: 0, or -(1 + PCB_ERR_MISMATCH). */
long pcb_stream_check(struct pcb_thread *t, struct pcb_stream *s, size_t n);

#endif
