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
 * ticket even after an echo, so that the next connection has one.
 *
 * The connect, close and back-off are the slot engine's (slots.c); this
 * is the TLS in between. */
#include <openssl/ssl.h>

#include "slots.h"
#include "tls.h"

/* How long a slot waits for a TLS 1.3 ticket before calling it missing:
 * the server sends it right after a full handshake, so this is only there
 * for a server that sends none. */
#define TICKET_WAIT 2.0

/* Where a connected slot's exchange stands. */
enum hs_step { HS_HANDSHAKE, HS_EXCHANGE, HS_TICKET };

/* Each slot's part beyond the engine's (struct pcb_slot's data). */
struct hs_slot {
    enum hs_step step;
    bool offered;         /* this connection offered a session */
    SSL_SESSION *session; /* --resume: what the next connection offers */
};

static struct hs_slot *hs(const struct pcb_slot *sl)
{
    return sl->data;
}

/* The server finished its part (the engine counted it): keep the
 * session the server gave, count what was offered and taken. */
static void hs_complete(struct pcb_slot *sl)
{
    struct pcb_thread *t = sl->set->t;
    struct hs_slot *h = hs(sl);
    bool resumed = pcb_tls_resumed(&sl->s);
    if (t->measuring) {
        if (h->offered)
            PCB_ADD(t, offered, 1);
        if (resumed)
            PCB_ADD(t, resumed, 1);
        if (h->offered && !resumed)
            pcb_error(t, PCB_ERR_NOT_RESUMED);
    }
    /* A TLS 1.2 server that resumes may send no new ticket: the old
     * session stays good. */
    SSL_SESSION *fresh = pcb_tls_take_session(&sl->s);
    if (fresh) {
        if (h->session)
            SSL_SESSION_free(h->session);
        h->session = fresh;
    }
}

static bool needs_ticket(const struct pcb_slot *sl)
{
    const struct pcb_config *cfg = sl->set->t->cfg;
    return cfg->tls_version == 13 && !pcb_tls_resumed(&sl->s) &&
           (cfg->size == 0 || cfg->resume) && !pcb_tls_got_session(&sl->s);
}

/* Reads what came while waiting for the ticket. */
static void ticket_step(struct pcb_slot *sl)
{
    int r = pcb_tls_drain(&sl->s);
    if (r < 0) {
        pcb_slot_fail(sl, (enum pcb_error)(-r - 1));
        return;
    }
    if (pcb_tls_got_session(&sl->s))
        pcb_slot_complete(sl);
    else if (r == 1) /* closed without one */
        pcb_slot_fail(sl, PCB_ERR_PROTOCOL);
}

static void exchanged(struct pcb_slot *sl)
{
    if (!needs_ticket(sl)) {
        pcb_slot_complete(sl);
        return;
    }
    hs(sl)->step = HS_TICKET;
    pcb_slot_timer(sl, TICKET_WAIT);
    /* Read ahead may already hold it. */
    ticket_step(sl);
}

static void handshake_step(struct pcb_slot *sl)
{
    struct pcb_thread *t = sl->set->t;
    int r = pcb_tls_handshake(t->loop, &sl->s);
    if (r < 0) {
        pcb_slot_fail(sl, PCB_ERR_TLS);
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
    hs(sl)->step = HS_EXCHANGE;
    pcb_slot_echo_start(sl);
}

static void hs_connected(struct pcb_slot *sl)
{
    struct pcb_thread *t = sl->set->t;
    struct hs_slot *h = hs(sl);
    SSL_SESSION *offer = t->cfg->resume ? h->session : NULL;
    if (pcb_tls_begin(t, &sl->s, offer) < 0) {
        pcb_slot_fail(sl, PCB_ERR_TLS);
        return;
    }
    h->offered = offer != NULL;
    h->step = HS_HANDSHAKE;
    handshake_step(sl);
}

static void hs_io(struct pcb_slot *sl, int revents)
{
    switch (hs(sl)->step) {
    case HS_HANDSHAKE:
        handshake_step(sl);
        break;
    case HS_TICKET:
        ticket_step(sl);
        break;
    case HS_EXCHANGE:
        pcb_slot_echo_io(sl, revents, exchanged);
        break;
    }
}

/* The only timer a connected slot sets is the ticket wait. */
static void hs_timeout(struct pcb_slot *sl)
{
    if (hs(sl)->step == HS_TICKET)
        pcb_slot_fail(sl, PCB_ERR_PROTOCOL); /* no ticket came */
}

static void hs_release(struct pcb_slot *sl)
{
    if (hs(sl)->session)
        SSL_SESSION_free(hs(sl)->session);
}

static const struct pcb_slot_ops hs_slot_ops = {
    .connected = hs_connected,
    .io = hs_io,
    .timeout = hs_timeout,
    .complete = hs_complete,
    .release = hs_release,
};

static int hs_setup(struct pcb_thread *t)
{
    return pcb_slots_setup(t, &hs_slot_ops, sizeof(struct hs_slot));
}

const struct pcb_mode_ops pcb_handshake_ops = {
    .setup = hs_setup,
    .phase = pcb_slots_phase,
    .fini = pcb_slots_fini,
};
