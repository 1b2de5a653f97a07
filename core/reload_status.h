/* The outcome of each reload, kept in a small file so that a client
 * (`percored --reload`, which systemd's ExecReload= runs) can tell an
 * applied reload from a refused one: SIGHUP itself answers nothing, and
 * systemd 252 has no Type=notify-reload to carry the answer.
 *
 * The file holds, one "key value" a line: pid, attempt (0 at start, then
 * +1 per SIGHUP handled), result (started, applied or refused) and reason
 * (the line the log got). It is written aside and renamed over, so a
 * reader sees one whole outcome. */
#ifndef PC_CORE_RELOAD_STATUS_H
#define PC_CORE_RELOAD_STATUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/config.h"

struct pc_server;

#define PC_RELOAD_STATUS_NAME "percored.reload"

struct pc_reload_outcome {
    long pid;
    uint64_t attempt;
    char result[16];          /* "started", "applied", "refused" */
    char reason[PC_ERR_MAX + 128];
};

/* Where the outcome file is, the same rule for the server and the client:
 * $RUNTIME_DIRECTORY/percored.reload under systemd (RuntimeDirectory=),
 * else "<pid_file>.reload". Returns 0, or -ENOENT when neither is set.
 * Any thread. */
int pc_reload_status_path(const char *pid_file, char *buf, size_t size);

/* Reads the file at path into out. Returns 0, -errno if it cannot be read,
 * -EINVAL if it is not an outcome file. Any thread. */
int pc_reload_status_read(const char *path, struct pc_reload_outcome *out);

/* Records that signals are handled (attempt 0, "started"): from now on a
 * SIGHUP reloads instead of killing, which the client checks before it
 * sends one. Logs and returns -errno if the file cannot be written. Main
 * thread, srv->reload_status set (nothing to do when it is empty). */
int pc_reload_status_start(struct pc_server *srv);

/* Removes the file at path if this process wrote it (a second percored
 * given the same place owns it now). At exit, main thread. */
void pc_reload_status_remove(const char *path);

/* The one way a reload ends: logs the formatted line (notice when applied,
 * err when refused), counts the attempt and records the outcome with that
 * line as its reason. Main thread. */
void pc_reload_outcome(struct pc_server *srv, bool applied, const char *fmt,
                       ...) __attribute__((format(printf, 3, 4)));

#endif
