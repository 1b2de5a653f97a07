/* The client side of a reload: find the process, signal it, wait for the
 * outcome it records (reload_status.h). */
#include "core/reload_cli.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "core/reload_status.h"

/* Under ExecReload= stderr is the journal's stream: a refusal is an
 * error there, not info. */
static int refused(const char *what)
{
    fprintf(stderr, "%spercored: %s\n", pc_log_journal() ? "<3>" : "", what);
    return 1;
}

static int read_pid(const char *arg, long *pid, const char **pid_file)
{
    char *end;
    errno = 0;
    long n = strtol(arg, &end, 10);
    if (*arg && *end == '\0' && !errno) {
        *pid = n;
        *pid_file = NULL;
        return n > 0 ? 0 : -EINVAL;
    }
    FILE *f = fopen(arg, "r");
    if (!f)
        return -errno;
    char line[32] = "";
    int e = fgets(line, sizeof line, f) ? 0 : -EINVAL;
    fclose(f);
    errno = 0;
    n = strtol(line, &end, 10);
    if (e || errno || end == line || (*end && *end != '\n') || n <= 0)
        return -EINVAL;
    *pid = n;
    *pid_file = arg;
    return 0;
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int pc_reload_request(const char *pid_arg)
{
    char msg[PC_ERR_MAX + 512];
    long pid = 0;
    const char *pid_file = NULL;
    int e = read_pid(pid_arg, &pid, &pid_file);
    if (e < 0) {
        snprintf(msg, sizeof msg, "--reload: pid file %s: %s", pid_arg,
                 e == -EINVAL ? "not a process id (a number, or a file "
                 "holding one)" : strerror(-e));
        return refused(msg);
    }
    char path[PC_ADDR_MAX + 32];
    if (pc_reload_status_path(pid_file, path, sizeof path) < 0) {
        snprintf(msg, sizeof msg, "--reload: a bare pid (%ld) needs "
                 "$RUNTIME_DIRECTORY (systemd) to find the reload outcome; "
                 "give the pid file instead", pid);
        return refused(msg);
    }
    /* The server records "started" once SIGHUP reloads it: before that, or
     * for another process, the signal would kill instead. */
    struct pc_reload_outcome before;
    e = pc_reload_status_read(path, &before);
    if (e < 0 || before.pid != pid) {
        snprintf(msg, sizeof msg, "--reload: percored (pid %ld) has not "
                 "recorded that it handles reloads in %s (%s): is it running, "
                 "started with this pid file?", pid, path,
                 e < 0 ? strerror(-e) : "written by another process");
        return refused(msg);
    }
    if (kill((pid_t)pid, SIGHUP) != 0) {
        snprintf(msg, sizeof msg, "--reload: cannot signal pid %ld: %s", pid,
                 strerror(errno));
        return refused(msg);
    }
    double deadline = now_seconds() + PC_RELOAD_WAIT_SECONDS;
    const struct timespec poll = {0, 20L * 1000 * 1000};
    while (now_seconds() < deadline) {
        struct pc_reload_outcome now;
        if (pc_reload_status_read(path, &now) == 0 && now.pid == pid &&
            now.attempt > before.attempt) {
            if (strcmp(now.result, "applied") == 0) {
                printf("percored: %s\n", now.reason);
                return 0;
            }
            return refused(now.reason);
        }
        if (kill((pid_t)pid, 0) != 0 && errno == ESRCH) {
            snprintf(msg, sizeof msg, "--reload: percored (pid %ld) exited "
                     "before it answered", pid);
            return refused(msg);
        }
        nanosleep(&poll, NULL);
    }
    snprintf(msg, sizeof msg, "--reload: percored (pid %ld) recorded no "
             "outcome in %s within %d s", pid, path, PC_RELOAD_WAIT_SECONDS);
    return refused(msg);
}
