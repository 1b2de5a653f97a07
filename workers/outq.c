#include "workers/outq.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

static void seg_link(struct pc_outq *q, struct pc_outseg *s)
{
    s->next = NULL;
    if (q->tail)
        q->tail->next = s;
    else
        q->head = s;
    q->tail = s;
}

static struct pc_sbuf **seg_refs(struct pc_outseg *s)
{
    return (struct pc_sbuf **)(void *)s->data;
}

/* The unit ends of a segment of owned bytes: ends(s)[-1 - i] is where
 * unit i ends. The array grows down from the end of data[]. */
static uint32_t *unit_ends(struct pc_outseg *s)
{
    return (uint32_t *)(void *)(s->data + s->cap);
}

static void append_unit(struct pc_outseg *s, const void *data, size_t len)
{
    memcpy(s->data + s->len, data, len);
    s->len += (uint32_t)len;
    unit_ends(s)[-1 - (int64_t)s->part++] = s->len;
}

int pc_outq_copy(struct pc_outq *q, const void *data, size_t len)
{
    const size_t end = sizeof(uint32_t);
    struct pc_outseg *t = q->tail;
    if (t && !t->refs &&
        t->cap - t->len >= len + (size_t)(t->part + 1) * end) {
        append_unit(t, data, len);
        q->bytes += len;
        return 0;
    }
    /* Large writes get a segment of their own size; small ones share a
     * chunk so a burst of tiny writes leaves as one iovec. The size stays
     * a multiple of 4, for the unit ends. */
    size_t cap = PC_OUTQ_CHUNK - sizeof *t;
    if (len + end > cap)
        cap = (len + 2 * end - 1) / end * end;
    if (cap > UINT32_MAX)
        return -ENOMEM;
    struct pc_outseg *s = malloc(sizeof *s + cap);
    if (!s)
        return -ENOMEM;
    s->refs = 0;
    s->off = 0;
    s->len = 0;
    s->cap = (uint32_t)cap;
    s->part = 0;
    append_unit(s, data, len);
    seg_link(q, s);
    q->bytes += len;
    return 0;
}

int pc_outq_share(struct pc_outq *q, struct pc_sbuf *b)
{
    if (b->len == 0)
        return 0;
    struct pc_outseg *t = q->tail;
    if (!t || !t->refs || t->len == t->refs) {
        /* Blocks grow while a queue keeps filling them (a busy member),
         * and stay small for one that drains each pass. */
        uint32_t n = t && t->refs ? t->refs * 2 : PC_OUTQ_REFS_MIN;
        if (n > PC_OUTQ_REFS_MAX)
            n = PC_OUTQ_REFS_MAX;
        t = malloc(sizeof *t + n * sizeof(struct pc_sbuf *));
        if (!t)
            return -ENOMEM;
        t->refs = n;
        t->off = t->len = t->cap = t->part = 0;
        seg_link(q, t);
    }
    pc_sbuf_ref(b);
    seg_refs(t)[t->len++] = b;
    q->bytes += b->len;
    return 0;
}

static void seg_free(struct pc_outseg *s)
{
    struct pc_sbuf **refs = seg_refs(s);
    for (uint32_t i = s->off; s->refs && i < s->len; i++)
        pc_sbuf_unref(refs[i]);
    free(s);
}

int pc_outq_iov(const struct pc_outq *q, struct iovec *iov, int max,
                size_t *want)
{
    int n = 0;
    for (struct pc_outseg *s = q->head; s && n < max; s = s->next) {
        if (!s->refs) {
            iov[n].iov_base = s->data + s->off;
            iov[n].iov_len = s->len - s->off;
            *want += iov[n++].iov_len;
            continue;
        }
        struct pc_sbuf **refs = seg_refs(s);
        for (uint32_t i = s->off; i < s->len && n < max; i++) {
            uint32_t skip = i == s->off ? s->part : 0;
            iov[n].iov_base = refs[i]->data + skip;
            iov[n].iov_len = refs[i]->len - skip;
            *want += iov[n++].iov_len;
        }
    }
    return n;
}

void pc_outq_consume(struct pc_outq *q, size_t done)
{
    q->bytes -= done;
    while (done) {
        struct pc_outseg *s = q->head;
        /* NOLINTNEXTLINE(*core.NullDereference): done <= the bytes queued */
        if (!s->refs) {
            size_t avail = s->len - s->off;
            if (done < avail) {
                s->off += (uint32_t)done;
                return;
            }
            done -= avail;
        } else {
            struct pc_sbuf **refs = seg_refs(s);
            while (done && s->off < s->len) {
                size_t avail = refs[s->off]->len - s->part;
                if (done < avail) {
                    s->part += (uint32_t)done;
                    return;
                }
                done -= avail;
                pc_sbuf_unref(refs[s->off++]);
                s->part = 0;
            }
            if (s->off < s->len)
                return;
        }
        q->head = s->next;
        if (!q->head)
            q->tail = NULL;
        seg_free(s);
    }
}

long pc_outq_flush(struct pc_outq *q, int fd)
{
    long total = 0;
    while (q->head) {
        struct iovec iov[PC_OUTQ_IOV];
        size_t want = 0;
        int n = pc_outq_iov(q, iov, PC_OUTQ_IOV, &want);
        ssize_t w = writev(fd, iov, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return total;
            return -errno;
        }
        total += w;
        pc_outq_consume(q, (size_t)w);
        if ((size_t)w < want)
            return total; /* the socket buffer is full */
    }
    return total;
}

void pc_outq_cut(struct pc_outq *q)
{
    struct pc_outseg *h = q->head;
    if (!h)
        return;
    bool begun = h->refs ? h->part > 0 : h->off > 0;
    if (!begun) {
        pc_outq_clear(q);
        return;
    }
    /* Keep the head's unit in flight, free what follows it. */
    for (struct pc_outseg *s = h->next, *next; s; s = next) {
        next = s->next;
        seg_free(s);
    }
    h->next = NULL;
    q->tail = h;
    if (h->refs) {
        struct pc_sbuf **refs = seg_refs(h);
        for (uint32_t i = h->off + 1; i < h->len; i++)
            pc_sbuf_unref(refs[i]);
        h->len = h->off + 1;
        q->bytes = refs[h->off]->len - h->part;
        return;
    }
    uint32_t *ends = unit_ends(h), i = 0;
    while (i < h->part && ends[-1 - (int64_t)i] <= h->off)
        i++;
    if (i > 0 && ends[-(int64_t)i] == h->off) { /* a unit ended right there */
        pc_outq_clear(q);
        return;
    }
    /* off < len, so off is inside unit i: it has begun to leave. */
    h->len = ends[-1 - (int64_t)i];
    h->part = i + 1;
    q->bytes = h->len - h->off;
}

void pc_outq_clear(struct pc_outq *q)
{
    while (q->head) {
        struct pc_outseg *s = q->head;
        q->head = s->next;
        seg_free(s);
    }
    q->tail = NULL;
    q->bytes = 0;
}

_Thread_local atomic_uint_fast64_t *pc_sbuf_gauge;

static void gauge_add(int64_t n)
{
    atomic_uint_fast64_t *g = pc_sbuf_gauge;
    if (g) /* one writer: a load and a store, no locked instruction */
        atomic_store_explicit(
            g, atomic_load_explicit(g, memory_order_relaxed) + (uint64_t)n,
            memory_order_relaxed);
}

struct pc_sbuf *pc_sbuf_new(size_t len)
{
    if (len > UINT32_MAX)
        return NULL;
    struct pc_sbuf *b = malloc(sizeof *b + len);
    if (!b)
        return NULL;
    b->refs = 1;
    b->len = (uint32_t)len;
    gauge_add((int64_t)len);
    return b;
}

void pc_sbuf_ref(struct pc_sbuf *b)
{
    b->refs++;
}

void pc_sbuf_unref(struct pc_sbuf *b)
{
    if (--b->refs == 0) {
        gauge_add(-(int64_t)b->len);
        free(b);
    }
}
