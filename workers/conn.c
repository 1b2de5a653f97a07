/* Connections: reading into the worker's scratch buffer, keeping only what
 * the module left unconsumed, queueing output, back-pressure, closing.
 *
 * Two rules keep this simple:
 *  - Output is never written from inside a module callback. Writes queue
 *    and mark the connection pending; the worker flushes every pending
 *    connection once per loop pass, before it blocks, so a burst of writes
 *    (a chat fan-out, a pipeline of echoes) leaves in one writev.
 *    A listener with flush_delay > 0 holds that flush back for up to the
 *    delay, so output written in the meantime (the next lines of a busy
 *    chat room) shares the write: one timer per listener per worker.
 *  - A connection is never freed from inside a callback either. Closing
 *    marks it dead and pending; the same pass calls on_close and frees it,
 *    so a module can close any connection, even one it is iterating over,
 *    and on_close never runs nested inside another callback. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/log.h"
#include "core/server.h"
#include "workers/conn_state.h"
#include "workers/services.h"
#include "workers/worker.h"

static const char *const reason_names[PC_CLOSE_REASONS] = {
    [PC_CLOSE_PEER] = "peer",
    [PC_CLOSE_ERROR] = "error",
    [PC_CLOSE_MODULE] = "module",
    [PC_CLOSE_IDLE] = "idle",
    [PC_CLOSE_INPUT_LIMIT] = "input_limit",
    [PC_CLOSE_OUTPUT_LIMIT] = "output_limit",
    [PC_CLOSE_SHUTDOWN] = "shutdown",
};

const char *pc_close_reason_name(enum pc_close_reason why)
{
    return (unsigned)why < PC_CLOSE_REASONS ? reason_names[why] : "?";
}

/* ---- bookkeeping ----------------------------------------------------- */

void pc_conn_mark_pending(struct pc_conn *c)
{
    if (c->flags & PC_CONN_PENDING)
        return;
    struct pc_worker *w = c->svc->w;
    if (w->npending == w->pending_cap) {
        /* Both arrays grow together: the pass swaps them. */
        size_t cap = w->pending_cap ? w->pending_cap * 2 : 64;
        struct pc_conn **a = realloc(w->pending, cap * sizeof *a);
        struct pc_conn **b = a ? realloc(w->pending_spare, cap * sizeof *b)
                               : NULL;
        if (a)
            w->pending = a;
        if (!b) {
            /* Losing track of a connection would leave its output unsent
             * or it never freed; a few pointers more cannot be had. */
            pc_log(PC_LOG_ERR, "worker %u: out of memory", w->id);
            abort();
        }
        w->pending_spare = b;
        w->pending_cap = cap;
    }
    c->flags |= PC_CONN_PENDING;
    w->pending[w->npending++] = c;
}

/* The list c is on: its service's handshake list while a TLS handshake
 * runs, its idle list after. */
static struct pc_conn **list_head(struct pc_conn *c, struct pc_conn ***tail)
{
    struct pc_service *s = c->svc;
    bool hs = c->flags & PC_CONN_HANDSHAKE;
    *tail = hs ? &s->hs_tail : &s->idle_tail;
    return hs ? &s->hs_head : &s->idle_head;
}

void pc_conn_list_unlink(struct pc_conn *c)
{
    struct pc_conn **tail, **head = list_head(c, &tail);
    if (c->prev)
        c->prev->next = c->next;
    else if (*head == c)
        *head = c->next;
    else
        return; /* not linked */
    if (c->next)
        c->next->prev = c->prev;
    else
        *tail = c->prev;
    c->prev = c->next = NULL;
    if (c->flags & PC_CONN_HANDSHAKE)
        c->svc->nhandshakes--;
}

void pc_conn_list_append(struct pc_conn *c)
{
    struct pc_conn **tail, **head = list_head(c, &tail);
    c->next = NULL;
    c->prev = *tail;
    if (*tail)
        (*tail)->next = c;
    else
        *head = c;
    *tail = c;
    if (c->flags & PC_CONN_HANDSHAKE)
        c->svc->nhandshakes++;
}

/* Activity moves a connection to the tail, so each list stays ordered by
 * last activity and the idle timer only ever looks at heads. */
void pc_conn_touch(struct pc_conn *c)
{
    /* A handshake's deadline counts from the accept: it is not moved. */
    if (c->flags & PC_CONN_HANDSHAKE)
        return;
    c->last_active = ev_now(CONN_LOOP(c));
    if (c->svc->idle_tail != c && !(c->flags & PC_CONN_DEAD)) {
        pc_conn_list_unlink(c);
        pc_conn_list_append(c);
    }
}

size_t pc_conn_unsent(struct pc_conn *c)
{
    return c->out.bytes + pc_tls_unsent(c);
}

void pc_conn_set_events(struct pc_conn *c)
{
    int want = 0;
    if (c->flags & PC_CONN_DEAD)
        return;
    /* A cut connection reads on, to discard: see lingering_read. */
    if ((!(c->flags & (PC_CONN_FULL | PC_CONN_HELD | PC_CONN_CLOSING)) ||
         (c->flags & PC_CONN_CUT)) && !(c->flags & PC_CONN_PEER_DONE))
        want |= EV_READ;
    /* A pending connection is flushed before the loop blocks anyway; ask
     * for writability only once the socket has refused bytes. */
    if (pc_conn_unsent(c) && ((c->flags & PC_CONN_BLOCKED) ||
                         !(c->flags & (PC_CONN_PENDING | PC_CONN_DELAYED))))
        want |= EV_WRITE;
    int have = ev_is_active(&c->io) ? (c->io.events & (EV_READ | EV_WRITE))
                                    : 0;
    if (want == have)
        return;
    struct ev_loop *loop = CONN_LOOP(c);
    ev_io_stop(loop, &c->io);
    ev_io_set(&c->io, c->io.fd, want);
    if (want)
        ev_io_start(loop, &c->io);
}

/* Keeps the worker's out_queued gauge (and its peak) in step with the
 * connection's queue: called with the queue size before a change. */
void pc_conn_account_output(struct pc_conn *c, size_t before)
{
    struct pc_worker *w = c->svc->w;
    uint64_t total = PC_STAT_GET(w, out_queued) + c->out.bytes - before;
    atomic_store_explicit(&w->stats.out_queued, total, memory_order_relaxed);
    if (total > PC_STAT_GET(w, out_queued_peak))
        atomic_store_explicit(&w->stats.out_queued_peak, total,
                              memory_order_relaxed);
}

void pc_conn_kill(struct pc_conn *c, enum pc_close_reason why)
{
    if (c->flags & PC_CONN_DEAD)
        return;
    c->flags |= PC_CONN_DEAD;
    c->reason = (uint8_t)why;
    ev_io_stop(CONN_LOOP(c), &c->io);
    pc_conn_list_unlink(c);
    pc_conn_mark_pending(c);
}

void pc_conn_abort(struct pc_conn *c, enum pc_close_reason why)
{
    /* A broken socket takes nothing more; any other end is a cut, so the
     * peer's stream still ends on a unit boundary. */
    if (why == PC_CLOSE_ERROR || why == PC_CLOSE_PEER)
        pc_conn_kill(c, why);
    else
        pc_conn_cut(c, why);
}

static void finish(struct pc_conn *c)
{
    struct pc_service *s = c->svc;
    struct pc_worker *w = s->w;
    enum pc_close_reason why = (enum pc_close_reason)c->reason;
    if (c->flags & PC_CONN_CUT)
        pc_conn_cut_list_remove(c);
    else
        pc_conn_undelay(c);
    /* A connection whose handshake never finished was never the
     * module's. */
    if (s->proto->on_close && !(c->flags & PC_CONN_HANDSHAKE))
        s->proto->on_close(c, why);
    /* Input that came after the module stopped reading would turn the
     * close into a reset, losing what the peer has not read yet. */
    if (why != PC_CLOSE_ERROR)
        for (int i = 0; i < 4 && read(c->io.fd, w->scratch,
                                      w->scratch_size) > 0; i++)
            ;
    if (pc_conn_log_on())
        pc_conn_log_close(c, why);
    if (c->flags & PC_CONN_ACCESS)
        pc_conn_access_close(c, why);
    pc_tls_free(c);
    close(c->io.fd);
    size_t before = c->out.bytes;
    pc_outq_clear(&c->out);
    pc_conn_account_output(c, before);
    free(c->in);
    PC_STAT_ADD(w, connections, -1);
    PC_LSTAT_ADD(s, closed[why], 1);
    pc_server_release(w->srv, s->slot);
    free(c);
    pc_service_conn_closed(s); /* may free a retired s: its last use */
    pc_worker_check_drained(w);
}

/* ---- input ----------------------------------------------------------- */

static uint32_t in_len(const struct pc_conn *c)
{
    return c->in ? c->in->len : 0;
}

static int keep_input(struct pc_conn *c, const char *data, size_t len)
{
    size_t have = in_len(c), need = have + len;
    if (need > UINT32_MAX - sizeof *c->in)
        return -ENOMEM;
    if (!c->in || need > c->in->cap) {
        size_t cap = c->in ? c->in->cap : 512 - sizeof *c->in;
        while (cap < need)
            cap = cap * 2 + sizeof *c->in; /* allocations of 2^k bytes */
        struct pc_inbuf *in = realloc(c->in, sizeof *in + cap);
        if (!in)
            return -ENOMEM;
        in->len = (uint32_t)have;
        in->cap = (uint32_t)cap;
        c->in = in;
    }
    memcpy(c->in->data + have, data, len);
    c->in->len = (uint32_t)need;
    return 0;
}

static void drop_input(struct pc_conn *c, size_t used)
{
    if (used >= in_len(c)) {
        free(c->in);
        c->in = NULL;
        return;
    }
    memmove(c->in->data, c->in->data + used, c->in->len - used);
    c->in->len -= (uint32_t)used;
}

static bool input_stopped(const struct pc_conn *c)
{
    return c->flags & (PC_CONN_DEAD | PC_CONN_CLOSING | PC_CONN_HELD);
}

bool pc_conn_reading(const struct pc_conn *c)
{
    return !input_stopped(c) && !(c->flags & PC_CONN_FULL);
}

void pc_conn_reoffer(struct pc_conn *c)
{
    c->flags |= PC_CONN_REOFFER;
    pc_conn_mark_pending(c);
}

static void offer_held(struct pc_conn *c)
{
    size_t have = in_len(c);
    if (!have)
        return;
    size_t used = c->svc->proto->on_data(c, c->in->data, have);
    drop_input(c, used > have ? have : used);
}

static void check_input_limit(struct pc_conn *c)
{
    if (in_len(c) > (uint64_t)c->svc->cfg->max_input) {
        pc_log(PC_LOG_DEBUG, "connection %llu: %u bytes of unconsumed input "
               "exceed max_input", (unsigned long long)c->id, in_len(c));
        pc_conn_kill(c, PC_CLOSE_INPUT_LIMIT);
    }
}

void pc_conn_deliver(struct pc_conn *c, const char *data, size_t len)
{
    if (in_len(c) == 0) {
        size_t used = c->svc->proto->on_data(c, data, len);
        if (used > len)
            used = len;
        if (used < len && !(c->flags & (PC_CONN_DEAD | PC_CONN_CLOSING)) &&
            keep_input(c, data + used, len - used) < 0)
            pc_conn_kill(c, PC_CLOSE_ERROR);
    } else if (keep_input(c, data, len) < 0) {
        pc_conn_kill(c, PC_CLOSE_ERROR);
    } else if (!input_stopped(c)) {
        offer_held(c);
    }
    check_input_limit(c);
}

/* What a cut connection's peer still sends is read and dropped: closing
 * a socket with unread input makes Linux send a reset, which throws away
 * what the peer has not read yet (the last unit, the goodbye). Its EOF,
 * after our FIN (conn_flush), ends the linger. */
static void lingering_read(struct pc_conn *c)
{
    struct pc_worker *w = c->svc->w;
    ssize_t n = read(c->io.fd, w->scratch, w->scratch_size);
    if (n == 0 && !(c->flags & PC_CONN_SHUT)) {
        /* The peer has finished sending but may still read: what is
         * queued goes on, then the close, with no EOF left to wait for. */
        c->flags |= PC_CONN_PEER_DONE;
        pc_conn_mark_pending(c);
        pc_conn_set_events(c);
    } else if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK &&
                          errno != EINTR))
        pc_conn_kill(c, c->reason);
}

void pc_conn_peer_eof(struct pc_conn *c)
{
    /* The peer will send no more but may still read: send what is
     * queued (an echo of its last bytes), then close. */
    c->flags |= PC_CONN_CLOSING;
    c->reason = PC_CLOSE_PEER;
    pc_conn_mark_pending(c);
    pc_conn_set_events(c);
}

static void conn_read(struct pc_conn *c)
{
    struct pc_worker *w = c->svc->w;
    ssize_t n = read(c->io.fd, w->scratch, w->scratch_size);
    if (n > 0) {
        PC_LSTAT_ADD(c->svc, bytes_in, (uint64_t)n);
        pc_conn_count(c, (uint64_t)n, 0);
        pc_conn_touch(c);
        pc_conn_deliver(c, w->scratch, (size_t)n);
    } else if (n == 0) {
        pc_conn_peer_eof(c);
    } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        pc_conn_kill(c, PC_CLOSE_ERROR);
    }
}

void pc_conn_close(struct pc_conn *c)
{
    if (c->flags & (PC_CONN_DEAD | PC_CONN_CLOSING))
        return;
    c->flags |= PC_CONN_CLOSING;
    c->reason = PC_CLOSE_MODULE;
    pc_conn_mark_pending(c);
    pc_conn_set_events(c);
}

void pc_conn_hold_input(struct pc_conn *c)
{
    c->flags |= PC_CONN_HELD;
    pc_conn_set_events(c);
}

void pc_conn_resume_input(struct pc_conn *c)
{
    if (!(c->flags & PC_CONN_HELD))
        return;
    c->flags = (uint16_t)((c->flags & ~PC_CONN_HELD) | PC_CONN_REOFFER);
    pc_conn_mark_pending(c);
    pc_conn_set_events(c);
}

/* ---- the pending pass ------------------------------------------------ */

void pc_conn_run_pending(struct pc_worker *w)
{
    /* Handling one connection can make others pending (on_drain writes,
     * on_close notices): take the list, run it, repeat until empty. */
    while (w->npending) {
        struct pc_conn **list = w->pending;
        size_t n = w->npending;
        w->pending = w->pending_spare;
        w->pending_spare = list;
        w->npending = 0;
        for (size_t i = 0; i < n; i++) {
            struct pc_conn *c = list[i];
            c->flags &= (uint16_t)~PC_CONN_PENDING;
            if (!(c->flags & PC_CONN_DEAD) && (c->flags & PC_CONN_REOFFER)) {
                c->flags &= (uint16_t)~PC_CONN_REOFFER;
                if (in_len(c) && !input_stopped(c)) {
                    offer_held(c);
                    check_input_limit(c);
                }
                /* TLS input may wait inside OpenSSL, where no readable
                 * socket would announce it. */
                if ((c->flags & PC_CONN_TLS) && pc_conn_reading(c))
                    pc_tls_readable(c);
            }
            if (c->flags & PC_CONN_DEAD) {
                if (!(c->flags & PC_CONN_PENDING))
                    finish(c);
            } else if (!(c->flags & PC_CONN_PENDING)) {
                if (c->svc->cfg->flush_delay > 0 && c->out.bytes &&
                    !(c->flags &
                      (PC_CONN_CLOSING | PC_CONN_BLOCKED | PC_CONN_FULL)))
                    pc_conn_delay_flush(c);
                else
                    pc_conn_flush_when_writable(c);
            }
        }
    }
}

/* ---- events ---------------------------------------------------------- */

void pc_conn_io_cb(struct ev_loop *loop, ev_io *io, int revents)
{
    (void)loop;
    struct pc_conn *c = (struct pc_conn *)io;
    if (revents & EV_WRITE) {
        c->flags &= (uint16_t)~PC_CONN_BLOCKED;
        if (c->flags & PC_CONN_HANDSHAKE) /* a kTLS handshake's writes */
            pc_tls_readable(c);
        pc_conn_flush_now(c);
    }
    if ((revents & EV_READ) && (c->flags & PC_CONN_CUT))
        lingering_read(c);
    else if ((revents & EV_READ) && !input_stopped(c) &&
             !(c->flags & PC_CONN_FULL)) {
        if (c->flags & PC_CONN_TLS)
            pc_tls_readable(c);
        else
            conn_read(c);
    }
}
