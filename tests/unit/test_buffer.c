/* The output queue: copies, shared buffers, partial writes, writev. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "workers/outq.h"

static void socket_pair(int fds[2])
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
    fcntl(fds[0], F_SETFL, O_NONBLOCK);
}

static size_t drain(int fd, char *buf, size_t size)
{
    size_t got = 0;
    ssize_t n;
    fcntl(fd, F_SETFL, O_NONBLOCK);
    while (got < size && (n = read(fd, buf + got, size - got)) > 0)
        got += (size_t)n;
    return got;
}

static void test_small_writes_pack_into_one_segment(void **state)
{
    struct pc_outq q = {0};
    for (int i = 0; i < 100; i++)
        assert_int_equal(pc_outq_copy(&q, "abcd", 4), 0);
    assert_int_equal(q.bytes, 400);
    assert_ptr_equal(q.head, q.tail);
    pc_outq_clear(&q);
    assert_null(q.head);
    assert_int_equal(q.bytes, 0);
}

static void test_flush_sends_copies_and_shared_in_order(void **state)
{
    int fds[2];
    socket_pair(fds);
    struct pc_outq q = {0};
    struct pc_sbuf *b = pc_sbuf_new(5);
    memcpy(b->data, "WORLD", 5);
    pc_outq_copy(&q, "hello ", 6);
    pc_outq_share(&q, b);
    assert_int_equal(b->refs, 2);
    pc_outq_copy(&q, "!", 1);
    assert_int_equal(pc_outq_flush(&q, fds[0]), 12);
    assert_int_equal(q.bytes, 0);
    assert_int_equal(b->refs, 1); /* the queue dropped its reference */
    char buf[32];
    assert_int_equal(drain(fds[1], buf, sizeof buf), 12);
    assert_memory_equal(buf, "hello WORLD!", 12);
    pc_sbuf_unref(b);
    close(fds[0]);
    close(fds[1]);
}

static void test_partial_write_keeps_the_rest(void **state)
{
    int fds[2];
    socket_pair(fds);
    int small = 4096;
    setsockopt(fds[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    struct pc_outq q = {0};
    static char big[1 << 20];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (char)(i * 7);
    pc_outq_copy(&q, big, sizeof big);
    long sent = pc_outq_flush(&q, fds[0]);
    assert_true(sent > 0 && sent < (long)sizeof big);
    assert_int_equal(q.bytes, sizeof big - (size_t)sent);
    static char got[1 << 20];
    size_t n = 0;
    while (q.bytes) {
        n += drain(fds[1], got + n, sizeof got - n);
        assert_true(pc_outq_flush(&q, fds[0]) >= 0);
    }
    n += drain(fds[1], got + n, sizeof got - n);
    assert_int_equal(n, sizeof big);
    assert_memory_equal(got, big, sizeof big);
    close(fds[0]);
    close(fds[1]);
}

static void test_many_segments_exceed_one_writev(void **state)
{
    int fds[2];
    socket_pair(fds);
    struct pc_outq q = {0};
    struct pc_sbuf *b = pc_sbuf_new(3);
    memcpy(b->data, "xyz", 3);
    for (int i = 0; i < PC_OUTQ_IOV * 3; i++)
        pc_outq_share(&q, b);
    assert_int_equal(b->refs, 1 + PC_OUTQ_IOV * 3);
    assert_int_equal(pc_outq_flush(&q, fds[0]), 3 * PC_OUTQ_IOV * 3);
    assert_int_equal(b->refs, 1);
    pc_sbuf_unref(b);
    close(fds[0]);
    close(fds[1]);
}

/* Thousands of distinct shared buffers and copies, through a socket that
 * takes a little at a time: every partial write lands inside a reference
 * block, across blocks and across copies, and the stream stays whole. */
static void test_partial_writes_through_reference_blocks(void **state)
{
    int fds[2];
    socket_pair(fds);
    int small = 4096;
    setsockopt(fds[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    enum { N = 3000 };
    static struct pc_sbuf *bufs[N];
    static char expect[N * 40], got[N * 40];
    size_t elen = 0, glen = 0;
    struct pc_outq q = {0};
    for (int i = 0; i < N; i++) {
        char text[40];
        int n = snprintf(text, sizeof text, "<%d:%.*s>", i, i % 17,
                         "abcdefghijklmnopq");
        if (i % 7 == 0) { /* a copy between references */
            assert_int_equal(pc_outq_copy(&q, text, (size_t)n), 0);
            bufs[i] = NULL;
        } else {
            bufs[i] = pc_sbuf_new((size_t)n);
            memcpy(bufs[i]->data, text, (size_t)n);
            assert_int_equal(pc_outq_share(&q, bufs[i]), 0);
            assert_int_equal(bufs[i]->refs, 2);
        }
        memcpy(expect + elen, text, (size_t)n);
        elen += (size_t)n;
    }
    assert_int_equal(q.bytes, elen);
    while (q.bytes) {
        assert_true(pc_outq_flush(&q, fds[0]) >= 0);
        glen += drain(fds[1], got + glen, sizeof got - glen);
    }
    glen += drain(fds[1], got + glen, sizeof got - glen);
    assert_int_equal(glen, elen);
    assert_memory_equal(got, expect, elen);
    assert_null(q.head);
    for (int i = 0; i < N; i++)
        if (bufs[i]) {
            assert_int_equal(bufs[i]->refs, 1);
            pc_sbuf_unref(bufs[i]);
        }
    close(fds[0]);
    close(fds[1]);
}

static void test_clear_drops_every_reference(void **state)
{
    struct pc_outq q = {0};
    struct pc_sbuf *b = pc_sbuf_new(1);
    b->data[0] = 'x';
    for (int i = 0; i < 1000; i++)
        pc_outq_share(&q, b);
    assert_int_equal(b->refs, 1001);
    pc_outq_clear(&q);
    assert_int_equal(b->refs, 1);
    pc_sbuf_unref(b);
}

static void test_flush_reports_a_broken_socket(void **state)
{
    int fds[2];
    socket_pair(fds);
    close(fds[1]);
    struct pc_outq q = {0};
    pc_outq_copy(&q, "x", 1);
    assert_int_equal(pc_outq_flush(&q, fds[0]), -EPIPE);
    pc_outq_clear(&q);
    close(fds[0]);
}

/* A cut keeps the unit a partial write began and drops every later one:
 * the peer's stream ends on a unit boundary. (off and part are set by
 * hand where a partial write would have left them.) */
static void test_cut_finishes_the_copied_unit_in_flight(void **state)
{
    int fds[2];
    socket_pair(fds);
    struct pc_outq q = {0};
    pc_outq_copy(&q, "line1\n", 6);
    pc_outq_copy(&q, "line2\n", 6);
    pc_outq_copy(&q, "line3\n", 6);
    q.head->off = 8, q.bytes -= 8; /* "line1\nli" has left */
    pc_outq_cut(&q);
    assert_int_equal(q.bytes, 4);
    pc_outq_copy(&q, "bye\n", 4); /* a goodbye after the cut */
    assert_int_equal(pc_outq_flush(&q, fds[0]), 8);
    char buf[32];
    assert_int_equal(drain(fds[1], buf, sizeof buf), 8);
    assert_memory_equal(buf, "ne2\nbye\n", 8);
    close(fds[0]);
    close(fds[1]);
}

static void test_cut_on_a_boundary_drops_everything_left(void **state)
{
    struct pc_outq q = {0};
    pc_outq_copy(&q, "line1\n", 6);
    pc_outq_copy(&q, "line2\n", 6);
    pc_outq_cut(&q); /* nothing has left */
    assert_int_equal(q.bytes, 0);
    assert_null(q.head);
    pc_outq_copy(&q, "line1\n", 6);
    pc_outq_copy(&q, "line2\n", 6);
    q.head->off = 6, q.bytes -= 6; /* exactly line1 has left */
    pc_outq_cut(&q);
    assert_int_equal(q.bytes, 0);
    assert_null(q.head);
}

static void test_cut_finishes_the_shared_unit_in_flight(void **state)
{
    struct pc_outq q = {0};
    struct pc_sbuf *b[3];
    for (int i = 0; i < 3; i++) {
        b[i] = pc_sbuf_new(10);
        memset(b[i]->data, 'a' + i, 10);
        pc_outq_share(&q, b[i]);
    }
    pc_outq_copy(&q, "tail", 4);
    q.head->part = 4, q.bytes -= 4; /* 4 bytes of b[0] have left */
    pc_outq_cut(&q);
    assert_int_equal(q.bytes, 6);
    assert_int_equal(b[0]->refs, 2);
    assert_int_equal(b[1]->refs, 1); /* dropped with the rest */
    assert_int_equal(b[2]->refs, 1);
    pc_outq_clear(&q);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(b[i]->refs, 1);
        pc_sbuf_unref(b[i]);
    }
}

static void test_unit_ends_survive_a_full_chunk(void **state)
{
    /* Thousands of small units fill several chunks; a cut in the middle
     * of the first still finds where the unit in flight ends. */
    struct pc_outq q = {0};
    char unit[7];
    for (int i = 0; i < 3000; i++) {
        snprintf(unit, sizeof unit, "%05d\n", i);
        assert_int_equal(pc_outq_copy(&q, unit, 6), 0);
    }
    assert_ptr_not_equal(q.head, q.tail);
    q.head->off = 6 * 100 + 2, q.bytes -= 6 * 100 + 2;
    pc_outq_cut(&q);
    assert_int_equal(q.bytes, 4);
    assert_memory_equal(q.head->data + q.head->off, "100\n", 4);
    pc_outq_clear(&q);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_small_writes_pack_into_one_segment),
        cmocka_unit_test(test_flush_sends_copies_and_shared_in_order),
        cmocka_unit_test(test_partial_write_keeps_the_rest),
        cmocka_unit_test(test_many_segments_exceed_one_writev),
        cmocka_unit_test(test_partial_writes_through_reference_blocks),
        cmocka_unit_test(test_clear_drops_every_reference),
        cmocka_unit_test(test_flush_reports_a_broken_socket),
        cmocka_unit_test(test_cut_finishes_the_copied_unit_in_flight),
        cmocka_unit_test(test_cut_on_a_boundary_drops_everything_left),
        cmocka_unit_test(test_cut_finishes_the_shared_unit_in_flight),
        cmocka_unit_test(test_unit_ends_survive_a_full_chunk),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
