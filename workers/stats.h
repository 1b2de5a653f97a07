/* The framework's counters, one line each. Each list below is the single
 * place a counter is declared: the line makes the struct field and the
 * row of the Prometheus exposition (core/metrics.c) at once, so adding a
 * counter is one line here plus the increment where it happens.
 *
 *   C(field, type, "prometheus_name", "help")          one value
 *   V(field, n, "label", name_fn, type, "name", "help")
 *                                      n values, labelled label="name_fn(i)"
 *
 * type is PC_COUNTER (a name ending in _total) or PC_GAUGE; base units in
 * the name (_bytes, _seconds).
 *
 * Threads: one writer per counter (the worker that owns it, or the
 * acceptor thread for its own copy), so an update is a relaxed load and
 * store, not a locked read-modify-write; any thread reads, seeing each
 * value whole. Every block is aligned to a cache line of its own, so no
 * two writers ever share one. */
#ifndef PC_WORKERS_STATS_H
#define PC_WORKERS_STATS_H

#include <stdatomic.h>
#include <stdint.h>

#include "percore/percore.h"
#include "workers/tls.h"

#define PC_CACHE_LINE 64

enum pc_stat_type { PC_COUNTER, PC_GAUGE };

/* Traffic of one listener on one worker (struct pc_service), summed over
 * workers in the exposition with labels listener and protocol. The
 * acceptor thread has one block per listener for its own accept errors
 * (struct pc_server). The metrics listener's own scrapes count under its
 * own name, apart from the traffic they measure. */
#define PC_LISTENER_STATS(C, V)                                                \
    C(accepted, PC_COUNTER, "percore_connections_accepted_total",              \
      "Connections accepted and admitted")                                     \
    C(refused, PC_COUNTER, "percore_connections_refused_total",                \
      "Connections refused by a connection limit or during the drain")         \
    V(closed, PC_CLOSE_REASONS, "reason", pc_close_reason_name, PC_COUNTER,    \
      "percore_connections_closed_total", "Connections closed, by reason")     \
    C(accept_errors, PC_COUNTER, "percore_accept_errors_total",                \
      "accept() failures other than running out of file descriptors")          \
    C(fd_exhausted, PC_COUNTER, "percore_accept_fd_exhausted_total",           \
      "Connections accepted and closed at once for lack of file descriptors")  \
    C(bytes_in, PC_COUNTER, "percore_received_bytes_total",                    \
      "Bytes read from clients")                                               \
    C(bytes_out, PC_COUNTER, "percore_sent_bytes_total",                       \
      "Bytes written to clients")                                              \
    C(writes, PC_COUNTER, "percore_writes_total",                              \
      "Output flushes that sent bytes (writev calls)")                         \
    C(tls_handshakes, PC_COUNTER, "percore_tls_handshakes_total",              \
      "TLS handshakes finished")                                               \
    C(tls_resumed, PC_COUNTER, "percore_tls_resumed_total",                    \
      "TLS handshakes that resumed a session (a ticket)")                      \
    V(tls_failures, PC_TLS_FAILURES, "reason", pc_tls_failure_name,            \
      PC_COUNTER, "percore_tls_handshake_failures_total",                      \
      "TLS handshakes that did not finish, by reason")                         \
    C(tls_open, PC_GAUGE, "percore_tls_connections",                           \
      "TLS connections open, their handshake done")                            \
    C(tls_ktls, PC_GAUGE, "percore_tls_ktls_connections",                      \
      "TLS connections whose output the kernel encrypts (kTLS)")

/* One worker's own state (struct pc_worker), labelled worker="N". */
#define PC_WORKER_STATS(C, V)                                                  \
    C(connections, PC_GAUGE, "percore_worker_connections",                     \
      "Connections open on this worker")                                       \
    C(messages_in, PC_COUNTER, "percore_worker_messages_received_total",       \
      "Module messages received from workers (pc_post, pc_broadcast)")         \
    C(loops, PC_COUNTER, "percore_worker_loop_iterations_total",               \
      "Event loop iterations; one that stops moving is stuck")                 \
    C(out_queued, PC_GAUGE, "percore_worker_output_queued_bytes",              \
      "Output bytes queued, not yet taken by the kernel")                      \
    C(out_queued_peak, PC_GAUGE, "percore_worker_output_queued_peak_bytes",    \
      "Most output bytes ever queued at once")                                 \
    C(shared_bytes, PC_GAUGE, "percore_worker_shared_buffer_bytes",            \
      "Bytes in live shared (fan-out) buffers: one copy per worker")

#define PC_STAT_FIELD_(f, type, name, help) atomic_uint_fast64_t f;
#define PC_STAT_VFIELD_(f, n, label, fn, type, name, help)                     \
    atomic_uint_fast64_t f[n];

struct pc_listener_stats {
    _Alignas(PC_CACHE_LINE) PC_LISTENER_STATS(PC_STAT_FIELD_, PC_STAT_VFIELD_)
};

struct pc_stats {
    _Alignas(PC_CACHE_LINE) PC_WORKER_STATS(PC_STAT_FIELD_, PC_STAT_VFIELD_)
};

/* How many values a struct pc_listener_stats holds (all of one type, in
 * a row: the same fields without the alignment). */
#define PC_LISTENER_STAT_VALUES                                                \
    (sizeof(struct { PC_LISTENER_STATS(PC_STAT_FIELD_, PC_STAT_VFIELD_) }) /   \
     sizeof(atomic_uint_fast64_t))

/* Adds every counter of `from` to `to` (when to is NULL, drops them) and
 * zeroes `from`, value by value, so readers on other threads never see a
 * torn value. The writer of both, only. */
static inline void pc_listener_stats_move(struct pc_listener_stats *to,
                                          struct pc_listener_stats *from)
{
    atomic_uint_fast64_t *src = &from->accepted;
    atomic_uint_fast64_t *dst = to ? &to->accepted : NULL;
    for (unsigned i = 0; i < PC_LISTENER_STAT_VALUES; i++) {
        uint_fast64_t v = atomic_load_explicit(&src[i], memory_order_relaxed);
        if (dst)
            atomic_store_explicit(
                &dst[i],
                atomic_load_explicit(&dst[i], memory_order_relaxed) + v,
                memory_order_relaxed);
        atomic_store_explicit(&src[i], 0, memory_order_relaxed);
    }
}

/* One writer: a relaxed load and store (see the top of this file). */
#define PC_STAT_BUMP(var, n)                                                   \
    atomic_store_explicit(                                                     \
        &(var), atomic_load_explicit(&(var), memory_order_relaxed) + (n),      \
        memory_order_relaxed)

/* A worker's own counter: PC_STAT_ADD(w, loops, 1). Its thread only. */
#define PC_STAT_ADD(w, field, n) PC_STAT_BUMP((w)->stats.field, n)
#define PC_STAT_GET(w, field)                                                  \
    atomic_load_explicit(&(w)->stats.field, memory_order_relaxed)

/* A listener's counter on one worker: PC_LSTAT_ADD(c->svc, bytes_in, n).
 * The service's worker thread only. */
#define PC_LSTAT_ADD(svc, field, n) PC_STAT_BUMP((svc)->stats.field, n)
#define PC_LSTAT_GET(svc, field)                                               \
    atomic_load_explicit(&(svc)->stats.field, memory_order_relaxed)

#endif
