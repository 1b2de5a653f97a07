/*
 * percore.h - the whole contract between percore and a protocol module.
 *
 * A module includes this header and nothing else of percore. Three rules
 * hold everywhere:
 *
 *  1. Threads. Every callback of a module runs on one worker thread. A
 *     connection belongs to the worker that accepted it: its callbacks and
 *     every pc_conn_* call for it happen on that worker only. Worker state
 *     (the wstate of worker_init) is touched only by its worker. The only
 *     way to reach another worker is a message (pc_post, pc_broadcast).
 *  2. Ownership. The framework allocates and frees connections, their
 *     module state (conn_size bytes) and their buffers. A module never
 *     frees framework memory. Data handed to a callback is borrowed for the
 *     duration of the callback.
 *  3. Errors. Functions return 0 (or a count) on success and a negative
 *     errno value on failure.
 */
#ifndef PERCORE_PERCORE_H
#define PERCORE_PERCORE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PC_VERSION "0.1.0"

/* Bumped whenever struct pc_proto or any structure below changes layout,
 * or functions are added a module may call; a module built against
 * another value is refused at load time. */
#define PC_PROTO_ABI 0x70630005u

struct pc_worker;
struct pc_conn;
struct pc_section;

enum pc_close_reason {
    PC_CLOSE_PEER,         /* the client closed its side (EOF) */
    PC_CLOSE_ERROR,        /* the socket failed (reset, broken pipe) */
    PC_CLOSE_MODULE,       /* the module called pc_conn_close() */
    PC_CLOSE_IDLE,         /* nothing happened for the listener's idle_timeout */
    PC_CLOSE_INPUT_LIMIT,  /* the module left more than max_input unconsumed */
    PC_CLOSE_OUTPUT_LIMIT, /* more than max_output queued: a slow reader */
    PC_CLOSE_SHUTDOWN,     /* the server stopped and the drain timeout ran out */
    PC_CLOSE_REASONS
};

/* Short stable name of a close reason ("peer", "idle", ...), for logs and
 * metrics. Any thread. */
const char *pc_close_reason_name(enum pc_close_reason why);

/* ---- configuration options a module declares ------------------------- */

enum pc_option_type {
    PC_OPT_INT,      /* decimal integer */
    PC_OPT_SIZE,     /* bytes, with optional K, M or G suffix (powers of 1024) */
    PC_OPT_SECONDS,  /* seconds, decimals allowed ("0.5") */
    PC_OPT_BOOL,     /* yes/no, true/false, on/off, 1/0 */
    PC_OPT_STRING,
};

/* One key a module accepts in its listener's section. The framework parses
 * and range-checks it, so a bad value is reported with file and line before
 * anything starts; the module reads the parsed value with pc_section_*. */
struct pc_option {
    const char *name;
    enum pc_option_type type;
    const char *default_value; /* text, parsed like a configured value */
    double min, max;           /* inclusive; ignored for BOOL and STRING */
    const char *help;
};

/* Values of a module's options for one listener. Main thread fills it
 * before workers start; afterwards read-only, so any thread may read it. An
 * unknown name returns 0 / false / NULL (a bug in the module, not the
 * config: undeclared names are rejected when the config is read).
 * The framework's own listener keys can be read the same way, for a module
 * that must fit its limits to them: pc_section_int with "max_input",
 * "max_output", "high_watermark", "low_watermark", "max_connections",
 * "backlog", "sndbuf" or "rcvbuf", and pc_section_seconds with
 * "idle_timeout" or "flush_delay". */
int64_t pc_section_int(const struct pc_section *s, const char *name);
double pc_section_seconds(const struct pc_section *s, const char *name);
bool pc_section_bool(const struct pc_section *s, const char *name);
const char *pc_section_string(const struct pc_section *s, const char *name);
/* The listener's name ("listener NAME" in the config). */
const char *pc_section_listener(const struct pc_section *s);
/* Identifies this listener's module instance; put it in messages (pc_msg).
 * Stays the same across reloads while the listener exists. */
unsigned pc_section_service(const struct pc_section *s);

/* ---- messages between workers ---------------------------------------- */

/* A message a module sends to its own instance on other workers. Embed it
 * as the first member of the module's own message struct. The framework
 * counts references: every target holds one; when the last target's
 * on_message returns, destroy() is called on that target's thread. */
struct pc_msg {
    unsigned service;                   /* pc_section_service() of the sender */
    /* Non-NULL: the message is for the value of this pc_worker_slot key
     * on the target (pc_worker_slot_on_message), not for one listener's
     * module instance; service is then not looked at. */
    const void *slot_key;
    void (*destroy)(struct pc_msg *m);  /* frees the message; any worker */
    unsigned from;                      /* set by pc_post: sending worker id */
    atomic_uint refs;                   /* framework-owned */
};

/* Queues m for worker `to` (which may be the sender itself) and wakes it.
 * Delivery is FIFO per sender and needs no lock. Caller: a worker thread,
 * for a message it allocated and has not posted before. Returns 0 or
 * -EINVAL for a worker id out of range (then destroy() has been called). */
int pc_post(struct pc_worker *w, unsigned to, struct pc_msg *m);

/* Queues one message for every worker except the sender; destroy() runs
 * once, after the last of them has handled it. Same rules as pc_post. */
void pc_broadcast(struct pc_worker *w, struct pc_msg *m);

/* ---- the module ------------------------------------------------------ */

struct pc_proto {
    uint32_t abi;             /* PC_PROTO_ABI */
    const char *name;         /* protocol name used in the config: "echo" */
    size_t conn_size;         /* bytes of zeroed per-connection state */
    const struct pc_option *options; /* terminated by {NULL}; may be NULL */

    /* Once per worker per listener, on the worker's thread, before any
     * connection: at start-up, or at the reload that adds the listener.
     * *wstate is the module's per-worker state; cfg stays valid until
     * worker_fini. Non-zero return aborts start-up (at a reload: this
     * worker refuses the listener's connections). May be NULL. */
    int (*worker_init)(struct pc_worker *w, const struct pc_section *cfg,
                       void **wstate);
    /* After the last connection of this worker closed: at exit, or once
     * a listener a reload removed has none left here. May be NULL. */
    void (*worker_fini)(struct pc_worker *w, void *wstate);

    /* A connection was accepted. May be NULL. */
    void (*on_open)(struct pc_conn *c);
    /* Bytes arrived. Return how many were consumed (0..len); the rest is
     * kept and offered again, in front of the next bytes. `data` is
     * borrowed until return. Required. */
    size_t (*on_data)(struct pc_conn *c, const char *data, size_t len);
    /* Queued output fell below the low watermark after having reached the
     * high watermark (reading has resumed). May be NULL. */
    void (*on_drain)(struct pc_conn *c);
    /* The connection is gone; its state is freed after return. Writes are
     * ignored. May be NULL. */
    void (*on_close)(struct pc_conn *c, enum pc_close_reason why);
    /* A message from pc_post or pc_broadcast. The framework drops its
     * reference after return. May be NULL if the module sends none. */
    void (*on_message)(struct pc_worker *w, void *wstate, struct pc_msg *m);

    /* The configuration was reloaded (SIGHUP): cfg holds this listener's
     * new option values. Called on every worker, on its own thread, between
     * events; connections keep running. May be NULL (options are then only
     * read in worker_init and a reload does not change them). */
    void (*reload)(struct pc_worker *w, void *wstate,
                   const struct pc_section *cfg);

    /* Checks one listener's option values together (one key against
     * another, against the framework's keys, or a value's form), when the
     * config is read: at start, by `percored -t`, and before a reload is
     * accepted. Returns 0, or non-zero with a one-line reason in err (the
     * framework adds the file and the line of the key at fault: lead with
     * the option, "default_room: ...", or name the keys involved, and the
     * first one the operator set is blamed). Main thread. May be NULL. */
    int (*check)(const struct pc_section *cfg, char *err, size_t errlen);

    /* Written (best effort) to a connection refused because a connection
     * limit was reached, before it is closed. NULL: close silently. */
    const char *refuse_text;

    /* The last bytes for a connection the framework or the module cuts
     * (pc_conn_cut; over max_output): writes at most size bytes of the
     * protocol's farewell for `why` into buf and returns how many. Called
     * on the connection's worker; the connection may not be written to
     * from here. May be NULL: nothing is added. */
    size_t (*goodbye)(struct pc_conn *c, enum pc_close_reason why, char *buf,
                      size_t size);

    /* The server began to stop (SIGTERM): called once for each open
     * connection of this listener when its worker starts to drain, so
     * that a session that would never end by itself (a chat member, a
     * WebSocket) can be told now rather than at drain_timeout: typically
     * pc_conn_end(c, PC_CLOSE_SHUTDOWN), or closing after the response
     * being written. Connections still open at drain_timeout are cut
     * (pc_conn_cut, PC_CLOSE_SHUTDOWN). On the connection's worker. May be
     * NULL: the connection runs on until it ends or the drain timeout. */
    void (*on_stop)(struct pc_conn *c);
};

/* ---- connections ----------------------------------------------------- */
/* All pc_conn_* functions: the connection's worker thread only. */

/* The module's zeroed conn_size bytes for this connection. */
void *pc_conn_state(struct pc_conn *c);
/* The module's per-worker state for this connection's listener. */
void *pc_conn_wstate(struct pc_conn *c);
struct pc_worker *pc_conn_worker(struct pc_conn *c);
/* Unique per process for the life of the process. */
uint64_t pc_conn_id(const struct pc_conn *c);
/* The peer address as text ("127.0.0.1:5123", "[::1]:80", "unix"). */
const char *pc_conn_peer(struct pc_conn *c, char *buf, size_t size);

/* What a connection of a TLS listener negotiated (docs/tls.md). */
struct pc_tls_info {
    const char *version;    /* "TLSv1.3", "TLSv1.2" (static strings) */
    const char *cipher;     /* "TLS_AES_128_GCM_SHA256" */
    char alpn[64];          /* the ALPN protocol agreed, "" for none */
    char peer_subject[256]; /* the client certificate's subject (RFC 2253),
                               "" without one (tls_client_ca) */
    bool resumed;           /* an abbreviated handshake (session ticket) */
    bool ktls;              /* the kernel encrypts this connection */
};
/* Whether c came over TLS (for a TLS listener's connection, always, from
 * on_open on: the handshake is done before the module sees it). If so and
 * info is not NULL, fills *info. */
bool pc_conn_tls(struct pc_conn *c, struct pc_tls_info *info);

/* Queues len bytes (copied) for sending. Sending happens when the worker
 * finishes its current batch of events, so several writes in one callback
 * leave in one system call. Above the listener's high watermark reading
 * from c pauses; above max_output the connection is closed with
 * PC_CLOSE_OUTPUT_LIMIT and -ENOBUFS is returned. On a closing connection
 * returns -EPIPE and writes nothing. */
int pc_conn_write(struct pc_conn *c, const void *data, size_t len);

/* Stops offering input to on_data, and reading from the socket, until
 * pc_conn_resume_input (flood control, waiting on another worker). */
void pc_conn_hold_input(struct pc_conn *c);
/* Ends a hold. Input that was left unconsumed is offered again before the
 * worker next blocks, without waiting for new bytes. */
void pc_conn_resume_input(struct pc_conn *c);

/* Bytes queued and not yet accepted by the kernel. */
size_t pc_conn_queued(const struct pc_conn *c);

/* Closes c now and reports `why` to on_close: for a peer that must go at
 * once (a slow reader over a limit, a protocol violation). Output not
 * yet sent is dropped on a unit boundary, as pc_conn_cut does (with the
 * module's goodbye); for PC_CLOSE_ERROR and PC_CLOSE_PEER, whose socket
 * takes nothing more, all of it. Safe from any callback, also on a
 * connection other than the one the callback is for, and twice. */
void pc_conn_abort(struct pc_conn *c, enum pc_close_reason why);

/* Ends c on a unit boundary: each pc_conn_write or pc_conn_write_shared
 * call is one unit (a line, a frame). A unit whose first bytes have
 * left is finished, every later one dropped, then the module's goodbye
 * (struct pc_proto) is queued and c closes once that is sent, reporting
 * `why`; a peer that never reads is closed by its idle timeout. For a
 * peer over a limit that must still receive whole units. Safe from any
 * callback, also twice (the second does nothing). */
void pc_conn_cut(struct pc_conn *c, enum pc_close_reason why);

/* Ends c after everything queued: the module's goodbye for `why` follows
 * the queued output, then c closes as a cut one does (FIN, then the
 * peer's EOF or a 5 s linger), reporting `why`. Input after it is read
 * and dropped; writes are refused. If c must go sooner (drain_timeout,
 * pc_conn_cut, pc_conn_abort), it is cut then: the unit being written is
 * finished, the rest dropped, the goodbye sent once. Safe from any
 * callback, also twice. */
void pc_conn_end(struct pc_conn *c, enum pc_close_reason why);

/* Closes c after its queued output has been sent (or at once, if the
 * peer is gone). Safe from any callback, also twice; the framework frees c
 * after the current callback returns and calls on_close once. */
void pc_conn_close(struct pc_conn *c);

/* ---- shared buffers -------------------------------------------------- */
/* A reference-counted byte buffer for sending one payload to many
 * connections of one worker: each pc_conn_write_shared takes a reference
 * instead of a copy. The count is not atomic: a shared buffer belongs to
 * the worker that created it and never crosses to another thread. */
struct pc_sbuf {
    uint32_t refs;
    uint32_t len;
    char data[];
};

/* A buffer of len bytes with one reference (the caller's). NULL on OOM. */
struct pc_sbuf *pc_sbuf_new(size_t len);
void pc_sbuf_ref(struct pc_sbuf *b);
/* Drops a reference; the last one frees the buffer. */
void pc_sbuf_unref(struct pc_sbuf *b);
/* Queues b's bytes on c, taking a reference of its own (the caller keeps
 * its one). Same limits and results as pc_conn_write. */
int pc_conn_write_shared(struct pc_conn *c, struct pc_sbuf *b);

/* ---- workers --------------------------------------------------------- */

/* 0 .. pc_worker_count()-1. Any thread. */
unsigned pc_worker_id(const struct pc_worker *w);
unsigned pc_worker_count(const struct pc_worker *w);

/* Per-worker state that the modules of several listeners share: one
 * pointer, NULL at first, for each distinct key (the address of a static
 * object of the code that shares it, such as the room core the chat and
 * irc faces are built on). Whoever stores a value frees it; the slot
 * itself lives as long as the worker. Worker thread only. NULL on out of
 * memory. */
void **pc_worker_slot(struct pc_worker *w, const void *key);

/* Sets, on this worker, what receives the messages addressed to a slot
 * (pc_msg.slot_key = key): on_message(w, value, m), value being the
 * slot's value then. For state that outlives any one listener, as the
 * room core does: a reload may remove the listener whose service a
 * message would otherwise name. NULL stops delivery (such messages are
 * dropped). Worker thread only. Returns 0 or -ENOMEM. */
int pc_worker_slot_on_message(struct pc_worker *w, const void *key,
                              void (*on_message)(struct pc_worker *w,
                                                 void *value,
                                                 struct pc_msg *m));

/* A timer on a worker's loop. Embed it in module state; the callback runs
 * on the worker that started it. Worker thread only. */
struct pc_timer {
    void (*cb)(struct pc_timer *t);
    void *data;
    _Alignas(max_align_t) unsigned char opaque[64]; /* framework-owned */
};
void pc_timer_init(struct pc_timer *t, void (*cb)(struct pc_timer *t),
                   void *data);
/* (Re)starts the timer to fire once after `seconds`. */
void pc_timer_start(struct pc_worker *w, struct pc_timer *t, double seconds);
void pc_timer_stop(struct pc_worker *w, struct pc_timer *t);
/* Seconds on the worker's loop clock (cheap, cached per loop pass). */
double pc_worker_now(struct pc_worker *w);

/* ---- metrics --------------------------------------------------------- */
/* A module's own counters and gauges, exported with the framework's on
 * every metrics listener. Each worker registers its own instance of a
 * metric and alone writes it (a relaxed load and store in memory of its
 * own, on cache lines of its own: no lock, no shared line, no atomic
 * read-modify-write). The exposition sums a metric over the workers:
 * one series per listener (labels listener and protocol, when the
 * metric was registered for one) and per value of its own label. */

enum pc_metric_type {
    PC_METRIC_COUNTER, /* only goes up; the name must end in _total */
    PC_METRIC_GAUGE,   /* goes up and down (may be negative) */
};

/* What a metric is; static, it is referred to, not copied. name follows
 * Prometheus ([a-zA-Z_:][a-zA-Z0-9_:]*, base units: _bytes, _seconds),
 * should begin with percore_ and the module's name, and must not be one
 * of the framework's. label, if not NULL, is the name of one label of
 * the module's own ([a-zA-Z_][a-zA-Z0-9_]*, not listener, protocol or
 * worker), and values its possible values, NULL-terminated: value i is
 * written with index i. Without a label there is one value, index 0. */
struct pc_metric_def {
    const char *name;
    enum pc_metric_type type;
    const char *help;           /* one line */
    const char *label;          /* NULL: no label of its own */
    const char *const *values;  /* NULL-terminated; NULL without label */
};

/* A worker's instance of one metric; framework-owned. */
struct pc_metric;

/* Registers worker w's instance of def, for the listener cfg (its
 * series carry listener="NAME",protocol="PROTO") or for none (cfg
 * NULL). Registering the same def for the same listener again returns
 * the same handle. Returns NULL, logging why, for an invalid def (bad
 * name or label, a counter without _total, a name registered with
 * another type or labels) or out of memory; every pc_metric_* call
 * accepts NULL and does nothing, so a module need not check. The handle
 * lives until the worker is gone (after worker_fini). Worker thread w,
 * typically in worker_init. */
struct pc_metric *pc_metric_new(struct pc_worker *w,
                                const struct pc_metric_def *def,
                                const struct pc_section *cfg);
/* Adds n (negative only for a gauge) to value i (the label's i-th value;
 * 0 without a label; out of range: nothing). The registering worker
 * only. */
void pc_metric_add(struct pc_metric *m, unsigned i, int64_t n);
/* Sets value i of a gauge. The registering worker only. */
void pc_metric_set(struct pc_metric *m, unsigned i, int64_t v);

/* The whole exposition (the framework's metrics and every module's, all
 * workers) in the Prometheus text format 0.0.4, as a new shared buffer
 * with one reference, the caller's: queue it with pc_conn_write_shared
 * and unref it. Its size grows with workers and listeners (about 1 KiB
 * a worker). Other workers' counters are read as they run (each value
 * whole, the set not frozen). NULL when out of memory. Worker thread w
 * (the metrics module calls it for each scrape). */
struct pc_sbuf *pc_metrics_render(struct pc_worker *w);

/* The worker's libev loop, for a module that must watch a socket of its
 * own (a client library's libev adapter, such as hiredis's). Worker
 * thread only: start, stop and run callbacks of watchers on this loop
 * only from w's thread, and stop every watcher in worker_fini at the
 * latest (the loop is destroyed after it). A watcher's callback runs
 * between the worker's other events, so the pc_conn_* and pc_post rules
 * hold in it as in any callback. A module including this must include
 * <ev.h> itself and link libev. */
struct ev_loop;
struct ev_loop *pc_worker_loop(struct pc_worker *w);

/* ---- the cluster ----------------------------------------------------- */

/* The [cluster] section (docs/scaling.md), or NULL when the config has
 * none. Read its keys with pc_section_string ("redis", "node",
 * "password", "user"), pc_section_int ("history"), pc_section_seconds
 * ("nick_ttl", "timeout", "hold") and pc_section_bool ("tls"); the
 * framework has checked them. Worker thread; the pointer is good until
 * the worker's next reload (a changed [cluster] needs a restart, so read
 * it once, in worker_init, and copy what you keep). */
const struct pc_section *pc_cluster_section(struct pc_worker *w);

/* ---- logging --------------------------------------------------------- */

enum pc_log_level { PC_LOG_ERR = 3, PC_LOG_WARN = 4, PC_LOG_NOTICE = 5,
                    PC_LOG_INFO = 6, PC_LOG_DEBUG = 7 };
/* One line to the server log (stderr or the journal). Any thread. */
void pc_log(enum pc_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#ifdef __cplusplus
}
#endif
#endif
