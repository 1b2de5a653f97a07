/* The framework's metrics as Prometheus text: build and process facts,
 * the configured limits, each listener's traffic summed over workers,
 * each worker's own state, then the modules' metrics. Every family comes
 * from a table, so a new counter is a row (workers/stats.h says how). */
#include "core/metrics.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "core/process_metrics.h"
#include "core/server.h"
#include "core/tls_context.h"
#include "workers/backend.h"

/* ---- the tables -------------------------------------------------------- */

struct stat_row {
    const char *name, *help;
    size_t offset; /* in struct pc_listener_stats or struct pc_stats */
    const char *label;
    const char *(*label_value)(unsigned i);
    enum pc_stat_type type;
    unsigned n; /* values: 1, or an array labelled `label` */
};

/* Array counters name their label values through a function of their
 * own type; each gets a wrapper of one type for the table. */
#define LABEL_FN(f, n, label, fn, type, name, help)                            \
    static const char *label_##f(unsigned i)                                   \
    {                                                                          \
        return fn(i);                                                          \
    }
#define NO_FN(f, type, name, help)
PC_LISTENER_STATS(NO_FN, LABEL_FN)
PC_WORKER_STATS(NO_FN, LABEL_FN)

#define ROW(s, f, type, name, help)                                            \
    {name, help, offsetof(s, f), NULL, NULL, type, 1},
#define VROW(s, f, n, label, fn, type, name, help)                             \
    {name, help, offsetof(s, f), label, label_##f, type, n},
#define LROW(...)  ROW(struct pc_listener_stats, __VA_ARGS__)
#define LVROW(...) VROW(struct pc_listener_stats, __VA_ARGS__)
#define WROW(...)  ROW(struct pc_stats, __VA_ARGS__)
#define WVROW(...) VROW(struct pc_stats, __VA_ARGS__)

static const struct stat_row listener_rows[] = {PC_LISTENER_STATS(LROW, LVROW)};
static const struct stat_row worker_rows[] = {PC_WORKER_STATS(WROW, WVROW)};

/* Each worker's share of some listener counters, over its listeners:
 * how evenly the workers are loaded. */
static const struct {
    const char *name, *help;
    size_t offset;
} worker_sums[] = {
    {"percore_worker_connections_accepted_total",
     "Connections accepted and admitted by this worker, every listener",
     offsetof(struct pc_listener_stats, accepted)},
    {"percore_worker_received_bytes_total",
     "Bytes read from clients by this worker, every listener",
     offsetof(struct pc_listener_stats, bytes_in)},
    {"percore_worker_sent_bytes_total",
     "Bytes written to clients by this worker, every listener",
     offsetof(struct pc_listener_stats, bytes_out)},
};

/* The configured limits, as they are after the last reload. */
enum cfg_kind { CFG_INT, CFG_SECONDS };
struct cfg_row {
    const char *name, *help;
    enum cfg_kind kind;
    size_t offset; /* in struct pc_config or struct pc_listener_config */
};

#define SERVER_CFG(name, kind, field, help)                                    \
    {                                                                          \
        name, help, kind, offsetof(struct pc_config, field)                    \
    }
#define LISTENER_CFG(name, kind, field, help)                                  \
    {                                                                          \
        name, help, kind, offsetof(struct pc_listener_config, field)           \
    }

static const struct cfg_row server_cfg[] = {
    SERVER_CFG("percore_config_max_connections", CFG_INT, max_connections,
               "Open connections allowed in the process (0: no limit)"),
    SERVER_CFG("percore_config_max_connections_per_worker", CFG_INT,
               max_connections_per_worker,
               "Open connections allowed per worker (0: no limit)"),
    SERVER_CFG("percore_config_drain_timeout_seconds", CFG_SECONDS,
               drain_timeout, "Time connections get to finish at a stop"),
};

static const struct cfg_row listener_cfg[] = {
    LISTENER_CFG("percore_config_listener_max_connections", CFG_INT,
                 max_connections,
                 "Open connections allowed on the listener (0: no limit)"),
    LISTENER_CFG("percore_config_listener_max_input_bytes", CFG_INT, max_input,
                 "Unconsumed input that closes a connection"),
    LISTENER_CFG("percore_config_listener_max_output_bytes", CFG_INT,
                 max_output, "Queued output that cuts a connection"),
    LISTENER_CFG("percore_config_listener_high_watermark_bytes", CFG_INT,
                 high_watermark, "Queued output that pauses reading"),
    LISTENER_CFG("percore_config_listener_low_watermark_bytes", CFG_INT,
                 low_watermark, "Queued output that resumes reading"),
    LISTENER_CFG("percore_config_listener_idle_timeout_seconds", CFG_SECONDS,
                 idle_timeout, "Idle time that closes a connection (0: never)"),
    LISTENER_CFG("percore_config_listener_flush_delay_seconds", CFG_SECONDS,
                 flush_delay, "Longest output waits to share a write"),
    LISTENER_CFG("percore_config_listener_backlog", CFG_INT, backlog,
                 "listen() queue length asked for"),
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* Families that are not rows of a table. */
static const char *const other_names[] = {
    "percore_build_info",
    "percore_start_time_seconds",
    "percore_workers",
    "percore_connections_open",
    "percore_tls_kernel_ktls",
};
static const char *const reserved_prefixes[] = {
    "process_",
    "percore_jemalloc_",
    "percore_worker_",
    "percore_config_",
};

bool pc_metrics_reserved(const char *name)
{
    for (size_t i = 0; i < COUNT(reserved_prefixes); i++)
        if (strncmp(name, reserved_prefixes[i], strlen(reserved_prefixes[i])) ==
            0)
            return true;
    for (size_t i = 0; i < COUNT(other_names); i++)
        if (strcmp(name, other_names[i]) == 0)
            return true;
    for (size_t i = 0; i < COUNT(listener_rows); i++)
        if (strcmp(name, listener_rows[i].name) == 0)
            return true;
    return false;
}

/* ---- sums -------------------------------------------------------------- */

static uint64_t load_at(const void *stats, size_t offset, unsigned i)
{
    const atomic_uint_fast64_t *p =
        (const atomic_uint_fast64_t *)((const char *)stats + offset) + i;
    return atomic_load_explicit(p, memory_order_relaxed);
}

uint64_t pc_metrics_listener_sum(const struct pc_server *srv, unsigned slot,
                                 size_t offset, unsigned i)
{
    uint64_t sum = load_at(&srv->acceptor_stats[slot], offset, i);
    for (unsigned k = 0; k < srv->nworkers; k++)
        sum += load_at(&srv->workers[k].svcs[slot].stats, offset, i);
    return sum;
}

uint64_t pc_metrics_worker_sum(const struct pc_worker *w, size_t offset)
{
    /* Free slots count 0; freed services left theirs in retired_stats. */
    uint64_t sum = load_at(&w->retired_stats, offset, 0);
    for (unsigned slot = 0; slot < PC_MAX_SLOTS; slot++)
        sum += load_at(&w->svcs[slot].stats, offset, 0);
    return sum;
}

double pc_metrics_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- families ---------------------------------------------------------- */

static void put_build(struct pc_text *t, const struct pc_server *srv,
                      struct pc_worker *w)
{
    char abi[16];
    snprintf(abi, sizeof abi, "0x%08x", PC_PROTO_ABI);
    const struct pc_label l[] = {
        {"version", PC_VERSION},
        {"abi", abi},
        {"backend", pc_backend_name(ev_backend(w->loop))},
    };
    pc_text_family(t, "percore_build_info", false,
                   "Always 1: the version, module ABI and event backend");
    pc_text_sample(t, "percore_build_info", l, COUNT(l), "1");
    pc_text_family(t, "percore_start_time_seconds", false,
                   "When the server started, in seconds since the epoch");
    pc_text_sample_f64(t, "percore_start_time_seconds", NULL, 0,
                       srv->start_time);
    pc_text_family(t, "percore_workers", false, "Worker threads");
    pc_text_sample_u64(t, "percore_workers", NULL, 0, srv->nworkers);
    pc_text_family(t, "percore_tls_kernel_ktls", false,
                   "1 if the kernel offers kTLS (the tls ULP), else 0");
    pc_text_sample_u64(t, "percore_tls_kernel_ktls", NULL, 0,
                       pc_tls_kernel_has_ktls() ? 1 : 0);
}

static void put_cfg_value(struct pc_text *t, const struct cfg_row *r,
                          const void *base, const struct pc_label *l,
                          unsigned nl)
{
    const char *p = (const char *)base + r->offset;
    if (r->kind == CFG_INT) {
        int64_t v;
        memcpy(&v, p, sizeof v);
        pc_text_sample_i64(t, r->name, l, nl, v);
    } else {
        double v;
        memcpy(&v, p, sizeof v);
        pc_text_sample_f64(t, r->name, l, nl, v);
    }
}

static void listener_labels(struct pc_label l[2],
                            const struct pc_listener_config *lc)
{
    l[0] = (struct pc_label){"listener", lc->name};
    l[1] = (struct pc_label){"protocol", lc->protocol};
}

static void put_config(struct pc_text *t, const struct pc_config *cfg)
{
    for (size_t r = 0; r < COUNT(server_cfg); r++) {
        pc_text_family(t, server_cfg[r].name, false, server_cfg[r].help);
        put_cfg_value(t, &server_cfg[r], cfg, NULL, 0);
    }
    for (size_t r = 0; r < COUNT(listener_cfg); r++) {
        pc_text_family(t, listener_cfg[r].name, false, listener_cfg[r].help);
        for (unsigned li = 0; li < cfg->nlisteners; li++) {
            struct pc_label l[2];
            listener_labels(l, &cfg->listeners[li]);
            put_cfg_value(t, &listener_cfg[r], &cfg->listeners[li], l, 2);
        }
    }
}

static void put_listeners(struct pc_text *t, const struct pc_server *srv,
                          const struct pc_config *cfg)
{
    pc_text_family(t, "percore_connections_open", false,
                   "Connections open now");
    for (unsigned li = 0; li < cfg->nlisteners; li++) {
        struct pc_label l[2];
        listener_labels(l, &cfg->listeners[li]);
        pc_text_sample_u64(t, "percore_connections_open", l, 2,
                           atomic_load_explicit(
                               &srv->listener_connections[cfg->listeners[li].slot],
                               memory_order_relaxed));
    }
    for (size_t r = 0; r < COUNT(listener_rows); r++) {
        const struct stat_row *row = &listener_rows[r];
        pc_text_family(t, row->name, row->type == PC_COUNTER, row->help);
        for (unsigned li = 0; li < cfg->nlisteners; li++) {
            struct pc_label l[3];
            listener_labels(l, &cfg->listeners[li]);
            for (unsigned i = 0; i < row->n; i++) {
                if (row->label)
                    l[2] = (struct pc_label){row->label, row->label_value(i)};
                pc_text_sample_u64(
                    t, row->name, l, row->label ? 3 : 2,
                    pc_metrics_listener_sum(srv, cfg->listeners[li].slot,
                                            row->offset, i));
            }
        }
    }
}

static void put_workers(struct pc_text *t, const struct pc_server *srv)
{
    struct pc_label l[2] = {{"worker", ""}, {NULL, NULL}};
    for (size_t r = 0; r < COUNT(worker_rows); r++) {
        const struct stat_row *row = &worker_rows[r];
        pc_text_family(t, row->name, row->type == PC_COUNTER, row->help);
        for (unsigned k = 0; k < srv->nworkers; k++) {
            char id[12];
            snprintf(id, sizeof id, "%u", k);
            l[0].value = id;
            for (unsigned i = 0; i < row->n; i++) {
                if (row->label)
                    l[1] = (struct pc_label){row->label, row->label_value(i)};
                pc_text_sample_u64(
                    t, row->name, l, row->label ? 2 : 1,
                    load_at(&srv->workers[k].stats, row->offset, i));
            }
        }
    }
    for (size_t r = 0; r < COUNT(worker_sums); r++) {
        pc_text_family(t, worker_sums[r].name, true, worker_sums[r].help);
        for (unsigned k = 0; k < srv->nworkers; k++) {
            char id[12];
            snprintf(id, sizeof id, "%u", k);
            l[0].value = id;
            pc_text_sample_u64(
                t, worker_sums[r].name, l, 1,
                pc_metrics_worker_sum(&srv->workers[k], worker_sums[r].offset));
        }
    }
}

struct pc_sbuf *pc_metrics_render(struct pc_worker *w)
{
    struct pc_text t = {0};
    const struct pc_server *srv = w->srv;
    const struct pc_config *cfg = w->cfg; /* this worker's view */
    put_build(&t, srv, w);
    pc_process_metrics(&t);
    put_config(&t, cfg);
    put_listeners(&t, srv, cfg);
    put_workers(&t, srv);
    pc_jemalloc_metrics(&t, srv);
    pc_module_metrics_render(&t, srv, cfg);
    struct pc_sbuf *b = pc_text_finish(&t);
    if (!b)
        pc_log(PC_LOG_WARN, "worker %u: out of memory rendering the metrics",
               w->id);
    return b;
}

/* ---- SIGUSR1 ----------------------------------------------------------- */

void pc_server_log_stats(struct pc_server *srv)
{
    uint64_t accepted = 0, refused = 0, in = 0, out = 0, drops = 0, msgs = 0;
    for (unsigned li = 0; li < srv->cfg->nlisteners; li++) {
        unsigned slot = srv->cfg->listeners[li].slot;
        accepted += PC_LISTENER_SUM(srv, slot, accepted);
        refused += PC_LISTENER_SUM(srv, slot, refused);
        in += PC_LISTENER_SUM(srv, slot, bytes_in);
        out += PC_LISTENER_SUM(srv, slot, bytes_out);
        drops += PC_LISTENER_SUM(srv, slot, fd_exhausted);
    }
    for (unsigned i = 0; i < srv->nworkers; i++)
        msgs += PC_STAT_GET(&srv->workers[i], messages_in);
    pc_log(PC_LOG_NOTICE,
           "stats: %u workers, %llu connections open, %llu "
           "accepted, %llu refused, %llu bytes in, %llu bytes out, %llu "
           "messages, %llu dropped for lack of fds",
           srv->nworkers, (unsigned long long)atomic_load(&srv->connections),
           (unsigned long long)accepted, (unsigned long long)refused,
           (unsigned long long)in, (unsigned long long)out,
           (unsigned long long)msgs, (unsigned long long)drops);
    for (unsigned i = 0; i < srv->nworkers; i++)
        pc_log(PC_LOG_NOTICE, "stats: worker %u: %llu open, %llu accepted", i,
               (unsigned long long)PC_STAT_GET(&srv->workers[i], connections),
               (unsigned long long)PC_WORKER_SUM(&srv->workers[i], accepted));
}
