/* The slot engine of churn and handshake mode (see slots.h): connect,
 * hand over to the mode, count, close, again; back off after a failure. */
#include <stdlib.h>

#include "slots.h"

#define BACKOFF 0.01

static void slot_begin(struct pcb_slot *sl);

static void slot_finish(struct pcb_slot *sl)
{
    if (sl->finished)
        return;
    sl->finished = true;
    if (++sl->set->finished == sl->set->t->count)
        pcb_thread_done(sl->set->t);
}

static void slot_end(struct pcb_slot *sl)
{
    struct pcb_thread *t = sl->set->t;
    ev_timer_stop(t->loop, &sl->timer);
    pcb_stream_close(t->loop, &sl->s);
    if (sl->connected)
        PCB_ADD(t, open, (uint64_t)-1);
    sl->busy = sl->connected = false;
}

void pcb_slot_timer(struct pcb_slot *sl, double seconds)
{
    ev_timer_set(&sl->timer, seconds, 0);
    ev_timer_start(sl->set->t->loop, &sl->timer);
}

void pcb_slot_fail(struct pcb_slot *sl, enum pcb_error e)
{
    pcb_error(sl->set->t, e);
    slot_end(sl);
    pcb_slot_timer(sl, BACKOFF);
}

void pcb_slot_complete(struct pcb_slot *sl)
{
    struct pcb_thread *t = sl->set->t;
    if (t->measuring) {
        pcb_hist_record(t->hist, pcb_now_ns() - sl->begun);
        PCB_ADD(t, messages, 1);
        PCB_ADD(t, bytes, t->cfg->size);
    }
    if (sl->set->ops->complete)
        sl->set->ops->complete(sl);
    slot_end(sl);
    slot_begin(sl);
}

static void echo_flush(struct pcb_slot *sl)
{
    if (pcb_stream_flush(sl->set->t->loop, &sl->s) < 0)
        pcb_slot_fail(sl, PCB_ERR_CLOSED);
}

void pcb_slot_echo_start(struct pcb_slot *sl)
{
    sl->s.tx_target = sl->set->t->cfg->size;
    echo_flush(sl);
}

void pcb_slot_echo_io(struct pcb_slot *sl, int revents,
                      void (*echoed)(struct pcb_slot *sl))
{
    struct pcb_thread *t = sl->set->t;
    if (revents & EV_READ) {
        long n = pcb_stream_read(t, &sl->s);
        if (n < 0) {
            pcb_slot_fail(sl, (enum pcb_error)(-n - 1));
            return;
        }
        if (sl->s.rx_done == t->cfg->size) {
            echoed(sl);
            return;
        }
    }
    echo_flush(sl);
}

static void slot_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct pcb_slot *sl = w->data;
    struct pcb_thread *t = sl->set->t;
    if (!sl->busy)
        return;
    if (sl->connected) {
        sl->set->ops->io(sl, revents);
        return;
    }
    if (pcb_connect_result(sl->s.io.fd) < 0) {
        pcb_slot_fail(sl, PCB_ERR_CONNECT);
        return;
    }
    sl->connected = true;
    PCB_ADD(t, opened, 1);
    PCB_ADD(t, open, 1);
    sl->set->ops->connected(sl);
}

static void slot_begin(struct pcb_slot *sl)
{
    struct pcb_thread *t = sl->set->t;
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
        pcb_slot_timer(sl, BACKOFF);
        return;
    }
    sl->busy = true;
}

/* Idle, the timer was the backoff: try again. Busy, it was the mode's. */
static void timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct pcb_slot *sl = w->data;
    if (!sl->busy)
        slot_begin(sl);
    else if (sl->set->ops->timeout)
        sl->set->ops->timeout(sl);
}

int pcb_slots_setup(struct pcb_thread *t, const struct pcb_slot_ops *ops,
                    size_t data_size)
{
    struct pcb_slots *set = calloc(1, sizeof *set);
    if (!set)
        return -1;
    t->mode = set;
    set->t = t;
    set->ops = ops;
    if (!(set->slots = calloc(t->count, sizeof *set->slots)))
        return -1;
    if (data_size && !(set->data = calloc(t->count, data_size)))
        return -1;
    for (unsigned i = 0; i < t->count; i++) {
        struct pcb_slot *sl = &set->slots[i];
        sl->set = set;
        sl->index = t->first + i;
        sl->s.io.fd = -1;
        sl->quota = pcb_quota(t->cfg, sl->index);
        sl->data = data_size ? set->data + i * data_size : NULL;
        ev_init(&sl->timer, timer_cb);
        sl->timer.data = sl;
    }
    pcb_thread_ready(t);
    return 0;
}

void pcb_slots_phase(struct pcb_thread *t)
{
    struct pcb_slots *set = t->mode;
    if (!set)
        return;
    for (unsigned i = 0; i < t->count; i++) {
        struct pcb_slot *sl = &set->slots[i];
        switch (t->phase) {
        case PCB_WARMUP:
            slot_begin(sl);
            break;
        case PCB_STOP:
            if (!sl->busy) {
                ev_timer_stop(t->loop, &sl->timer);
                slot_finish(sl);
            }
            break;
        case PCB_QUIT:
            ev_timer_stop(t->loop, &sl->timer);
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

void pcb_slots_fini(struct pcb_thread *t)
{
    struct pcb_slots *set = t->mode;
    if (!set)
        return;
    if (set->slots && set->data && set->ops->release)
        for (unsigned i = 0; i < t->count; i++)
            set->ops->release(&set->slots[i]);
    free(set->slots);
    free(set->data);
    free(set);
}
