/* Access logs: one line per closed connection, for the listeners with an
 * `access_log` (a file, "stderr" or "syslog").
 *
 * Workers never touch the disk: each listener has a pipe, a worker
 * write()s a whole line into it without blocking (a line is shorter than
 * PIPE_BUF, so the kernel keeps it whole and lines of several workers
 * never mix), and one writer thread (pc-access) drains the pipes into the
 * files. A pipe rather than a buffer per worker flushed by the worker,
 * because any write to a file may wait on the disk, and a worker that
 * waits stalls every connection it owns; a pipe also needs no lock. When
 * the writer falls behind and a pipe is full, lines are dropped and
 * counted, never waited for. Files are reopened at every reload (SIGHUP),
 * which is what logrotate needs. */
#ifndef PC_CORE_ACCESS_LOG_H
#define PC_CORE_ACCESS_LOG_H

#include <stddef.h>

#include "core/config.h"

struct pc_access_log;

/* The longest line a worker writes (PIPE_BUF on Linux is 4096). */
#define PC_ACCESS_LINE_MAX 1024

/* Makes a pipe per listener of cfg, opens the access logs cfg names and
 * starts the writer thread (signals blocked). Returns 0, or -errno with
 * the reason logged ("[listener x] access_log: /path: ...") and nothing
 * left open. Main thread. */
int pc_access_log_start(struct pc_access_log **out,
                        const struct pc_config *cfg);

/* Queues one line (ending in '\n') for listener `li`'s log. Never blocks:
 * a full pipe drops the line and counts it. Any thread (the workers). */
void pc_access_log_write(struct pc_access_log *log, unsigned li,
                         const char *line, size_t len);

/* Has the writer reopen every log as cfg names it (a reload; logrotate):
 * a log that cannot be opened is said in the log and its old file kept.
 * Main thread. */
void pc_access_log_reopen(struct pc_access_log *log,
                          const struct pc_config *cfg);

/* Writes what the pipes still hold, stops the writer, closes everything.
 * After the workers stopped; main thread. NULL is fine. */
void pc_access_log_stop(struct pc_access_log *log);

#endif
