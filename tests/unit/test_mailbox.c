/* The MPSC mailbox under concurrent producers: nothing lost, nothing
 * duplicated, each producer's mail in the order it was pushed. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>

#include <cmocka.h>

#include "workers/mailbox.h"

#define PRODUCERS 8
#define PER_PRODUCER 50000

static struct pc_mailbox box;
static atomic_uint rings;

static void *producer(void *arg)
{
    unsigned id = (unsigned)(uintptr_t)arg;
    for (unsigned i = 0; i < PER_PRODUCER; i++) {
        struct pc_mail *m = calloc(1, sizeof *m);
        m->fd = (int)id;
        m->listener = i;
        if (pc_mailbox_push(&box, m))
            atomic_fetch_add(&rings, 1);
    }
    return NULL;
}

static void test_many_producers_fifo_per_producer(void **state)
{
    pc_mailbox_init(&box);
    pthread_t t[PRODUCERS];
    for (unsigned i = 0; i < PRODUCERS; i++)
        pthread_create(&t[i], NULL, producer, (void *)(uintptr_t)i);
    unsigned next[PRODUCERS] = {0}, total = 0, takes = 0;
    while (total < PRODUCERS * PER_PRODUCER) {
        struct pc_mail *m = pc_mailbox_take(&box);
        if (m)
            takes++;
        while (m) {
            struct pc_mail *n = m->next;
            assert_true(m->fd >= 0 && m->fd < PRODUCERS);
            assert_int_equal(m->listener, next[m->fd]);
            next[m->fd]++;
            total++;
            free(m);
            m = n;
        }
    }
    for (unsigned i = 0; i < PRODUCERS; i++)
        pthread_join(t[i], NULL);
    assert_null(pc_mailbox_take(&box));
    for (unsigned i = 0; i < PRODUCERS; i++)
        assert_int_equal(next[i], PER_PRODUCER);
    /* A ring is owed only when the box was empty: at most one per take,
     * plus the very first push. */
    assert_true(atomic_load(&rings) <= takes + 1);
}

static void test_push_reports_empty_only_first(void **state)
{
    struct pc_mailbox mb;
    struct pc_mail a = {0}, b = {0};
    pc_mailbox_init(&mb);
    assert_null(pc_mailbox_take(&mb));
    assert_true(pc_mailbox_push(&mb, &a));
    assert_false(pc_mailbox_push(&mb, &b));
    struct pc_mail *m = pc_mailbox_take(&mb);
    assert_ptr_equal(m, &a);
    assert_ptr_equal(m->next, &b);
    assert_null(b.next);
    assert_true(pc_mailbox_push(&mb, &a));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_push_reports_empty_only_first),
        cmocka_unit_test(test_many_producers_fifo_per_producer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
