/* A connection's output queue: a list of segments, each either bytes the
 * queue owns (small writes are copied and packed together) or a reference
 * to a shared buffer (pc_sbuf). Sent with writev, at most PC_OUTQ_IOV
 * segments per system call. Owner: the connection's worker. */
#ifndef PC_WORKERS_OUTQ_H
#define PC_WORKERS_OUTQ_H

#include <stddef.h>
#include <stdint.h>

#include "percore/percore.h"

#define PC_OUTQ_IOV 64        /* iovecs per writev; below IOV_MAX (1024) */
#define PC_OUTQ_CHUNK 4096    /* owned chunk for small writes: a jemalloc small class */

struct pc_outseg {
    struct pc_outseg *next;
    struct pc_sbuf *shared; /* NULL: the bytes are in data[] */
    uint32_t off;           /* first byte not yet sent */
    uint32_t len;           /* end of the bytes */
    uint32_t cap;           /* size of data[] */
    char data[];
};

struct pc_outq {
    struct pc_outseg *head, *tail;
    size_t bytes; /* queued, not yet sent */
};

/* Copies len bytes to the end of the queue. 0 or -ENOMEM. */
int pc_outq_copy(struct pc_outq *q, const void *data, size_t len);
/* Appends a reference to b (takes one of its own). 0 or -ENOMEM. */
int pc_outq_share(struct pc_outq *q, struct pc_sbuf *b);
/* Writes as much as the socket takes. Returns bytes written (0 if the
 * queue is empty or the socket is full) or -errno on a socket error. */
long pc_outq_flush(struct pc_outq *q, int fd);
/* Drops everything queued. */
void pc_outq_clear(struct pc_outq *q);

#endif
