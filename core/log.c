#include "core/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static atomic_int log_level = PC_LOG_INFO;
static bool log_journal; /* written once before threads start */

static const char *const level_names[] = {
    [PC_LOG_ERR] = "err",     [PC_LOG_WARN] = "warning",
    [PC_LOG_NOTICE] = "notice", [PC_LOG_INFO] = "info",
    [PC_LOG_DEBUG] = "debug",
};

void pc_log_init(void)
{
    /* systemd sets JOURNAL_STREAM to "DEVICE:INODE" of the stream it
     * connected stderr to; the journal then stamps each line itself and
     * reads its level from the "<N>" prefix. The variable is inherited
     * further than that stream, so it counts only while stderr is still
     * that stream (sd_journal_stream_fd(3)). */
    const char *v = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    struct stat st;
    /* NOLINTNEXTLINE(cert-err34-c): a wrong number only fails the match */
    log_journal = v && sscanf(v, "%llu:%llu", &dev, &ino) == 2 &&
                  fstat(STDERR_FILENO, &st) == 0 &&
                  (unsigned long long)st.st_dev == dev &&
                  (unsigned long long)st.st_ino == ino;
}

bool pc_log_journal(void)
{
    return log_journal;
}

void pc_log_set_level(enum pc_log_level level)
{
    atomic_store_explicit(&log_level, (int)level, memory_order_relaxed);
}

enum pc_log_level pc_log_get_level(void)
{
    return (enum pc_log_level)atomic_load_explicit(&log_level,
                                                   memory_order_relaxed);
}

int pc_log_level_parse(const char *name)
{
    for (int l = PC_LOG_ERR; l <= PC_LOG_DEBUG; l++)
        if (strcmp(name, level_names[l]) == 0)
            return l;
    if (strcmp(name, "error") == 0)
        return PC_LOG_ERR;
    if (strcmp(name, "warn") == 0)
        return PC_LOG_WARN;
    return -EINVAL;
}

void pc_log(enum pc_log_level level, const char *fmt, ...)
{
    if ((int)level > atomic_load_explicit(&log_level, memory_order_relaxed))
        return;
    char line[2048];
    size_t n;
    if (log_journal) {
        n = (size_t)snprintf(line, sizeof line, "<%d>", (int)level);
    } else {
        struct timespec ts;
        struct tm tm;
        clock_gettime(CLOCK_REALTIME, &ts);
        localtime_r(&ts.tv_sec, &tm);
        n = strftime(line, sizeof line, "%Y-%m-%d %H:%M:%S", &tm);
        n += (size_t)snprintf(line + n, sizeof line - n, ".%03ld %s: ",
                              ts.tv_nsec / 1000000, level_names[level]);
    }
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - n - 1, fmt, ap);
    va_end(ap);
    n = m < 0 ? n : n + (size_t)m;
    if (n > sizeof line - 2)
        n = sizeof line - 2;
    line[n++] = '\n';
    /* One write per line so lines of different threads never interleave. */
    ssize_t r = write(STDERR_FILENO, line, n);
    (void)r;
}
