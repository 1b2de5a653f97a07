/* Session ticket keys: a new key every period seals new tickets, the one
 * before it still opens (and asks to renew) old ones, anything older or
 * unknown opens nothing, so resumption falls back to a full handshake. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "core/tls_tickets.h"

static void test_rotation(void **state)
{
    (void)state;
    struct pc_ticket_ring r = {.period = 100};
    bool renew = true;
    const struct pc_ticket_key *a = pc_ticket_ring_seal(&r, 1000);
    assert_non_null(a);
    unsigned char name_a[PC_TICKET_NAME];
    memcpy(name_a, a->name, sizeof name_a);
    /* Within the period: the same key seals, and opens without renewal. */
    assert_memory_equal(pc_ticket_ring_seal(&r, 1099)->name, name_a,
                        PC_TICKET_NAME);
    const struct pc_ticket_key *o = pc_ticket_ring_open(&r, name_a, 1099,
                                                        &renew);
    assert_non_null(o);
    assert_false(renew);
    /* A period later a new key seals; the old one opens and renews. */
    const struct pc_ticket_key *b = pc_ticket_ring_seal(&r, 1100);
    assert_memory_not_equal(b->name, name_a, PC_TICKET_NAME);
    unsigned char name_b[PC_TICKET_NAME];
    memcpy(name_b, b->name, sizeof name_b);
    o = pc_ticket_ring_open(&r, name_a, 1150, &renew);
    assert_non_null(o);
    assert_true(renew);
    assert_memory_equal(o->name, name_a, PC_TICKET_NAME);
    /* Two periods after its birth the old key is gone. */
    assert_null(pc_ticket_ring_open(&r, name_a, 1200, &renew));
    /* ... and after the next rotation, it is wiped from the ring. */
    (void)pc_ticket_ring_seal(&r, 1200);
    assert_null(pc_ticket_ring_open(&r, name_a, 1201, &renew));
    o = pc_ticket_ring_open(&r, name_b, 1201, &renew);
    assert_non_null(o);
    assert_true(renew);
}

static void test_unknown_name(void **state)
{
    (void)state;
    struct pc_ticket_ring r = {.period = 10};
    unsigned char name[PC_TICKET_NAME] = {0};
    bool renew = false;
    assert_non_null(pc_ticket_ring_seal(&r, 5));
    assert_null(pc_ticket_ring_open(&r, name, 5, &renew));
}

static void test_keys_are_random(void **state)
{
    (void)state;
    struct pc_ticket_ring r1 = {.period = 10}, r2 = {.period = 10};
    const struct pc_ticket_key *a = pc_ticket_ring_seal(&r1, 0);
    const struct pc_ticket_key *b = pc_ticket_ring_seal(&r2, 0);
    assert_memory_not_equal(a->aes, b->aes, PC_TICKET_KEY);
    assert_memory_not_equal(a->hmac, b->hmac, PC_TICKET_KEY);
    assert_memory_not_equal(a->aes, a->hmac, PC_TICKET_KEY);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rotation),
        cmocka_unit_test(test_unknown_name),
        cmocka_unit_test(test_keys_are_random),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
