/* The room core's pieces without workers: the hash map under every
 * registry, and how rooms and nicks spread over home workers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "protocols/room/fold.h"
#include "protocols/room/map.h"

struct entry {
    uint64_t key;
};

static bool entry_eq(const void *value, const void *key)
{
    return ((const struct entry *)value)->key == *(const uint64_t *)key;
}

static void test_map_keeps_every_entry_through_deletions(void **state)
{
    (void)state;
    enum { N = 5000 };
    struct room_map m = {0};
    static struct entry e[N + 1];
    for (uint64_t i = 1; i <= N; i++) {
        e[i].key = i << 20; /* ids share low bits, as conn ids do */
        assert_int_equal(room_map_put(&m, room_hash_u64(e[i].key), &e[i]), 0);
    }
    assert_int_equal(m.len, N);
    /* Remove the odd ones: every other must still be found, since
     * backward-shift deletion keeps probe chains whole. */
    for (uint64_t i = 1; i <= N; i += 2)
        assert_ptr_equal(room_map_del(&m, room_hash_u64(e[i].key),
                                      &e[i].key, entry_eq),
                         &e[i]);
    for (uint64_t i = 1; i <= N; i++) {
        void *got = room_map_get(&m, room_hash_u64(e[i].key), &e[i].key,
                                 entry_eq);
        if (i % 2)
            assert_null(got);
        else
            assert_ptr_equal(got, &e[i]);
    }
    assert_null(room_map_del(&m, room_hash_u64(e[1].key), &e[1].key,
                             entry_eq)); /* not twice */
    assert_int_equal(m.len, N / 2);
    room_map_free(&m);
}

static void test_homes_spread_and_ignore_case(void **state)
{
    (void)state;
    unsigned count[4] = {0};
    for (int i = 0; i < 1000; i++) {
        char room[16], upper[16], key[16];
        snprintf(room, sizeof room, "room%d", i);
        snprintf(upper, sizeof upper, "ROOM%d", i);
        room_fold(key, upper, sizeof key);
        assert_string_equal(key, room); /* Room and room: one home */
        count[room_hash_str(room) % 4]++;
    }
    for (int i = 0; i < 4; i++)
        assert_in_range(count[i], 150, 350);
}

static void test_room_names_are_the_chat_room_characters(void **state)
{
    (void)state;
    assert_true(room_name_valid("rust", 4));
    assert_true(room_name_valid("a.b-c_d#e", 9));
    assert_true(room_name_valid("x", 1));
    assert_false(room_name_valid("", 0));
    assert_false(room_name_valid("a b", 3));
    assert_false(room_name_valid("a,b", 3));
    assert_false(room_name_valid("caf\xc3\xa9", 5));
    char longest[34];
    memset(longest, 'a', sizeof longest);
    assert_true(room_name_valid(longest, 32));
    assert_false(room_name_valid(longest, 33));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_map_keeps_every_entry_through_deletions),
        cmocka_unit_test(test_homes_spread_and_ignore_case),
        cmocka_unit_test(test_room_names_are_the_chat_room_characters),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
