/* The load generator's latency histogram (bench/hist.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "hist.h"

static struct pcb_hist *new_hist(void)
{
    struct pcb_hist *h = malloc(sizeof *h);
    assert_non_null(h);
    pcb_hist_reset(h);
    return h;
}

static void test_histogram_counts_small_values_exactly(void **state)
{
    for (uint64_t v = 0; v < PCB_HIST_SUB; v++) {
        assert_int_equal(pcb_hist_index(v), v);
        assert_int_equal(pcb_hist_lowest(pcb_hist_index(v)), v);
        assert_int_equal(pcb_hist_highest(pcb_hist_index(v)), v);
    }
}

static void test_histogram_buckets_tile_the_whole_range(void **state)
{
    /* Every bucket starts right after the previous one ends, so no value
     * falls between buckets, up to the largest 64-bit value. */
    for (unsigned i = 1; i < PCB_HIST_BUCKETS; i++)
        assert_int_equal(pcb_hist_lowest(i), pcb_hist_highest(i - 1) + 1);
    assert_int_equal(pcb_hist_index(UINT64_MAX), PCB_HIST_BUCKETS - 1);
    assert_int_equal(pcb_hist_highest(PCB_HIST_BUCKETS - 1), UINT64_MAX);
}

static void test_histogram_relative_error_is_below_one_percent(void **state)
{
    uint64_t v = 1;
    for (int i = 0; i < 20000; i++) {
        unsigned idx = pcb_hist_index(v);
        uint64_t lo = pcb_hist_lowest(idx), hi = pcb_hist_highest(idx);
        assert_true(lo <= v && v <= hi);
        assert_true((double)(hi - lo) <= (double)lo / 100.0 + 1);
        v += v / 97 + 1;
        if (v > (UINT64_MAX >> 2))
            break;
    }
}

static void test_histogram_percentiles_of_uniform_values(void **state)
{
    struct pcb_hist *h = new_hist();
    for (uint64_t v = 1; v <= 100000; v++)
        pcb_hist_record(h, v * 1000); /* 1 us .. 100 ms in ns */
    assert_int_equal(h->count, 100000);
    assert_int_equal(h->min, 1000);
    assert_int_equal(h->max, 100000000);
    const double pcts[] = {50, 90, 99, 99.9};
    for (size_t i = 0; i < 4; i++) {
        double want = pcts[i] * 1000.0 * 1000.0;
        double got = (double)pcb_hist_percentile(h, pcts[i]);
        assert_true(got >= want);
        assert_true(got <= want * 1.01);
    }
    assert_int_equal(pcb_hist_percentile(h, 100), 100000000);
    assert_int_equal(pcb_hist_percentile(h, 0), 1000);
    double mean = pcb_hist_mean(h);
    assert_true(mean > 50000499.0 && mean < 50000501.0);
    free(h);
}

static void test_histogram_percentile_never_exceeds_the_maximum(void **state)
{
    struct pcb_hist *h = new_hist();
    pcb_hist_record(h, 1000001);
    assert_int_equal(pcb_hist_percentile(h, 50), 1000001);
    assert_int_equal(pcb_hist_percentile(h, 99.9), 1000001);
    pcb_hist_record(h, 5);
    assert_int_equal(pcb_hist_percentile(h, 50), 5);
    assert_int_equal(pcb_hist_percentile(h, 50.1), 1000001);
    free(h);
}

static void
test_histogram_one_slow_value_in_a_thousand_shows_at_p99_9(void **state)
{
    struct pcb_hist *h = new_hist();
    for (int i = 0; i < 999; i++)
        pcb_hist_record(h, 100);
    pcb_hist_record(h, 50000000);
    assert_int_equal(pcb_hist_percentile(h, 99), 100);
    assert_int_equal(pcb_hist_percentile(h, 99.9), 100);
    assert_int_equal(pcb_hist_percentile(h, 99.95), 50000000);
    assert_int_equal(h->max, 50000000);
    free(h);
}

static void test_histogram_merge_equals_recording_in_one(void **state)
{
    struct pcb_hist *a = new_hist(), *b = new_hist(), *all = new_hist();
    for (uint64_t v = 0; v < 5000; v++) {
        uint64_t x = v * v * 31 + 7;
        pcb_hist_record(v % 3 ? a : b, x);
        pcb_hist_record(all, x);
    }
    pcb_hist_merge(a, b);
    assert_int_equal(a->count, all->count);
    assert_int_equal(a->min, all->min);
    assert_int_equal(a->max, all->max);
    assert_memory_equal(a->buckets, all->buckets, sizeof a->buckets);
    for (double p = 1; p < 100; p += 7.5)
        assert_int_equal(pcb_hist_percentile(a, p),
                         pcb_hist_percentile(all, p));
    free(a);
    free(b);
    free(all);
}

static void test_histogram_empty_reports_zero(void **state)
{
    struct pcb_hist *h = new_hist();
    assert_int_equal(pcb_hist_percentile(h, 99), 0);
    assert_true(pcb_hist_mean(h) == 0.0);
    struct pcb_hist *e = new_hist();
    pcb_hist_merge(h, e);
    assert_int_equal(h->count, 0);
    free(h);
    free(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_histogram_counts_small_values_exactly),
        cmocka_unit_test(test_histogram_buckets_tile_the_whole_range),
        cmocka_unit_test(test_histogram_relative_error_is_below_one_percent),
        cmocka_unit_test(test_histogram_percentiles_of_uniform_values),
        cmocka_unit_test(test_histogram_percentile_never_exceeds_the_maximum),
        cmocka_unit_test(
            test_histogram_one_slow_value_in_a_thousand_shows_at_p99_9),
        cmocka_unit_test(test_histogram_merge_equals_recording_in_one),
        cmocka_unit_test(test_histogram_empty_reports_zero),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
