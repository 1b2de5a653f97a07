/* echo and idle modes: long-lived connections that send the pattern and
 * check every byte that comes back.
 *
 * echo, closed loop: each connection keeps `pipeline` messages in flight
 * and sends the next as soon as one is back; latency is from the send.
 * echo, open loop (--rate): message k of a connection is due at
 * t0 + k / rate_per_connection whatever the server does, and its latency is
 * measured from that intended time, so a server that stalls is charged for
 * every message it held up (no coordinated omission).
 * idle: connect, optionally exchange one message, hold until the end, then
 * optionally exchange one more to show the connection is still alive.
 * echo --tls: each connection does its TLS handshake while setting up, so
 * the measured window holds only the messages' cost. */
#include <errno.h>
#include <stdlib.h>

#include "bench.h"
#include "tls.h"

enum conn_state { C_NEW, C_CONNECTING, C_HANDSHAKE, C_OPEN, C_DEAD };

struct echo_conn {
    struct pcb_stream s;
    ev_timer pace; /* open loop: next message due */
    struct echo_state *st;
    enum conn_state state;
    bool set_up;                /* counted towards this thread's setup */
    bool settled;               /* owes nothing more (or is dead) */
    unsigned index;             /* global connection number */
    uint64_t queued, completed; /* messages */
    uint64_t quota;             /* messages it may send in all */
    uint64_t t0;                /* open loop: when message 0 was due */
    uint64_t *stamps;           /* closed loop: send times, a ring */
};

struct echo_state {
    struct pcb_thread *t;
    struct echo_conn *conns;
    unsigned next;   /* next connection to start connecting */
    unsigned set_up; /* connections set up or failed */
    unsigned settled;
    double interval; /* open loop: ns between a connection's messages */
};

static void conn_cb(struct ev_loop *loop, ev_io *w, int revents);
static void launch(struct echo_state *st);

static bool open_loop(const struct pcb_config *cfg)
{
    return cfg->mode == PCB_ECHO && cfg->rate > 0;
}

static void mark_set_up(struct echo_conn *c)
{
    if (c->set_up)
        return;
    c->set_up = true;
    struct pcb_thread *t = c->st->t;
    PCB_ADD(t, ready, 1);
    if (++c->st->set_up == t->count)
        pcb_thread_ready(t);
}

static void settle(struct echo_conn *c)
{
    if (c->settled)
        return;
    c->settled = true;
    if (++c->st->settled == c->st->t->count)
        pcb_thread_done(c->st->t);
}

/* After the load stopped, or its quota is used up, a connection is done
 * once every message it sent is back. */
static void check_settled(struct echo_conn *c)
{
    const struct pcb_thread *t = c->st->t;
    if (c->state != C_OPEN || c->completed != c->queued)
        return;
    if (t->phase >= PCB_STOP ||
        (t->phase >= PCB_WARMUP && t->cfg->mode == PCB_ECHO &&
         c->completed >= c->quota))
        settle(c);
}

static void conn_fail(struct echo_conn *c, enum pcb_error e)
{
    struct pcb_thread *t = c->st->t;
    pcb_error(t, e);
    if (c->state == C_CONNECTING || c->state == C_HANDSHAKE)
        t->connecting--;
    if (c->state == C_OPEN)
        PCB_ADD(t, open, (uint64_t)-1);
    if (c->state == C_CONNECTING || c->state == C_HANDSHAKE ||
        c->state == C_OPEN)
        pcb_stream_close(t->loop, &c->s);
    ev_timer_stop(t->loop, &c->pace);
    c->state = C_DEAD;
    mark_set_up(c);
    settle(c);
    launch(c->st);
}

static void queue_messages(struct echo_conn *c, uint64_t n)
{
    const struct pcb_config *cfg = c->st->t->cfg;
    uint64_t now = open_loop(cfg) ? 0 : pcb_now_ns();
    for (uint64_t i = 0; i < n; i++) {
        if (c->stamps)
            c->stamps[c->queued % cfg->pipeline] = now;
        c->queued++;
        c->s.tx_target += cfg->size;
    }
}

static void flush(struct echo_conn *c)
{
    if (pcb_stream_flush(c->st->t->loop, &c->s) < 0)
        conn_fail(c, PCB_ERR_CLOSED);
}

/* Closed loop: keep `pipeline` in flight, within the quota. */
static void refill(struct echo_conn *c)
{
    const struct pcb_thread *t = c->st->t;
    if (t->phase != PCB_WARMUP && t->phase != PCB_MEASURE)
        return;
    uint64_t limit = c->completed + t->cfg->pipeline;
    if (limit > c->quota)
        limit = c->quota;
    if (c->queued < limit)
        queue_messages(c, limit - c->queued);
}

static void pace_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct echo_conn *c = w->data;
    uint64_t now = pcb_now_ns();
    if (now >= c->t0) {
        uint64_t due = (uint64_t)((double)(now - c->t0) / c->st->interval) + 1;
        if (due > c->queued) {
            queue_messages(c, due - c->queued);
            flush(c);
            if (c->state != C_OPEN)
                return;
        }
    }
    uint64_t next = c->t0 + (uint64_t)((double)c->queued * c->st->interval);
    ev_timer_set(w, next > now ? (double)(next - now) / 1e9 : 0, 0);
    ev_timer_start(loop, w);
}

static void on_readable(struct echo_conn *c)
{
    struct pcb_thread *t = c->st->t;
    const struct pcb_config *cfg = t->cfg;
    long n = pcb_stream_read(t, &c->s);
    if (n < 0) {
        conn_fail(c, (enum pcb_error)(-n - 1));
        return;
    }
    if (n == 0)
        return;
    uint64_t now = pcb_now_ns();
    while (c->completed < c->queued &&
           c->s.rx_done >= (c->completed + 1) * cfg->size) {
        uint64_t sent =
            c->stamps
                ? c->stamps[c->completed % cfg->pipeline]
                : c->t0 + (uint64_t)((double)c->completed * c->st->interval);
        if (t->measuring) {
            pcb_hist_record(t->hist, now > sent ? now - sent : 0);
            PCB_ADD(t, messages, 1);
            PCB_ADD(t, bytes, cfg->size);
        }
        c->completed++;
    }
    if (t->phase == PCB_SETUP && c->completed == c->queued)
        mark_set_up(c); /* idle: the first exchange is back */
    if (cfg->mode == PCB_ECHO && !open_loop(cfg)) {
        refill(c);
        flush(c);
        if (c->state != C_OPEN)
            return;
    }
    check_settled(c);
}

/* Connected, and with --tls past the handshake. */
static void on_open(struct echo_conn *c)
{
    struct pcb_thread *t = c->st->t;
    t->connecting--;
    c->state = C_OPEN;
    PCB_ADD(t, opened, 1);
    PCB_ADD(t, open, 1);
    if (t->cfg->mode == PCB_IDLE && t->cfg->size) {
        c->quota = 2;
        queue_messages(c, 1);
    } else {
        mark_set_up(c);
    }
    flush(c);
    launch(c->st);
}

static void handshake_step(struct echo_conn *c)
{
    struct pcb_thread *t = c->st->t;
    int r = pcb_tls_handshake(t->loop, &c->s);
    if (r < 0) {
        conn_fail(c, PCB_ERR_TLS);
    } else if (r == 1) {
        if (!t->tls.protocol[0])
            pcb_tls_describe(&c->s, &t->tls);
        on_open(c);
    }
}

static void on_connected(struct echo_conn *c)
{
    struct pcb_thread *t = c->st->t;
    if (pcb_connect_result(c->s.io.fd) < 0) {
        conn_fail(c, PCB_ERR_CONNECT);
        return;
    }
    if (!t->cfg->tls) {
        on_open(c);
        return;
    }
    if (pcb_tls_begin(t, &c->s, NULL) < 0) {
        conn_fail(c, PCB_ERR_TLS);
        return;
    }
    c->state = C_HANDSHAKE;
    handshake_step(c);
}

static void conn_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct echo_conn *c = w->data;
    if (c->state == C_CONNECTING) {
        on_connected(c);
        return;
    }
    if (c->state == C_HANDSHAKE) {
        handshake_step(c);
        return;
    }
    if (revents & EV_READ) {
        on_readable(c);
        if (c->state != C_OPEN)
            return;
    }
    if (revents & EV_WRITE)
        flush(c);
}

/* Connects in flight stay under --connect-concurrency, so the server's
 * accept queue is not flooded. */
static void launch(struct echo_state *st)
{
    struct pcb_thread *t = st->t;
    while (t->phase == PCB_SETUP && st->next < t->count &&
           t->connecting < t->cfg->connect_concurrency) {
        struct echo_conn *c = &st->conns[st->next++];
        int r = pcb_stream_connect(t, &c->s, conn_cb, c, c->index);
        if (r < 0) {
            pcb_error(t, PCB_ERR_CONNECT);
            c->state = C_DEAD;
            mark_set_up(c);
            settle(c);
            continue;
        }
        c->state = C_CONNECTING;
        t->connecting++;
    }
}

static int echo_setup(struct pcb_thread *t)
{
    const struct pcb_config *cfg = t->cfg;
    struct echo_state *st = calloc(1, sizeof *st);
    if (!st)
        return -1;
    t->mode = st;
    st->t = t;
    st->conns = calloc(t->count, sizeof *st->conns);
    if (!st->conns)
        return -1;
    if (open_loop(cfg))
        st->interval = 1e9 * cfg->connections / cfg->rate;
    for (unsigned i = 0; i < t->count; i++) {
        struct echo_conn *c = &st->conns[i];
        c->st = st;
        c->index = t->first + i;
        c->s.io.fd = -1;
        c->quota = pcb_quota(cfg, c->index);
        if (cfg->mode == PCB_ECHO && !open_loop(cfg) &&
            !(c->stamps = calloc(cfg->pipeline, sizeof *c->stamps)))
            return -1;
        ev_init(&c->pace, pace_cb);
        c->pace.data = c;
    }
    launch(st);
    return 0;
}

static void start_load(struct echo_state *st)
{
    struct pcb_thread *t = st->t;
    uint64_t now = pcb_now_ns();
    for (unsigned i = 0; i < t->count; i++) {
        struct echo_conn *c = &st->conns[i];
        if (c->state != C_OPEN)
            continue;
        if (open_loop(t->cfg)) {
            /* Spread the connections' schedules over one interval, so
             * they do not all send at the same instant. */
            c->t0 = now + (uint64_t)(st->interval * i / t->count);
            ev_timer_set(&c->pace, (double)(c->t0 - now) / 1e9, 0);
            ev_timer_start(t->loop, &c->pace);
        } else {
            refill(c);
            flush(c);
        }
        if (c->state == C_OPEN)
            check_settled(c);
    }
}

static void stop_load(struct echo_state *st)
{
    struct pcb_thread *t = st->t;
    for (unsigned i = 0; i < t->count; i++) {
        struct echo_conn *c = &st->conns[i];
        ev_timer_stop(t->loop, &c->pace);
        if (c->state != C_OPEN)
            continue;
        if (t->cfg->mode == PCB_IDLE && t->cfg->size) {
            queue_messages(c, 1); /* still alive? */
            flush(c);
        }
        if (c->state == C_OPEN)
            check_settled(c);
    }
}

static void quit(struct echo_state *st)
{
    struct pcb_thread *t = st->t;
    for (unsigned i = 0; i < t->count; i++) {
        struct echo_conn *c = &st->conns[i];
        ev_timer_stop(t->loop, &c->pace);
        if (c->state == C_CONNECTING || c->state == C_HANDSHAKE) {
            pcb_error(t, PCB_ERR_CONNECT);
            t->connecting--;
        } else if (c->state == C_OPEN) {
            if (c->completed < c->queued)
                PCB_ADD(t, errors[PCB_ERR_LOST], c->queued - c->completed);
            PCB_ADD(t, open, (uint64_t)-1);
        } else {
            continue;
        }
        pcb_stream_close(t->loop, &c->s);
        c->state = C_DEAD;
    }
}

static void echo_phase(struct pcb_thread *t)
{
    struct echo_state *st = t->mode;
    if (!st)
        return;
    switch (t->phase) {
    case PCB_WARMUP:
        if (t->cfg->mode == PCB_ECHO)
            start_load(st);
        break;
    case PCB_STOP:
        stop_load(st);
        break;
    case PCB_QUIT:
        quit(st);
        break;
    default:
        break;
    }
}

static void echo_fini(struct pcb_thread *t)
{
    struct echo_state *st = t->mode;
    if (!st)
        return;
    if (st->conns)
        for (unsigned i = 0; i < t->count; i++)
            free(st->conns[i].stamps);
    free(st->conns);
    free(st);
}

const struct pcb_mode_ops pcb_echo_ops = {
    .setup = echo_setup,
    .phase = echo_phase,
    .fini = echo_fini,
};
