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

int pc_outq_copy(struct pc_outq *q, const void *data, size_t len)
{
    struct pc_outseg *t = q->tail;
    if (t && !t->shared && t->cap - t->len >= len) {
        memcpy(t->data + t->len, data, len);
        t->len += (uint32_t)len;
        q->bytes += len;
        return 0;
    }
    /* Large writes get a segment of their own size; small ones share a
     * chunk so a burst of tiny writes leaves as one iovec. */
    size_t cap = len > PC_OUTQ_CHUNK - sizeof *t ? len
                                                 : PC_OUTQ_CHUNK - sizeof *t;
    if (cap > UINT32_MAX)
        return -ENOMEM;
    struct pc_outseg *s = malloc(sizeof *s + cap);
    if (!s)
        return -ENOMEM;
    s->shared = NULL;
    s->off = 0;
    s->len = (uint32_t)len;
    s->cap = (uint32_t)cap;
    memcpy(s->data, data, len);
    seg_link(q, s);
    q->bytes += len;
    return 0;
}

int pc_outq_share(struct pc_outq *q, struct pc_sbuf *b)
{
    if (b->len == 0)
        return 0;
    struct pc_outseg *s = malloc(sizeof *s);
    if (!s)
        return -ENOMEM;
    pc_sbuf_ref(b);
    s->shared = b;
    s->off = 0;
    s->len = b->len;
    s->cap = 0;
    seg_link(q, s);
    q->bytes += b->len;
    return 0;
}

static void seg_free(struct pc_outseg *s)
{
    if (s->shared)
        pc_sbuf_unref(s->shared);
    free(s);
}

long pc_outq_flush(struct pc_outq *q, int fd)
{
    long total = 0;
    while (q->head) {
        struct iovec iov[PC_OUTQ_IOV];
        int n = 0;
        size_t want = 0;
        for (struct pc_outseg *s = q->head; s && n < PC_OUTQ_IOV;
             s = s->next, n++) {
            const char *base = s->shared ? s->shared->data : s->data;
            iov[n].iov_base = (void *)(base + s->off);
            iov[n].iov_len = s->len - s->off;
            want += iov[n].iov_len;
        }
        ssize_t w = writev(fd, iov, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return total;
            return -errno;
        }
        total += w;
        q->bytes -= (size_t)w;
        size_t left = (size_t)w;
        while (left) {
            struct pc_outseg *s = q->head;
            size_t avail = s->len - s->off;
            if (left < avail) {
                s->off += (uint32_t)left;
                break;
            }
            left -= avail;
            q->head = s->next;
            if (!q->head)
                q->tail = NULL;
            seg_free(s);
        }
        if ((size_t)w < want)
            return total; /* the socket buffer is full */
    }
    return total;
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

struct pc_sbuf *pc_sbuf_new(size_t len)
{
    if (len > UINT32_MAX)
        return NULL;
    struct pc_sbuf *b = malloc(sizeof *b + len);
    if (!b)
        return NULL;
    b->refs = 1;
    b->len = (uint32_t)len;
    return b;
}

void pc_sbuf_ref(struct pc_sbuf *b)
{
    b->refs++;
}

void pc_sbuf_unref(struct pc_sbuf *b)
{
    if (--b->refs == 0)
        free(b);
}
