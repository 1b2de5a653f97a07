/* The chat room registries: members and per-worker counts at a room's
 * home, local member lists, and the hash map beneath both. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "protocols/chat/rooms.h"

static void test_home_join_leave(void **state)
{
    (void)state;
    struct chat_home h;
    chat_home_init(&h, 4);
    struct chat_home_room *r = chat_home_join(&h, "lobby", 1, 0, "alice");
    assert_non_null(r);
    assert_ptr_equal(chat_home_join(&h, "lobby", 2, 3, "bob"), r);
    assert_ptr_equal(chat_home_join(&h, "lobby", 3, 3, "carol"), r);
    assert_int_equal(r->members, 3);
    assert_int_equal(r->per_worker[0], 1);
    assert_int_equal(r->per_worker[3], 2);
    /* joining twice only renames */
    assert_ptr_equal(chat_home_join(&h, "lobby", 2, 3, "bobby"), r);
    assert_int_equal(r->members, 3);
    assert_string_equal(chat_home_member(r, 2)->nick, "bobby");

    char *who = chat_home_who(r);
    assert_string_equal(who, "OK who lobby 3: alice bobby carol\n");
    free(who);

    assert_non_null(chat_home_join(&h, "rust", 9, 1, "dave"));
    char *list = chat_home_list(&h);
    assert_true(strstr(list, " lobby(3)") && strstr(list, " rust(1)"));
    free(list);

    assert_int_equal(chat_home_leave(&h, &r, 2), 1);
    assert_int_equal(chat_home_leave(&h, &r, 2), 0); /* not twice */
    assert_int_equal(r->per_worker[3], 1);
    assert_int_equal(chat_home_leave(&h, &r, 1), 1);
    assert_int_equal(chat_home_leave(&h, &r, 3), 1);
    assert_null(r); /* emptied rooms go */
    assert_null(chat_home_find(&h, "lobby"));
    assert_non_null(chat_home_find(&h, "rust"));
    chat_home_fini(&h);
}

static void test_many_members(void **state)
{
    (void)state;
    struct chat_home h;
    chat_home_init(&h, 2);
    enum { N = 5000 };
    for (uint64_t i = 1; i <= N; i++) {
        char nick[16];
        snprintf(nick, sizeof nick, "n%llu", (unsigned long long)i);
        assert_non_null(chat_home_join(&h, "big", i << 20, i % 2, nick));
    }
    struct chat_home_room *r = chat_home_find(&h, "big");
    assert_int_equal(r->members, N);
    assert_int_equal(r->per_worker[0] + r->per_worker[1], N);
    /* remove the odd ones, then every remaining one must still be found
     * (backward-shift deletion keeps probe chains whole) */
    for (uint64_t i = 1; i <= N; i += 2)
        assert_int_equal(chat_home_leave(&h, &r, i << 20), 1);
    for (uint64_t i = 2; i <= N; i += 2)
        assert_non_null(chat_home_member(r, i << 20));
    for (uint64_t i = 1; i <= N; i += 2)
        assert_null(chat_home_member(r, i << 20));
    assert_int_equal(r->per_worker[1], 0);
    chat_home_fini(&h);
}

static void test_local_lists(void **state)
{
    (void)state;
    struct chat_local l = {0};
    struct chat_link a, b, c;
    struct chat_local_room *r = chat_local_add(&l, "lobby", &a);
    assert_ptr_equal(chat_local_add(&l, "lobby", &b), r);
    assert_ptr_equal(chat_local_add(&l, "lobby", &c), r);
    /* in join order */
    assert_ptr_equal(r->head.next, &a);
    assert_ptr_equal(a.next, &b);
    assert_ptr_equal(b.next, &c);
    chat_local_remove(&l, r, &b);
    assert_ptr_equal(a.next, &c);
    assert_int_equal(r->members, 2);
    chat_local_remove(&l, r, &a);
    chat_local_remove(&l, r, &c);
    assert_null(chat_local_find(&l, "lobby"));
    chat_local_fini(&l);
}

static void test_home_spreads_rooms(void **state)
{
    (void)state;
    unsigned count[4] = {0};
    for (int i = 0; i < 1000; i++) {
        char room[16];
        snprintf(room, sizeof room, "room%d", i);
        unsigned h = chat_home_of(room, 4);
        assert_true(h < 4);
        assert_int_equal(chat_home_of(room, 4), h); /* stable */
        count[h]++;
    }
    for (int i = 0; i < 4; i++)
        assert_in_range(count[i], 150, 350);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_home_join_leave),
        cmocka_unit_test(test_many_members),
        cmocka_unit_test(test_local_lists),
        cmocka_unit_test(test_home_spreads_rooms),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
