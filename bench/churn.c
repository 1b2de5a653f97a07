/* churn mode: each of `connections` slots connects, sends one message,
 * checks the echo, closes (the client closes first, as a web client
 * would), and starts over. Latency is from connect() to the last byte of
 * the echo. The connect, close and back-off are the slot engine's
 * (slots.c); this is the echo in between. */
#include "slots.h"

static void churn_flush(struct pcb_slot *sl)
{
    if (pcb_stream_flush(sl->set->t->loop, &sl->s) < 0)
        pcb_slot_fail(sl, PCB_ERR_CLOSED);
}

static void churn_connected(struct pcb_slot *sl)
{
    sl->s.tx_target = sl->set->t->cfg->size;
    churn_flush(sl);
}

static void churn_io(struct pcb_slot *sl, int revents)
{
    struct pcb_thread *t = sl->set->t;
    if (revents & EV_READ) {
        long n = pcb_stream_read(t, &sl->s);
        if (n < 0) {
            pcb_slot_fail(sl, (enum pcb_error)(-n - 1));
            return;
        }
        if (sl->s.rx_done == t->cfg->size) {
            pcb_slot_complete(sl);
            return;
        }
    }
    churn_flush(sl);
}

static const struct pcb_slot_ops churn_slot_ops = {
    .connected = churn_connected,
    .io = churn_io,
};

static int churn_setup(struct pcb_thread *t)
{
    return pcb_slots_setup(t, &churn_slot_ops, 0);
}

const struct pcb_mode_ops pcb_churn_ops = {
    .setup = churn_setup,
    .phase = pcb_slots_phase,
    .fini = pcb_slots_fini,
};
