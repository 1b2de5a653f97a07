/* The reload outcome file: where it is, writing it, reading it. */
#include "core/reload_status.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/file_replace.h"
#include "core/server.h"
#include "percore/percore.h"

int pc_reload_status_path(const char *pid_file, char *buf, size_t size)
{
    const char *rt = getenv("RUNTIME_DIRECTORY");
    int n;
    /* systemd may list several directories, separated by ':'. */
    if (rt && *rt)
        n = snprintf(buf, size, "%.*s/%s", (int)strcspn(rt, ":"), rt,
                     PC_RELOAD_STATUS_NAME);
    else if (pid_file && *pid_file)
        n = snprintf(buf, size, "%s.reload", pid_file);
    else
        return -ENOENT;
    return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

static int write_outcome(const struct pc_server *srv, const char *result,
                         const char *reason)
{
    char text[PC_ERR_MAX + 384];
    snprintf(text, sizeof text, "pid %ld\nattempt %" PRIu64
             "\nresult %s\nreason %s\n", (long)getpid(), srv->reload_attempts,
             result, reason);
    return pc_file_replace(srv->reload_status, text);
}

int pc_reload_status_start(struct pc_server *srv)
{
    if (!*srv->reload_status)
        return 0;
    int e = write_outcome(srv, "started", "running");
    if (e < 0)
        pc_log(PC_LOG_ERR, "reload outcome file %s: %s (percored --reload "
               "will not find this process)", srv->reload_status, strerror(-e));
    return e;
}

void pc_reload_outcome(struct pc_server *srv, bool applied, const char *fmt,
                       ...)
{
    char line[sizeof ((struct pc_reload_outcome *)0)->reason];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    /* One line in the file: a reason never spans the next key. */
    for (char *p = line; *p; p++)
        if (*p == '\n')
            *p = ' ';
    pc_log(applied ? PC_LOG_NOTICE : PC_LOG_ERR, "%s", line);
    srv->reload_attempts++;
    if (!*srv->reload_status)
        return;
    int e = write_outcome(srv, applied ? "applied" : "refused", line);
    if (e < 0)
        pc_log(PC_LOG_ERR, "reload outcome file %s: %s", srv->reload_status,
               strerror(-e));
}

int pc_reload_status_read(const char *path, struct pc_reload_outcome *out)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -errno;
    memset(out, 0, sizeof *out);
    char line[PC_ERR_MAX + 192];
    unsigned seen = 0;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        char *value = strchr(line, ' ');
        if (!value)
            continue;
        *value++ = '\0';
        char *end;
        if (strcmp(line, "pid") == 0) {
            out->pid = strtol(value, &end, 10);
            seen |= *end == '\0' && out->pid > 0 ? 1 : 0;
        } else if (strcmp(line, "attempt") == 0) {
            out->attempt = strtoull(value, &end, 10);
            seen |= *end == '\0' ? 2 : 0;
        } else if (strcmp(line, "result") == 0) {
            snprintf(out->result, sizeof out->result, "%s", value);
            seen |= 4;
        } else if (strcmp(line, "reason") == 0) {
            snprintf(out->reason, sizeof out->reason, "%s", value);
        }
    }
    fclose(f);
    return seen == 7 ? 0 : -EINVAL;
}

void pc_reload_status_remove(const char *path)
{
    struct pc_reload_outcome o = {0};
    if (*path && pc_reload_status_read(path, &o) == 0 && o.pid == getpid())
        (void)unlink(path);
}
