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

static void idle_unlink(struct pc_conn *c)
{
    struct pc_service *s = c->svc;
    if (c->prev)
        c->prev->next = c->next;
    else if (s->idle_head == c)
        s->idle_head = c->next;
    else
        return; /* not linked */
    if (c->next)
        c->next->prev = c->prev;
    else
        s->idle_tail = c->prev;
    c->prev = c->next = NULL;
}

static void idle_append(struct pc_conn *c)
{
    struct pc_service *s = c->svc;
    c->next = NULL;
    c->prev = s->idle_tail;
    if (s->idle_tail)
        s->idle_tail->next = c;
    else
        s->idle_head = c;
    s->idle_tail = c;
}

/* Activity moves a connection to the tail, so each list stays ordered by
 * last activity and the idle timer only ever looks at heads. */
void pc_conn_touch(struct pc_conn *c)
{
    c->last_active = ev_now(CONN_LOOP(c));
    if (c->svc->idle_tail != c && !(c->flags & PC_CONN_DEAD)) {
        idle_unlink(c);
        idle_append(c);
    }
}

void pc_conn_set_events(struct pc_conn *c)
{
    int want = 0;
    if (c->flags & PC_CONN_DEAD)
        return;
    /* A cut connection reads on, to discard: see lingering_read. */
    if (!(c->flags & (PC_CONN_FULL | PC_CONN_HELD | PC_CONN_CLOSING)) ||
        (c->flags & PC_CONN_CUT))
        want |= EV_READ;
    /* A pending connection is flushed before the loop blocks anyway; ask
     * for writability only once the socket has refused bytes. */
    if (c->out.bytes && ((c->flags & PC_CONN_BLOCKED) ||
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
    idle_unlink(c);
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
    if (s->proto->on_close)
        s->proto->on_close(c, why);
    /* Input that came after the module stopped reading would turn the
     * close into a reset, losing what the peer has not read yet. */
    if (why != PC_CLOSE_ERROR)
        for (int i = 0; i < 4 && read(c->io.fd, w->scratch,
                                      w->scratch_size) > 0; i++)
            ;
    close(c->io.fd);
    size_t before = c->out.bytes;
    pc_outq_clear(&c->out);
    pc_conn_account_output(c, before);
    free(c->in);
    PC_STAT_ADD(w, connections, -1);
    PC_LSTAT_ADD(s, closed[why], 1);
    pc_server_release(w->srv, s->index);
    free(c);
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

static void deliver(struct pc_conn *c, const char *data, size_t len)
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
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK &&
                   errno != EINTR))
        pc_conn_kill(c, c->reason);
}

static void conn_read(struct pc_conn *c)
{
    struct pc_worker *w = c->svc->w;
    ssize_t n = read(c->io.fd, w->scratch, w->scratch_size);
    if (n > 0) {
        PC_LSTAT_ADD(c->svc, bytes_in, (uint64_t)n);
        pc_conn_touch(c);
        deliver(c, w->scratch, (size_t)n);
    } else if (n == 0) {
        /* The peer will send no more but may still read: send what is
         * queued (an echo of its last bytes), then close. */
        c->flags |= PC_CONN_CLOSING;
        c->reason = PC_CLOSE_PEER;
        pc_conn_mark_pending(c);
        pc_conn_set_events(c);
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

/* ---- accepting ------------------------------------------------------- */

static void io_cb(struct ev_loop *loop, ev_io *io, int revents)
{
    (void)loop;
    struct pc_conn *c = (struct pc_conn *)io;
    if (revents & EV_WRITE) {
        c->flags &= (uint16_t)~PC_CONN_BLOCKED;
        pc_conn_flush_now(c);
    }
    if ((revents & EV_READ) && (c->flags & PC_CONN_CUT))
        lingering_read(c);
    else if ((revents & EV_READ) && !input_stopped(c) &&
             !(c->flags & PC_CONN_FULL))
        conn_read(c);
}

static void refuse(struct pc_service *s, int fd)
{
    const char *text = s->proto->refuse_text;
    if (text) {
        ssize_t r = send(fd, text, strlen(text), MSG_DONTWAIT | MSG_NOSIGNAL);
        (void)r;
    }
    close(fd);
    PC_LSTAT_ADD(s, refused, 1);
}

void pc_conn_adopt(struct pc_service *s, int fd)
{
    struct pc_worker *w = s->w;
    if (w->draining || !pc_server_admit(w->srv, w, s->index)) {
        refuse(s, fd);
        return;
    }
    struct pc_conn *c = calloc(1, sizeof *c + s->proto->conn_size);
    if (!c) {
        pc_log(PC_LOG_WARN, "out of memory for a new connection on %s",
               s->cfg->name);
        pc_server_release(w->srv, s->index);
        refuse(s, fd);
        return;
    }
    int one = 1;
    /* Fails harmlessly (EOPNOTSUPP) on Unix sockets. */
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    /* Fixed kernel buffers bound the bytes a slow reader can hold in the
     * kernel (they also switch autotuning off: leave 0 unless needed). */
    int size;
    if (s->cfg->sndbuf > 0 && (size = (int)s->cfg->sndbuf))
        (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
    if (s->cfg->rcvbuf > 0 && (size = (int)s->cfg->rcvbuf))
        (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
    ev_io_init(&c->io, io_cb, fd, EV_READ);
    c->svc = s;
    c->id = ((uint64_t)w->id << 48) | ++w->next_conn_id;
    c->last_active = ev_now(w->loop);
    idle_append(c);
    /* Re-arm when this listener's timeout is due before the timer. */
    if (s->cfg->idle_timeout > 0 &&
        (!ev_is_active(&w->idle_timer) ||
         ev_timer_remaining(w->loop, &w->idle_timer) > s->cfg->idle_timeout)) {
        ev_timer_stop(w->loop, &w->idle_timer);
        ev_timer_set(&w->idle_timer, s->cfg->idle_timeout, 0.);
        ev_timer_start(w->loop, &w->idle_timer);
    }
    ev_io_start(w->loop, &c->io);
    PC_LSTAT_ADD(s, accepted, 1);
    PC_STAT_ADD(w, connections, 1);
    if (s->proto->on_open)
        s->proto->on_open(c);
}

/* ---- timeouts and shutdown ------------------------------------------- */

void pc_conn_expire_idle(struct pc_worker *w)
{
    ev_tstamp now = ev_now(w->loop), next = 0;
    for (unsigned i = 0; i < w->nsvcs; i++) {
        struct pc_service *s = &w->svcs[i];
        double timeout = s->cfg->idle_timeout;
        if (timeout <= 0)
            continue;
        while (s->idle_head && s->idle_head->last_active + timeout <= now)
            pc_conn_kill(s->idle_head, PC_CLOSE_IDLE);
        if (s->idle_head) {
            ev_tstamp due = s->idle_head->last_active + timeout;
            if (next == 0 || due < next)
                next = due;
        }
    }
    if (next > 0) {
        ev_timer_set(&w->idle_timer, next - now, 0.);
        ev_timer_start(w->loop, &w->idle_timer);
    }
}

void pc_conn_close_all(struct pc_worker *w, enum pc_close_reason why)
{
    for (unsigned i = 0; i < w->nsvcs; i++)
        while (w->svcs[i].idle_head)
            pc_conn_kill(w->svcs[i].idle_head, why);
}

/* ---- accessors ------------------------------------------------------- */

void *pc_conn_state(struct pc_conn *c)
{
    return c->state;
}

void *pc_conn_wstate(struct pc_conn *c)
{
    return c->svc->wstate;
}

struct pc_worker *pc_conn_worker(struct pc_conn *c)
{
    return c->svc->w;
}

uint64_t pc_conn_id(const struct pc_conn *c)
{
    return c->id;
}

const char *pc_conn_peer(struct pc_conn *c, char *buf, size_t size)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    char host[INET6_ADDRSTRLEN] = "?";
    if (getpeername(c->io.fd, (struct sockaddr *)&ss, &len) < 0) {
        snprintf(buf, size, "?");
        /* NOLINTNEXTLINE(*core.UndefinedBinaryOperatorResult): ss is set */
    } else if (ss.ss_family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
        snprintf(buf, size, "%s:%u", host, ntohs(a->sin_port));
    } else if (ss.ss_family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
        snprintf(buf, size, "[%s]:%u", host, ntohs(a->sin6_port));
    } else {
        snprintf(buf, size, "unix");
    }
    return buf;
}
