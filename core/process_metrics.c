/* The process's resources, from the kernel and from jemalloc. */
#include "core/process_metrics.h"

#include <dirent.h>
#include <stdio.h>
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
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1;
}

/* The process's start, in seconds since the epoch: its start time after
 * boot (/proc/self/stat, field 22, in clock ticks) plus the boot time. */
static double start_time(void)
{
    char buf[1024];
    FILE *f = fopen("/proc/self/stat", "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')'); /* the command may hold spaces */
    unsigned long long ticks = 0;
    /* After ")": state is field 3, starttime field 22. */
    if (!p || sscanf(p + 2,
                     "%*c %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s "
                     "%*s %*s %*s %*s %*s %*s %*s %*s %llu",
                     &ticks) != 1)
        return -1;
    unsigned long long btime = 0;
    if (!(f = fopen("/proc/stat", "r")))
        return -1;
    char line[256];
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "btime %llu", &btime) == 1)
            break;
    fclose(f);
    return (double)btime + (double)ticks / (double)sysconf(_SC_CLK_TCK);
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
    unsigned long long size, resident;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        long page = sysconf(_SC_PAGESIZE);
        if (fscanf(f, "%llu %llu", &size, &resident) == 2) {
            pc_text_family(t, "process_resident_memory_bytes", false,
                           "Resident memory size in bytes");
            pc_text_sample_u64(t, "process_resident_memory_bytes", NULL, 0,
                               resident * (unsigned long long)page);
            pc_text_family(t, "process_virtual_memory_bytes", false,
                           "Virtual memory size in bytes");
            pc_text_sample_u64(t, "process_virtual_memory_bytes", NULL, 0,
                               size * (unsigned long long)page);
        }
        fclose(f);
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
