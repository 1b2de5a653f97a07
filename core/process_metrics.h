/* What the process uses, for the exposition: the standard process_*
 * metrics every Prometheus client library exports, and jemalloc's
 * counts, process-wide and per worker arena. Any thread. */
#ifndef PC_CORE_PROCESS_METRICS_H
#define PC_CORE_PROCESS_METRICS_H

#include "core/metrics_text.h"

struct pc_server;

/* process_cpu_seconds_total, process_resident_memory_bytes,
 * process_virtual_memory_bytes, process_open_fds, process_max_fds,
 * process_start_time_seconds, from getrusage, getrlimit and /proc. */
void pc_process_metrics(struct pc_text *t);

/* percore_jemalloc_{allocated,active,resident}_bytes for the process
 * and percore_worker_jemalloc_*_bytes{worker} for each worker's arena;
 * nothing when percored is built without jemalloc (sanitizer builds). */
void pc_jemalloc_metrics(struct pc_text *t, const struct pc_server *srv);

#endif
