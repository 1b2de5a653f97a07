/* How many CPUs this process may use, and pinning to them. */
#ifndef PC_WORKERS_CPUS_H
#define PC_WORKERS_CPUS_H

#include <sched.h>

/* CPUs usable by this process: the affinity mask, further limited by a
 * cgroup v2 cpu.max quota (ceil(quota / period)). At least 1. `cgroup_root`
 * is normally "/sys/fs/cgroup" and `proc_cgroup` "/proc/self/cgroup"
 * (parameters so tests can point them at fixtures). */
unsigned pc_cpus_usable(const char *cgroup_root, const char *proc_cgroup);

/* CPU quota in CPUs from a cpu.max line ("max 100000", "150000 100000"):
 * 0 when unlimited or unreadable. */
unsigned pc_cpus_quota_parse(const char *cpu_max_line);

/* The n-th CPU (modulo the count) of this process's affinity mask. */
int pc_cpus_nth(unsigned n);

/* Pins the calling thread to `cpu`. Returns 0 or -errno. */
int pc_cpus_pin_self(int cpu);

#endif
