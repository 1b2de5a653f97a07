/* Flood control's token bucket: bursts pass, then lines wait exactly as
 * long as the rate says, and nothing is ever refused outright. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "protocols/room/bucket.h"

static void test_burst_then_rate(void **state)
{
    (void)state;
    struct room_bucket b;
    room_bucket_init(&b, 100.0, 3);
    for (int i = 0; i < 3; i++)
        assert_true(room_bucket_take(&b, 100.0, 10, 3) == 0);
    double wait = room_bucket_take(&b, 100.0, 10, 3);
    assert_true(wait > 0.0999 && wait < 0.1001);
    /* Asking again before the wait is over takes nothing. */
    wait = room_bucket_take(&b, 100.05, 10, 3);
    assert_true(wait > 0.0499 && wait < 0.0501);
    assert_true(room_bucket_take(&b, 100.1, 10, 3) == 0);
    assert_true(room_bucket_take(&b, 100.1, 10, 3) > 0);
}

static void test_refill_caps_at_burst(void **state)
{
    (void)state;
    struct room_bucket b;
    room_bucket_init(&b, 0, 2);
    assert_true(room_bucket_take(&b, 0, 1, 2) == 0);
    assert_true(room_bucket_take(&b, 0, 1, 2) == 0);
    /* An hour of silence buys a burst, not an hour of lines. */
    assert_true(room_bucket_take(&b, 3600, 1, 2) == 0);
    assert_true(room_bucket_take(&b, 3600, 1, 2) == 0);
    assert_true(room_bucket_take(&b, 3600, 1, 2) > 0);
}

static void test_unlimited(void **state)
{
    (void)state;
    struct room_bucket b;
    room_bucket_init(&b, 0, 1);
    for (int i = 0; i < 100000; i++)
        assert_true(room_bucket_take(&b, 0, 0, 1) == 0);
}

static void test_steady_rate(void **state)
{
    (void)state;
    /* A sender that always waits as told gets exactly `rate` lines per
     * second after its burst. */
    struct room_bucket b;
    double now = 0;
    room_bucket_init(&b, now, 5);
    int lines = 0;
    while (now < 10.0) {
        double wait = room_bucket_take(&b, now, 20, 5);
        if (wait == 0)
            lines++;
        else
            now += wait;
    }
    assert_in_range(lines, 5 + 199, 5 + 201);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_burst_then_rate),
        cmocka_unit_test(test_refill_caps_at_burst),
        cmocka_unit_test(test_unlimited),
        cmocka_unit_test(test_steady_rate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
