/* The Prometheus text writer: escaping as the format asks, a buffer that
 * grows past any fixed size, and the names modules may not take. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/metrics.h"
#include "core/metrics_text.h"

static char *text_of(struct pc_text *t)
{
    struct pc_sbuf *b = pc_text_finish(t);
    assert_non_null(b);
    char *s = malloc(b->len + 1);
    memcpy(s, b->data, b->len);
    s[b->len] = '\0';
    pc_sbuf_unref(b);
    return s;
}

static void test_label_values_escape_backslash_quote_and_newline(void **state)
{
    (void)state;
    struct pc_text t = {0};
    const struct pc_label l[] = {{"listener", "a\"b\\c\nd"}, {"x", ""}};
    pc_text_sample_u64(&t, "percore_x_total", l, 2, 42);
    char *s = text_of(&t);
    assert_string_equal(s, "percore_x_total{listener=\"a\\\"b\\\\c\\nd\","
                           "x=\"\"} 42\n");
    free(s);
}

static void test_help_escapes_backslash_and_newline_only(void **state)
{
    (void)state;
    struct pc_text t = {0};
    pc_text_family(&t, "percore_y", false, "say \"hi\"\\\nbye");
    char *s = text_of(&t);
    assert_string_equal(s, "# HELP percore_y say \"hi\"\\\\\\nbye\n"
                           "# TYPE percore_y gauge\n");
    free(s);
}

static void test_values_keep_their_sign_and_precision(void **state)
{
    (void)state;
    struct pc_text t = {0};
    pc_text_sample_i64(&t, "g", NULL, 0, -3);
    pc_text_sample_u64(&t, "c_total", NULL, 0, UINT64_MAX);
    pc_text_sample_f64(&t, "s_seconds", NULL, 0, 1.5);
    char *s = text_of(&t);
    assert_string_equal(s, "g -3\nc_total 18446744073709551615\n"
                           "s_seconds 1.500000\n");
    free(s);
}

static void test_the_text_grows_past_any_fixed_buffer(void **state)
{
    (void)state;
    struct pc_text t = {0};
    char worker[16];
    for (unsigned i = 0; i < 20000; i++) { /* about 900 KB */
        snprintf(worker, sizeof worker, "%u", i);
        const struct pc_label l = {"worker", worker};
        pc_text_sample_u64(&t, "percore_worker_loop_iterations_total", &l, 1,
                           i);
    }
    char long_help[1000];
    memset(long_help, 'h', sizeof long_help - 1);
    long_help[sizeof long_help - 1] = '\0';
    pc_text_printf(&t, "# %s\n", long_help); /* past the printf fast path */
    char *s = text_of(&t);
    assert_true(strlen(s) > 256 * 1024);
    assert_non_null(strstr(s, "{worker=\"0\"} 0\n"));
    assert_non_null(strstr(s, "{worker=\"19999\"} 19999\n# hhh"));
    assert_int_equal(s[strlen(s) - 1], '\n');
    free(s);
}

static void test_framework_names_are_reserved_for_the_framework(void **state)
{
    (void)state;
    assert_true(pc_metrics_reserved("percore_sent_bytes_total"));
    assert_true(pc_metrics_reserved("percore_connections_closed_total"));
    assert_true(pc_metrics_reserved("percore_connections_open"));
    assert_true(pc_metrics_reserved("percore_build_info"));
    assert_true(pc_metrics_reserved("percore_worker_anything"));
    assert_true(pc_metrics_reserved("percore_config_listener_backlog"));
    assert_true(pc_metrics_reserved("process_cpu_seconds_total"));
    assert_false(pc_metrics_reserved("percore_room_rooms"));
    assert_false(pc_metrics_reserved("percore_upper_lines_total"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_label_values_escape_backslash_quote_and_newline),
        cmocka_unit_test(test_help_escapes_backslash_and_newline_only),
        cmocka_unit_test(test_values_keep_their_sign_and_precision),
        cmocka_unit_test(test_the_text_grows_past_any_fixed_buffer),
        cmocka_unit_test(test_framework_names_are_reserved_for_the_framework),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
