/* A room's line as it travels through Redis (protocols/room/cluster_wire.c):
 * what a home encodes comes back decoded the same, and a payload that is
 * not one (it is input from the network) is refused whole. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "protocols/room/cluster.h"

static struct cl_line sample(void)
{
    struct cl_line ln = {.run = 0xdeadbeef, .worker = 3,
                         .seq = UINT64_MAX, .kind = ROOM_EV_SAY,
                         .time_ms = 1764590000123, .dedup = 0,
                         .from = 42, .text = "hi\tthere", .len = 8};
    snprintf(ln.node, sizeof ln.node, "web1");
    snprintf(ln.nick, sizeof ln.nick, "ann");
    snprintf(ln.user, sizeof ln.user, "~ann");
    snprintf(ln.host, sizeof ln.host, "127.0.0.1");
    return ln;
}

static void test_cluster_line_decodes_as_encoded(void **state)
{
    (void)state;
    struct cl_line in = sample(), out;
    char *p;
    size_t len;
    assert_int_equal(cl_line_encode(&in, &p, &len), 0);
    const char want[] = "1\tweb1\tdeadbeef\t3\t18446744073709551615\t";
    assert_memory_equal(p, want, sizeof want - 1);
    assert_int_equal(cl_line_decode(&out, p, len), 0);
    assert_string_equal(out.node, "web1");
    assert_int_equal(out.run, 0xdeadbeef);
    assert_int_equal(out.worker, 3);
    assert_true(out.seq == UINT64_MAX);
    assert_int_equal(out.kind, ROOM_EV_SAY);
    assert_true(out.time_ms == in.time_ms);
    assert_true(out.from == 42);
    assert_string_equal(out.nick, "ann");
    assert_string_equal(out.user, "~ann");
    assert_string_equal(out.host, "127.0.0.1");
    assert_string_equal(out.target, "");
    assert_int_equal(out.len, 8);
    assert_memory_equal(out.text, "hi\tthere", 8); /* tabs kept as they are */
    free(p);
}

static void test_cluster_line_refuses_what_is_not_one(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "1\tweb1\tdeadbeef\t3\t7\t0\t1\t0\t42\tann\t~ann\th\t", /* short */
        "2\tweb1\tdeadbeef\t3\t7\t0\t1\t0\t42\tann\t~ann\th\t\tx",
        "1\tweb1\tdeadbeeg\t3\t7\t0\t1\t0\t42\tann\t~ann\th\t\tx",
        "1\tweb1\tdeadbeef\t-3\t7\t0\t1\t0\t42\tann\t~ann\th\t\tx",
        "1\tweb1\tdeadbeef\t 3\t7\t0\t1\t0\t42\tann\t~ann\th\t\tx",
        "1\tweb1\tdeadbeef\t3\t18446744073709551616\t0\t1\t0\t42\tann\t~ann"
        "\th\t\tx", /* 2^64 */
        "1\tweb1\tdeadbeef\t3\t7\t999\t1\t0\t42\tann\t~ann\th\t\tx",
        "1\tweb1\tdeadbeef\t3\t\t0\t1\t0\t42\tann\t~ann\th\t\tx",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        struct cl_line out;
        assert_int_equal(cl_line_decode(&out, bad[i], strlen(bad[i])),
                         -EINVAL);
    }
    struct cl_line ok;
    const char good[] = "1\tweb1\tdeadbeef\t3\t7\t0\t1\t0\t42\tann\t~ann\th\t"
                        "\tx";
    assert_int_equal(cl_line_decode(&ok, good, sizeof good - 1), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cluster_line_decodes_as_encoded),
        cmocka_unit_test(test_cluster_line_refuses_what_is_not_one),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
