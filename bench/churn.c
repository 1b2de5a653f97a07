/* churn mode: each of `connections` slots connects, sends one message,
 * checks the echo, closes (the client closes first, as a web client
 * would), and starts over. Latency is from connect() to the last byte of
 * the echo. */
#include <errno.h>
#include <stdlib.h>

#include "bench.h"

struct slot {
    struct pcb_stream s;
    ev_timer backoff;
    struct churn_state *st;
    bool busy; /* a connection is in progress */
    bool connected;
    bool finished; /* will start no more */
    unsigned index;
    uint64_t begun, quota, started;
};

struct churn_state {
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
    pcb_stream_close(t->loop, &sl->s);
    if (sl->connected)
        PCB_ADD(t, open, (uint64_t)-1);
    sl->busy = sl->connected = false;
}

/* After a failure, wait a little: a refusing server must not turn the
 * load generator into a busy loop. */
static void slot_fail(struct slot *sl, enum pcb_error e)
{
    struct pcb_thread *t = sl->st->t;
    pcb_error(t, e);
    slot_end(sl);
    ev_timer_set(&sl->backoff, 0.01, 0);
    ev_timer_start(t->loop, &sl->backoff);
}

static void slot_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct slot *sl = w->data;
    struct pcb_thread *t = sl->st->t;
    if (!sl->connected) {
        if (pcb_connect_result(sl->s.io.fd) < 0) {
            slot_fail(sl, PCB_ERR_CONNECT);
            return;
        }
        sl->connected = true;
        PCB_ADD(t, opened, 1);
        PCB_ADD(t, open, 1);
        sl->s.tx_target = t->cfg->size;
        revents = 0;
    }
    if (revents & EV_READ) {
        long n = pcb_stream_read(t, &sl->s);
        if (n < 0) {
            slot_fail(sl, (enum pcb_error)(-n - 1));
            return;
        }
        if (sl->s.rx_done == t->cfg->size) {
            if (t->measuring) {
                uint64_t now = pcb_now_ns();
                pcb_hist_record(t->hist, now - sl->begun);
                PCB_ADD(t, messages, 1);
                PCB_ADD(t, bytes, t->cfg->size);
            }
            slot_end(sl);
            slot_begin(sl);
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
        ev_timer_set(&sl->backoff, 0.01, 0);
        ev_timer_start(t->loop, &sl->backoff);
        return;
    }
    sl->busy = true;
}

static void backoff_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    slot_begin(w->data);
}

static int churn_setup(struct pcb_thread *t)
{
    const struct pcb_config *cfg = t->cfg;
    struct churn_state *st = calloc(1, sizeof *st);
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
        ev_init(&sl->backoff, backoff_cb);
        sl->backoff.data = sl;
    }
    pcb_thread_ready(t); /* nothing to set up: every connection is new */
    return 0;
}

static void churn_phase(struct pcb_thread *t)
{
    struct churn_state *st = t->mode;
    if (!st)
        return;
    for (unsigned i = 0; i < t->count; i++) {
        struct slot *sl = &st->slots[i];
        switch (t->phase) {
        case PCB_WARMUP:
            slot_begin(sl);
            break;
        case PCB_STOP:
            if (!sl->busy) {
                ev_timer_stop(t->loop, &sl->backoff);
                slot_finish(sl);
            }
            break;
        case PCB_QUIT:
            ev_timer_stop(t->loop, &sl->backoff);
            if (sl->busy) {
                pcb_error(t, sl->connected ? PCB_ERR_LOST : PCB_ERR_CONNECT);
                slot_end(sl);
            }
            break;
        default:
            break;
        }
    }
}

static void churn_fini(struct pcb_thread *t)
{
    struct churn_state *st = t->mode;
    if (st)
        free(st->slots);
    free(st);
}

const struct pcb_mode_ops pcb_churn_ops = {
    .setup = churn_setup,
    .phase = churn_phase,
    .fini = churn_fini,
};
