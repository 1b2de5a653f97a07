/* The exposition's insides: sums of the framework's counters, the
 * SIGUSR1 stats line, and module metrics (core/module_metrics.c). The
 * public entry is pc_metrics_render (percore.h). */
#ifndef PC_CORE_METRICS_H
#define PC_CORE_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/metrics_text.h"
#include "workers/stats.h"

struct pc_server;
struct pc_worker;
struct pc_config;

/* The counter at `offset` in struct pc_listener_stats (value i of an
 * array) of the listener in `slot`, summed over workers and the acceptor.
 * Any thread. */
uint64_t pc_metrics_listener_sum(const struct pc_server *srv, unsigned slot,
                                 size_t offset, unsigned i);
/* Worker w's counter at `offset`, summed over its listeners. */
uint64_t pc_metrics_worker_sum(const struct pc_worker *w, size_t offset);
#define PC_LISTENER_SUM(srv, li, field)                                        \
    pc_metrics_listener_sum(srv, li,                                           \
                            offsetof(struct pc_listener_stats, field), 0)
#define PC_WORKER_SUM(w, field)                                                \
    pc_metrics_worker_sum(w, offsetof(struct pc_listener_stats, field))

/* Whether name is one of the framework's families (or its process_*
 * prefix): modules may not export it. Any thread. */
bool pc_metrics_reserved(const char *name);

/* Seconds since the epoch (CLOCK_REALTIME). */
double pc_metrics_now(void);

/* SIGUSR1: one notice line of totals, then one per worker. Main thread. */
void pc_server_log_stats(struct pc_server *srv);

/* Every module metric of every worker, summed over workers, after the
 * framework's. cfg: the caller's view of the listeners. Worker thread. */
void pc_module_metrics_render(struct pc_text *t, const struct pc_server *srv,
                              const struct pc_config *cfg);
/* Frees worker w's module metrics; its thread has ended and no scrape
 * can run any more. Main thread, after pc_worker_destroy. */
void pc_module_metrics_free(struct pc_worker *w);

#endif
