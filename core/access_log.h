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

/* Pipes are per listener slot (config.h): a slot keeps its listener
 * across reloads, and a removed listener's last lines still find it. */

struct pc_access_log;

/* The longest line a worker writes (PIPE_BUF on Linux is 4096). */
#define PC_ACCESS_LINE_MAX 1024

/* Starts the writer thread (signals blocked), with a pipe for every
 * listener of cfg that has an access_log (pc_access_log_prepare). Returns
 * 0, or -errno with the reason logged and nothing left open. Main thread. */
int pc_access_log_start(struct pc_access_log **out,
                        const struct pc_config *cfg);

/* Before the workers see cfg (at start, and in a reload before it is
 * committed): makes the pipe of every listener slot of cfg with an
 * access_log that has none yet, and checks that each log can be opened.
 * Returns 0, or -errno with the reason in why ("[listener x] access_log:
 * /path: Permission denied"); pipes made stay, for a later try. Main
 * thread. */
int pc_access_log_prepare(struct pc_access_log *log,
                          const struct pc_config *cfg, char *why,
                          size_t size);

/* Queues one line (ending in '\n') for listener slot `slot`. Never
 * blocks: a full pipe, or a slot without one, drops the line and counts
 * it. Any thread (the workers). */
void pc_access_log_write(struct pc_access_log *log, unsigned slot,
                         const char *line, size_t len);

/* Has the writer reopen every log as cfg names it (a reload; logrotate):
 * a log that cannot be opened is said in the log and its old file kept;
 * the slots of listeners cfg no longer has keep theirs, for the lines of
 * their last connections. Main thread. */
void pc_access_log_reopen(struct pc_access_log *log,
                          const struct pc_config *cfg);

/* Writes what the pipes still hold, stops the writer, closes everything.
 * After the workers stopped; main thread. NULL is fine. */
void pc_access_log_stop(struct pc_access_log *log);

#endif
