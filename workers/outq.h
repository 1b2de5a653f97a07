/* A connection's output queue: a list of segments, each either bytes the
 * queue owns (small writes are copied and packed together) or a block of
 * references to shared buffers (pc_sbuf), one per queued message. Sent
 * with writev, at most PC_OUTQ_IOV buffers per system call. Owner: the
 * connection's worker. */
#ifndef PC_WORKERS_OUTQ_H
#define PC_WORKERS_OUTQ_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "percore/percore.h"

#define PC_OUTQ_IOV 256       /* iovecs per writev; below IOV_MAX (1024) */
#define PC_OUTQ_CHUNK 4096    /* owned chunk for small writes: a jemalloc small class */
#define PC_OUTQ_REFS_MIN 8    /* first reference block of a queue */
#define PC_OUTQ_REFS_MAX 512  /* references per block, at most (4 KiB) */

/* A fan-out queues one reference per member per message, so references
 * are kept in blocks, not one allocation each: no malloc per delivery,
 * and writev's iovecs are built from consecutive memory. */
/* Each write is a unit (a line, a frame): a cut (pc_outq_cut) finishes
 * the unit whose first bytes have left and drops whole units only. A
 * reference is one unit; a segment of owned bytes keeps where each of its
 * units ends in a small array at the end of data[], growing down. */
struct pc_outseg {
    struct pc_outseg *next;
    uint32_t refs;  /* 0: owned bytes in data[]; else capacity in refs */
    uint32_t off;   /* bytes: first not sent; refs: first reference left */
    uint32_t len;   /* bytes: end of the bytes; refs: references stored */
    uint32_t cap;   /* bytes: size of data[], unit ends included */
    uint32_t part;  /* refs: bytes of the first reference already sent;
                       bytes: units stored (ends at the end of data[]) */
    _Alignas(void *) char data[];
};

struct pc_outq {
    struct pc_outseg *head, *tail;
    size_t bytes; /* queued, not yet sent */
};

/* Where this thread counts the bytes of its live shared buffers: a
 * worker points it at its own gauge; elsewhere (tests) it stays NULL.
 * Shared buffers never leave their thread, so the count is exact. */
extern _Thread_local atomic_uint_fast64_t *pc_sbuf_gauge;

/* Copies len bytes to the end of the queue. 0 or -ENOMEM. */
int pc_outq_copy(struct pc_outq *q, const void *data, size_t len);
/* Appends a reference to b (takes one of its own). 0 or -ENOMEM. */
int pc_outq_share(struct pc_outq *q, struct pc_sbuf *b);
/* Writes as much as the socket takes. Returns bytes written (0 if the
 * queue is empty or the socket is full) or -errno on a socket error. */
long pc_outq_flush(struct pc_outq *q, int fd);
/* Up to max iovecs of what is queued, from the head on, without taking
 * it off the queue; *want gets their total. Returns the count. */
int pc_outq_iov(const struct pc_outq *q, struct iovec *iov, int max,
                size_t *want);
/* Takes the first `done` bytes off the queue (they were sent, or sealed
 * into TLS records): they count as having left, for pc_outq_cut. */
void pc_outq_consume(struct pc_outq *q, size_t done);
/* Drops every unit that has not begun to leave: what stays is the rest
 * of a unit cut in two by a partial write, if any. */
void pc_outq_cut(struct pc_outq *q);
/* Drops everything queued. */
void pc_outq_clear(struct pc_outq *q);

#endif
