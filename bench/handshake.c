/* handshake mode: each of `connections` slots connects, does a TLS
 * handshake, optionally exchanges one echo of --size bytes, closes (the
 * client first, with close_notify) and starts over. Latency is from
 * connect() to the proof that the server finished its part: the echo
 * back or, with no echo, the end of the client's handshake (the server's
 * Finished checked) and, for a full TLS 1.3 handshake, the server's first
 * session ticket, which it sends once it has checked the client's
 * Finished. A resumed TLS 1.3 handshake waits for no ticket: its server
 * Finished already proves the server took the session, and a server need
 * not send a new ticket after resuming (percored sends none, nginx one).
 *
 * --resume: each slot offers the newest session the server gave it so
 * far (the same again if a resumed handshake brought no new one);
 * handshakes that offered one and were not resumed are errors
 * (not_resumed), and the report gives the fraction of measured
 * handshakes that were resumed. A full TLS 1.3 handshake waits for its
 * ticket even after an echo, so that the next connection has one. */
#include <stdlib.h>

#include <openssl/ssl.h>

#include "bench.h"
#include "tls.h"

/* How long a slot waits for a TLS 1.3 ticket before calling it missing:
 * the server sends it right after a full handshake, so this is only there
 * for a server that sends none. */
#define TICKET_WAIT 2.0
#define BACKOFF     0.01

enum slot_state { S_IDLE, S_CONNECTING, S_HANDSHAKE, S_EXCHANGE, S_TICKET };

struct slot {
    struct pcb_stream s;
    ev_timer timer; /* the backoff after a failure, or the ticket wait */
    struct hs_state *st;
    enum slot_state state;
    bool connected;
    bool finished; /* will start no more */
    bool offered;  /* this connection offered a session */
    unsigned index;
    uint64_t begun, quota, started;
    SSL_SESSION *session; /* --resume: what the next connection offers */
};

struct hs_state {
    struct pcb_thread *t;
    struct slot *slots;
    unsigned finished;
};

static void slot_begin(struct slot *sl);

static void slot_finish(struct slot *sl)
{
    if (sl->finished)
        return;
    sl->finished = true;
    if (++sl->st->finished == sl->st->t->count)
        pcb_thread_done(sl->st->t);
}

static void slot_end(struct slot *sl)
{
    struct pcb_thread *t = sl->st->t;
    ev_timer_stop(t->loop, &sl->timer);
    pcb_stream_close(t->loop, &sl->s);
    if (sl->connected)
        PCB_ADD(t, open, (uint64_t)-1);
    sl->connected = false;
    sl->state = S_IDLE;
}

static void wait_timer(struct slot *sl, double seconds)
{
    ev_timer_set(&sl->timer, seconds, 0);
    ev_timer_start(sl->st->t->loop, &sl->timer);
}

/* After a failure, wait a little: a refusing server must not turn the
 * load generator into a busy loop. */
static void slot_fail(struct slot *sl, enum pcb_error e)
{
    pcb_error(sl->st->t, e);
    slot_end(sl);
    wait_timer(sl, BACKOFF);
}

/* The server finished its part: count it, keep the session, close. */
static void slot_done(struct slot *sl)
{
    struct pcb_thread *t = sl->st->t;
    bool resumed = pcb_tls_resumed(&sl->s);
    if (t->measuring) {
        pcb_hist_record(t->hist, pcb_now_ns() - sl->begun);
        PCB_ADD(t, messages, 1);
        PCB_ADD(t, bytes, t->cfg->size);
        if (sl->offered)
            PCB_ADD(t, offered, 1);
        if (resumed)
            PCB_ADD(t, resumed, 1);
        if (sl->offered && !resumed)
            pcb_error(t, PCB_ERR_NOT_RESUMED);
    }
    /* A TLS 1.2 server that resumes may send no new ticket: the old
     * session stays good. */
    SSL_SESSION *fresh = pcb_tls_take_session(&sl->s);
    if (fresh) {
        if (sl->session)
            SSL_SESSION_free(sl->session);
        sl->session = fresh;
    }
    slot_end(sl);
    slot_begin(sl);
}

static bool needs_ticket(const struct slot *sl)
{
    const struct pcb_config *cfg = sl->st->t->cfg;
    return cfg->tls_version == 13 && !pcb_tls_resumed(&sl->s) &&
           (cfg->size == 0 || cfg->resume) && !pcb_tls_got_session(&sl->s);
}

/* Reads what came while waiting for the ticket. */
static void ticket_step(struct slot *sl)
{
    int r = pcb_tls_drain(&sl->s);
    if (r < 0) {
        slot_fail(sl, (enum pcb_error)(-r - 1));
        return;
    }
    if (pcb_tls_got_session(&sl->s))
        slot_done(sl);
    else if (r == 1) /* closed without one */
        slot_fail(sl, PCB_ERR_PROTOCOL);
}

static void exchanged(struct slot *sl)
{
    if (!needs_ticket(sl)) {
        slot_done(sl);
        return;
    }
    sl->state = S_TICKET;
    wait_timer(sl, TICKET_WAIT);
    /* Read ahead may already hold it. */
    ticket_step(sl);
}

static void handshake_step(struct slot *sl)
{
    struct pcb_thread *t = sl->st->t;
    int r = pcb_tls_handshake(t->loop, &sl->s);
    if (r < 0) {
        slot_fail(sl, PCB_ERR_TLS);
        return;
    }
    if (r == 0)
        return;
    if (!t->tls.protocol[0])
        pcb_tls_describe(&sl->s, &t->tls);
    if (!t->cfg->size) {
        exchanged(sl);
        return;
    }
    sl->state = S_EXCHANGE;
    sl->s.tx_target = t->cfg->size;
    if (pcb_stream_flush(t->loop, &sl->s) < 0)
        slot_fail(sl, PCB_ERR_CLOSED);
}

static void on_connected(struct slot *sl)
{
    struct pcb_thread *t = sl->st->t;
    if (pcb_connect_result(sl->s.io.fd) < 0) {
        slot_fail(sl, PCB_ERR_CONNECT);
        return;
    }
    sl->connected = true;
    PCB_ADD(t, opened, 1);
    PCB_ADD(t, open, 1);
    SSL_SESSION *offer = t->cfg->resume ? sl->session : NULL;
    if (pcb_tls_begin(t, &sl->s, offer) < 0) {
        slot_fail(sl, PCB_ERR_TLS);
        return;
    }
    sl->offered = offer != NULL;
    sl->state = S_HANDSHAKE;
    handshake_step(sl);
}

static void slot_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct slot *sl = w->data;
    struct pcb_thread *t = sl->st->t;
    switch (sl->state) {
    case S_CONNECTING:
        on_connected(sl);
        return;
    case S_HANDSHAKE:
        handshake_step(sl);
        return;
    case S_TICKET:
        ticket_step(sl);
        return;
    case S_EXCHANGE:
        break;
    case S_IDLE:
        return;
    }
    if (revents & EV_READ) {
        long n = pcb_stream_read(t, &sl->s);
        if (n < 0) {
            slot_fail(sl, (enum pcb_error)(-n - 1));
            return;
        }
        if (sl->s.rx_done == t->cfg->size) {
            exchanged(sl);
            return;
        }
    }
    if (pcb_stream_flush(loop, &sl->s) < 0)
        slot_fail(sl, PCB_ERR_CLOSED);
}

static void slot_begin(struct slot *sl)
{
    struct pcb_thread *t = sl->st->t;
    if (t->phase >= PCB_STOP || sl->started >= sl->quota) {
        slot_finish(sl);
        return;
    }
    sl->started++;
    sl->begun = pcb_now_ns();
    int r = pcb_stream_connect(t, &sl->s, slot_cb, sl,
                               sl->index + (unsigned)sl->started);
    if (r < 0) {
        pcb_error(t, PCB_ERR_CONNECT);
        wait_timer(sl, BACKOFF);
        return;
    }
    sl->state = S_CONNECTING;
}

static void timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct slot *sl = w->data;
    if (sl->state == S_TICKET)
        slot_fail(sl, PCB_ERR_PROTOCOL); /* no ticket came */
    else if (sl->state == S_IDLE)
        slot_begin(sl);
}

static int hs_setup(struct pcb_thread *t)
{
    const struct pcb_config *cfg = t->cfg;
    struct hs_state *st = calloc(1, sizeof *st);
    if (!st)
        return -1;
    t->mode = st;
    st->t = t;
    if (!(st->slots = calloc(t->count, sizeof *st->slots)))
        return -1;
    for (unsigned i = 0; i < t->count; i++) {
        struct slot *sl = &st->slots[i];
        sl->st = st;
        sl->index = t->first + i;
        sl->s.io.fd = -1;
        sl->quota = pcb_quota(cfg, sl->index);
        ev_init(&sl->timer, timer_cb);
        sl->timer.data = sl;
    }
    pcb_thread_ready(t); /* nothing to set up: every connection is new */
    return 0;
}

static void hs_phase(struct pcb_thread *t)
{
    struct hs_state *st = t->mode;
    if (!st)
        return;
    for (unsigned i = 0; i < t->count; i++) {
        struct slot *sl = &st->slots[i];
        switch (t->phase) {
        case PCB_WARMUP:
            slot_begin(sl);
            break;
        case PCB_STOP:
            if (sl->state == S_IDLE) {
                ev_timer_stop(t->loop, &sl->timer);
                slot_finish(sl);
            }
            break;
        case PCB_QUIT:
            ev_timer_stop(t->loop, &sl->timer);
            if (sl->state != S_IDLE) {
                pcb_error(t, sl->connected ? PCB_ERR_LOST : PCB_ERR_CONNECT);
                slot_end(sl);
            }
            break;
        default:
            break;
        }
    }
}

static void hs_fini(struct pcb_thread *t)
{
    struct hs_state *st = t->mode;
    if (st && st->slots)
        for (unsigned i = 0; i < t->count; i++)
            if (st->slots[i].session)
                SSL_SESSION_free(st->slots[i].session);
    if (st)
        free(st->slots);
    free(st);
}

const struct pcb_mode_ops pcb_handshake_ops = {
    .setup = hs_setup,
    .phase = hs_phase,
    .fini = hs_fini,
};
