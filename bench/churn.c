/* churn mode: each of `connections` slots connects, sends one message,
 * checks the echo, closes (the client closes first, as a web client
 * would), and starts over. Latency is from connect() to the last byte of
 * the echo. The connect, close and back-off are the slot engine's
 * (slots.c); this is the echo in between. */
#include "slots.h"

static void churn_io(struct pcb_slot *sl, int revents)
{
    pcb_slot_echo_io(sl, revents, pcb_slot_complete);
}

static const struct pcb_slot_ops churn_slot_ops = {
    .connected = pcb_slot_echo_start,
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
