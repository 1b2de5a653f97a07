#include "workers/cpus.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

unsigned pc_cpus_quota_parse(const char *line)
{
    char quota[32];
    unsigned long long period;
    /* NOLINTNEXTLINE(cert-err34-c): the kernel's cpu.max, in range */
    if (sscanf(line, "%31s %llu", quota, &period) != 2 || period == 0)
        return 0;
    if (strcmp(quota, "max") == 0)
        return 0;
    char *end;
    unsigned long long q = strtoull(quota, &end, 10);
    if (*end || q == 0)
        return 0;
    return (unsigned)((q + period - 1) / period);
}

static unsigned cgroup_quota(const char *root, const char *proc_cgroup)
{
    FILE *f = fopen(proc_cgroup, "r");
    if (!f)
        return 0;
    char line[4096], path[4096] = "";
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "0::", 3) == 0) { /* the cgroup v2 entry */
            line[strcspn(line, "\n")] = '\0';
            snprintf(path, sizeof path, "%s", line + 3);
        }
    fclose(f);
    if (!*path)
        return 0;
    /* A quota on any ancestor limits us too: take the smallest. */
    unsigned best = 0;
    for (;;) {
        char file[8192];
        snprintf(file, sizeof file, "%s%s/cpu.max", root,
                 strcmp(path, "/") == 0 ? "" : path);
        FILE *m = fopen(file, "r");
        if (m) {
            if (fgets(line, sizeof line, m)) {
                unsigned q = pc_cpus_quota_parse(line);
                if (q && (!best || q < best))
                    best = q;
            }
            fclose(m);
        }
        char *slash = strrchr(path, '/');
        if (!slash || slash == path)
            break;
        *slash = '\0';
    }
    return best;
}

unsigned pc_cpus_usable(const char *cgroup_root, const char *proc_cgroup)
{
    cpu_set_t set;
    unsigned n = 1;
    if (sched_getaffinity(0, sizeof set, &set) == 0)
        n = (unsigned)CPU_COUNT(&set);
    unsigned q = cgroup_quota(cgroup_root, proc_cgroup);
    if (q && q < n)
        n = q;
    return n ? n : 1;
}

int pc_cpus_nth(unsigned n)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) != 0)
        return -1;
    unsigned count = (unsigned)CPU_COUNT(&set);
    if (!count)
        return -1;
    n %= count;
    for (int cpu = 0; cpu < CPU_SETSIZE; cpu++)
        if (CPU_ISSET(cpu, &set) && n-- == 0)
            return cpu;
    return -1;
}

int pc_cpus_pin_self(int cpu)
{
    if (cpu < 0)
        return -EINVAL;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return -pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}
