/* The process's resources, from the kernel and from jemalloc. */
#include "core/process_metrics.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#ifdef PC_HAVE_JEMALLOC
#include <jemalloc/jemalloc.h>
#endif

#include "core/server.h"

static double timeval_seconds(struct timeval tv)
{
    return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

/* Open descriptors, less the one this count itself holds open. */
static long open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    long n = 0;
    const struct dirent *e;
    /* cppcheck-suppress readdirCalled ; a DIR of ours; readdir_r is gone */
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1;
}

/* The n-th space-separated number of p (0 is p's first), or -1. */
static double field(const char *p, unsigned n)
{
    for (; n && p; n--)
        if ((p = strchr(p, ' ')))
            p++;
    if (!p)
        return -1;
    char *end;
    unsigned long long v = strtoull(p, &end, 10);
    return end == p ? -1 : (double)v;
}

/* The first line of file that starts with prefix, into buf, or false. */
static bool read_line(const char *file, const char *prefix, char *buf,
                      size_t size)
{
    FILE *f = fopen(file, "r");
    if (!f)
        return false;
    bool found = false;
    while (!found && fgets(buf, (int)size, f))
        found = strncmp(buf, prefix, strlen(prefix)) == 0;
    fclose(f);
    return found;
}

/* The process's start, in seconds since the epoch: its start time after
 * boot (/proc/self/stat, field 22, in clock ticks) plus the boot time. */
static double start_time(void)
{
    char buf[1024], line[256];
    if (!read_line("/proc/self/stat", "", buf, sizeof buf) ||
        !read_line("/proc/stat", "btime ", line, sizeof line))
        return -1;
    const char *p = strrchr(buf, ')'); /* the command may hold spaces */
    /* After ") ": state is field 3, starttime field 22. */
    double ticks = p ? field(p + 2, 22 - 3) : -1;
    double btime = field(line, 1);
    if (ticks < 0 || btime < 0)
        return -1;
    return btime + ticks / (double)sysconf(_SC_CLK_TCK);
}

void pc_process_metrics(struct pc_text *t)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0) {
        pc_text_family(t, "process_cpu_seconds_total", true,
                       "User and system CPU time spent, in seconds");
        pc_text_sample_f64(t, "process_cpu_seconds_total", NULL, 0,
                           timeval_seconds(ru.ru_utime) +
                               timeval_seconds(ru.ru_stime));
    }
    char statm[256]; /* "size resident shared ..." in pages */
    if (read_line("/proc/self/statm", "", statm, sizeof statm)) {
        double page = (double)sysconf(_SC_PAGESIZE);
        double size = field(statm, 0), resident = field(statm, 1);
        if (size >= 0 && resident >= 0) {
            pc_text_family(t, "process_resident_memory_bytes", false,
                           "Resident memory size in bytes");
            pc_text_sample_u64(t, "process_resident_memory_bytes", NULL, 0,
                               (uint64_t)(resident * page));
            pc_text_family(t, "process_virtual_memory_bytes", false,
                           "Virtual memory size in bytes");
            pc_text_sample_u64(t, "process_virtual_memory_bytes", NULL, 0,
                               (uint64_t)(size * page));
        }
    }
    long fds = open_fds();
    if (fds >= 0) {
        pc_text_family(t, "process_open_fds", false, "Open file descriptors");
        pc_text_sample_i64(t, "process_open_fds", NULL, 0, fds);
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        pc_text_family(t, "process_max_fds", false,
                       "Maximum number of open file descriptors (soft "
                       "RLIMIT_NOFILE)");
        pc_text_sample_u64(t, "process_max_fds", NULL, 0,
                           (uint64_t)rl.rlim_cur);
    }
    double start = start_time();
    if (start >= 0) {
        pc_text_family(t, "process_start_time_seconds", false,
                       "Start time of the process since the epoch, in "
                       "seconds");
        pc_text_sample_f64(t, "process_start_time_seconds", NULL, 0, start);
    }
}

#ifdef PC_HAVE_JEMALLOC

/* stats.arenas.<i>.<what> by MIB, so each worker costs no name lookup. */
struct arena_stat {
    const char *name;
    size_t mib[5], miblen;
};

static size_t arena_value(struct arena_stat *s, unsigned arena)
{
    size_t v = 0, sz = sizeof v;
    s->mib[2] = arena;
    if (mallctlbymib(s->mib, s->miblen, &v, &sz, NULL, 0) != 0)
        return 0;
    return v;
}

static size_t global_value(const char *name)
{
    size_t v = 0, sz = sizeof v;
    return mallctl(name, &v, &sz, NULL, 0) == 0 ? v : 0;
}

void pc_jemalloc_metrics(struct pc_text *t, const struct pc_server *srv)
{
    /* jemalloc's statistics are a snapshot refreshed by writing epoch. */
    uint64_t epoch = 1;
    size_t page = 0, sz = sizeof page;
    if (mallctl("epoch", NULL, NULL, &epoch, sizeof epoch) != 0 ||
        mallctl("arenas.page", &page, &sz, NULL, 0) != 0)
        return;
    static const struct {
        const char *what, *help;
    } kinds[] = {
        {"allocated", "Bytes allocated by the application"},
        {"active", "Bytes in active pages (allocated, rounded up to pages)"},
        {"resident", "Bytes in physically resident data pages"},
    };
    char name[64], ctl[32];
    for (unsigned k = 0; k < 3; k++) {
        snprintf(name, sizeof name, "percore_jemalloc_%s_bytes", kinds[k].what);
        snprintf(ctl, sizeof ctl, "stats.%s", kinds[k].what);
        pc_text_family(t, name, false, kinds[k].help);
        pc_text_sample_u64(t, name, NULL, 0, global_value(ctl));
    }
    /* Allocated is small + large; active is in pages. */
    struct arena_stat st[] = {
        {.name = "stats.arenas.0.small.allocated"},
        {.name = "stats.arenas.0.large.allocated"},
        {.name = "stats.arenas.0.pactive"},
        {.name = "stats.arenas.0.resident"},
    };
    for (unsigned i = 0; i < 4; i++) {
        st[i].miblen = sizeof st[i].mib / sizeof st[i].mib[0];
        if (mallctlnametomib(st[i].name, st[i].mib, &st[i].miblen) != 0)
            return;
    }
    for (unsigned k = 0; k < 3; k++) {
        snprintf(name, sizeof name, "percore_worker_jemalloc_%s_bytes",
                 kinds[k].what);
        pc_text_family(t, name, false, kinds[k].help);
        for (unsigned i = 0; i < srv->nworkers; i++) {
            int arena = srv->workers[i].arena;
            if (arena < 0)
                continue;
            size_t v = k == 0 ? arena_value(&st[0], (unsigned)arena) +
                                    arena_value(&st[1], (unsigned)arena)
                       : k == 1 ? arena_value(&st[2], (unsigned)arena) * page
                                : arena_value(&st[3], (unsigned)arena);
            char id[16];
            snprintf(id, sizeof id, "%u", i);
            const struct pc_label l = {"worker", id};
            pc_text_sample_u64(t, name, &l, 1, v);
        }
    }
}

#else

void pc_jemalloc_metrics(struct pc_text *t, const struct pc_server *srv)
{
    (void)t;
    (void)srv;
}

#endif
