/* Worker-count detection: affinity mask and cgroup v2 cpu.max. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "workers/cpus.h"

static void test_quota_parse(void **state)
{
    assert_int_equal(pc_cpus_quota_parse("max 100000\n"), 0);
    assert_int_equal(pc_cpus_quota_parse("100000 100000\n"), 1);
    assert_int_equal(pc_cpus_quota_parse("150000 100000\n"), 2);
    assert_int_equal(pc_cpus_quota_parse("50000 100000\n"), 1);
    assert_int_equal(pc_cpus_quota_parse("400000 100000"), 4);
    assert_int_equal(pc_cpus_quota_parse("garbage"), 0);
    assert_int_equal(pc_cpus_quota_parse("100 0"), 0);
}

static char root[] = "/tmp/pc-cgroup-XXXXXX";

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_usable_respects_affinity_and_quota(void **state)
{
    cpu_set_t set;
    sched_getaffinity(0, sizeof set, &set);
    unsigned affinity = (unsigned)CPU_COUNT(&set);
    assert_non_null(mkdtemp(root));
    char path[512], proc[512];
    snprintf(path, sizeof path, "%s/system.slice", root);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/system.slice/svc", root);
    mkdir(path, 0755);
    snprintf(proc, sizeof proc, "%s/proc-cgroup", root);
    write_file(proc, "0::/system.slice/svc\n");

    /* No cpu.max anywhere: the affinity mask decides. */
    assert_int_equal(pc_cpus_usable(root, proc), affinity);
    /* A quota of half a CPU on the service: one worker. */
    snprintf(path, sizeof path, "%s/system.slice/svc/cpu.max", root);
    write_file(path, "50000 100000\n");
    assert_int_equal(pc_cpus_usable(root, proc), 1);
    /* A quota above the affinity mask does not add CPUs. */
    write_file(path, "6400000 100000\n");
    assert_int_equal(pc_cpus_usable(root, proc), affinity);
    /* An unlimited leaf under a limited parent: the parent limits. */
    write_file(path, "max 100000\n");
    snprintf(path, sizeof path, "%s/system.slice/cpu.max", root);
    write_file(path, "100000 100000\n");
    assert_int_equal(pc_cpus_usable(root, proc), 1);
    /* Unreadable /proc/self/cgroup: affinity only. */
    assert_int_equal(pc_cpus_usable(root, "/nonexistent"), affinity);
}

static void test_nth_cycles_through_the_mask(void **state)
{
    int first = pc_cpus_nth(0);
    assert_true(first >= 0);
    cpu_set_t set;
    sched_getaffinity(0, sizeof set, &set);
    assert_int_equal(pc_cpus_nth((unsigned)CPU_COUNT(&set)), first);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quota_parse),
        cmocka_unit_test(test_usable_respects_affinity_and_quota),
        cmocka_unit_test(test_nth_cycles_through_the_mask),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
