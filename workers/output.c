/* A connection's output: queueing writes (copies and shared buffers)
 * under max_output, flushing them with writev, back-pressure, the
 * flush_delay window, and cuts on a unit boundary with the module's
 * goodbye and a bounded linger. The rest of a connection's life is
 * conn.c's; the two share the helpers of conn_state.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"
#include "workers/conn_state.h"
#include "workers/worker.h"

/* A cut connection is on its worker's cut list until it is freed, so
 * that a peer that never reads cannot keep it open. */
static void cut_list_add(struct pc_conn *c)
{
    struct pc_worker *w = c->svc->w;
    if (w->ncut == w->cut_cap) {
        size_t cap = w->cut_cap ? w->cut_cap * 2 : 16;
        struct pc_conn **a = realloc(w->cut, cap * sizeof *a);
        if (a)
            w->cut = a;
        double *t = a ? realloc(w->cut_at, cap * sizeof *t) : NULL;
        if (!t) {
            pc_conn_kill(c, c->reason); /* no room to wait: close now */
            return;
        }
        w->cut_at = t;
        w->cut_cap = cap;
    }
    c->delayed_at = (uint32_t)w->ncut;
    w->cut[w->ncut] = c;
    w->cut_at[w->ncut++] = ev_now(CONN_LOOP(c));
    if (!ev_is_active(&w->cut_timer)) {
        ev_timer_set(&w->cut_timer, PC_CUT_LINGER / 4, 0.);
        ev_timer_start(CONN_LOOP(c), &w->cut_timer);
    }
}

void pc_conn_cut_list_remove(struct pc_conn *c)
{
    struct pc_worker *w = c->svc->w;
    size_t i = c->delayed_at;
    if (i >= w->ncut || w->cut[i] != c)
        return; /* never listed (out of memory) */
    size_t last = --w->ncut;
    w->cut[i] = w->cut[last];
    w->cut_at[i] = w->cut_at[last];
    w->cut[i]->delayed_at = (uint32_t)i;
}

void pc_conn_expire_cut(struct pc_worker *w)
{
    ev_tstamp now = ev_now(w->loop);
    for (size_t i = 0; i < w->ncut; i++)
        if (now - w->cut_at[i] >= PC_CUT_LINGER)
            pc_conn_kill(w->cut[i], w->cut[i]->reason); /* freed later */
    if (w->ncut) {
        ev_timer_set(&w->cut_timer, PC_CUT_LINGER / 4, 0.);
        ev_timer_start(w->loop, &w->cut_timer);
    }
}

static void queue_goodbye(struct pc_conn *c, enum pc_close_reason why)
{
    const struct pc_proto *p = c->svc->proto;
    if (!p->goodbye)
        return;
    char text[512];
    size_t n = p->goodbye(c, why, text, sizeof text);
    if (n > sizeof text)
        n = sizeof text;
    if (n && pc_outq_copy(&c->out, text, n) < 0)
        pc_log(PC_LOG_DEBUG, "connection %llu: no memory for its goodbye",
               (unsigned long long)c->id);
}

void pc_conn_cut(struct pc_conn *c, enum pc_close_reason why)
{
    /* An ending connection may still be cut (its queue dropped, the
     * goodbye queued again) until its last byte is sent. */
    if ((c->flags & (PC_CONN_DEAD | PC_CONN_SHUT)) ||
        (c->flags & (PC_CONN_CUT | PC_CONN_ENDING)) == PC_CONN_CUT)
        return;
    pc_conn_undelay(c); /* written at once, like every closing connection */
    size_t before = c->out.bytes;
    pc_outq_cut(&c->out);
    queue_goodbye(c, why);
    pc_conn_account_output(c, before);
    pc_log(PC_LOG_DEBUG, "connection %llu: cut (%s), %zu of %zu bytes left",
           (unsigned long long)c->id, pc_close_reason_name(why), c->out.bytes,
           before);
    c->flags = (uint16_t)((c->flags & ~PC_CONN_ENDING) | PC_CONN_CLOSING |
                          PC_CONN_CUT);
    c->reason = (uint8_t)why;
    pc_conn_mark_pending(c);
    pc_conn_set_events(c);
    cut_list_add(c);
}

void pc_conn_end(struct pc_conn *c, enum pc_close_reason why)
{
    if (c->flags & (PC_CONN_DEAD | PC_CONN_CUT))
        return;
    pc_conn_undelay(c);
    size_t before = c->out.bytes;
    queue_goodbye(c, why);
    pc_conn_account_output(c, before);
    pc_log(PC_LOG_DEBUG, "connection %llu: ending (%s) after %zu bytes",
           (unsigned long long)c->id, pc_close_reason_name(why), c->out.bytes);
    c->flags |= PC_CONN_CLOSING | PC_CONN_CUT | PC_CONN_ENDING;
    c->reason = (uint8_t)why;
    pc_conn_mark_pending(c);
    pc_conn_set_events(c);
}

void pc_conn_stop_all(struct pc_worker *w)
{
    for (unsigned i = 0; i < PC_MAX_SLOTS; i++) {
        const struct pc_proto *p = w->svcs[i].proto;
        void (*stop)(struct pc_conn *) = p ? p->on_stop : NULL;
        if (!stop)
            continue;
        for (struct pc_conn *c = w->svcs[i].idle_head, *next; c; c = next) {
            next = c->next; /* a hook's close frees nothing now */
            if (!(c->flags & PC_CONN_CLOSING))
                stop(c);
        }
    }
}

/* ---- delayed flushes ------------------------------------------------- */


void pc_conn_delay_flush(struct pc_conn *c)
{
    struct pc_service *s = c->svc;
    if (c->flags & PC_CONN_DELAYED)
        return; /* its window is already open */
    if (s->ndelayed == s->delayed_cap) {
        size_t cap = s->delayed_cap ? s->delayed_cap * 2 : 64;
        struct pc_conn **a = realloc(s->delayed, cap * sizeof *a);
        if (!a) {
            pc_conn_flush_now(c); /* no room to wait: write now */
            return;
        }
        s->delayed = a;
        s->delayed_cap = cap;
    }
    c->flags |= PC_CONN_DELAYED;
    c->delayed_at = (uint32_t)s->ndelayed;
    s->delayed[s->ndelayed++] = c;
    if (!ev_is_active(&s->flush_timer)) {
        ev_timer_set(&s->flush_timer, s->cfg->flush_delay, 0.);
        ev_timer_start(CONN_LOOP(c), &s->flush_timer);
    }
}

void pc_conn_undelay(struct pc_conn *c)
{
    struct pc_service *s = c->svc;
    if (!(c->flags & PC_CONN_DELAYED))
        return;
    c->flags &= (uint16_t)~PC_CONN_DELAYED;
    struct pc_conn *last = s->delayed[--s->ndelayed];
    s->delayed[c->delayed_at] = last;
    last->delayed_at = c->delayed_at;
}

void pc_conn_flush_delayed(struct pc_service *s)
{
    /* Take each entry off the list before flushing it; a flush only marks
     * connections dead, it never frees one, so the list stays valid. */
    while (s->ndelayed) {
        struct pc_conn *c = s->delayed[--s->ndelayed];
        c->flags &= (uint16_t)~PC_CONN_DELAYED;
        if (!(c->flags & PC_CONN_DEAD))
            pc_conn_flush_when_writable(c);
    }
}

/* ---- output ---------------------------------------------------------- */

void pc_conn_flush_now(struct pc_conn *c)
{
    const struct pc_listener_config *cfg = c->svc->cfg;
    size_t before = c->out.bytes;
    long n = (c->flags & PC_CONN_TLS) ? pc_tls_flush(c)
                                      : pc_outq_flush(&c->out, c->io.fd);
    pc_conn_account_output(c, before);
    if (n < 0) {
        pc_conn_kill(c, (c->flags & PC_CONN_CLOSING) ? c->reason
                                                  : PC_CLOSE_ERROR);
        return;
    }
    if (n > 0) {
        PC_LSTAT_ADD(c->svc, bytes_out, (uint64_t)n);
        pc_conn_count(c, 0, (uint64_t)n);
        PC_LSTAT_ADD(c->svc, writes, 1);
        pc_conn_touch(c);
    }
    size_t unsent = pc_conn_unsent(c);
    if (unsent) /* the socket took less than all: it is full */
        c->flags |= PC_CONN_BLOCKED;
    if ((c->flags & PC_CONN_FULL) &&
        c->out.bytes <= (uint64_t)cfg->low_watermark) {
        c->flags &= (uint16_t)~PC_CONN_FULL;
        if (c->svc->proto->on_drain && !(c->flags & PC_CONN_CLOSING))
            c->svc->proto->on_drain(c);
        if (c->flags & PC_CONN_TLS)
            pc_conn_reoffer(c); /* input may wait inside OpenSSL */
    }
    if (unsent == 0 && (c->flags & PC_CONN_PEER_DONE)) {
        pc_conn_kill(c, c->reason); /* all sent; the peer has finished */
        return;
    }
    if (unsent == 0 && (c->flags & PC_CONN_CUT)) {
        /* All sent: our FIN follows it, and the peer's EOF (or the
         * linger, which for an ending connection starts now) closes. */
        if (!(c->flags & PC_CONN_SHUT)) {
            shutdown(c->io.fd, SHUT_WR);
            c->flags |= PC_CONN_SHUT;
            if (c->flags & PC_CONN_ENDING) {
                c->flags &= (uint16_t)~PC_CONN_ENDING;
                cut_list_add(c);
            }
        }
    } else if (unsent == 0 && (c->flags & PC_CONN_CLOSING)) {
        pc_conn_kill(c, c->reason);
        return;
    }
    pc_conn_set_events(c);
}

/* A socket that refused bytes is not tried again until it says it takes
 * more: a member that stopped reading costs no system call per message
 * queued for it, only the queueing, until max_output closes it. */
void pc_conn_flush_when_writable(struct pc_conn *c)
{
    if (c->flags & PC_CONN_BLOCKED)
        pc_conn_set_events(c);
    else
        pc_conn_flush_now(c);
}

static int queued(struct pc_conn *c, int r)
{
    if (r < 0) {
        pc_conn_kill(c, PC_CLOSE_ERROR);
        return r;
    }
    pc_conn_mark_pending(c);
    if (!(c->flags & PC_CONN_FULL) &&
        c->out.bytes >= (uint64_t)c->svc->cfg->high_watermark) {
        c->flags |= PC_CONN_FULL;
        pc_conn_set_events(c);
    }
    return 0;
}

static int write_check(struct pc_conn *c, size_t len)
{
    if (c->flags & (PC_CONN_DEAD | PC_CONN_CLOSING))
        return -EPIPE;
    if (c->out.bytes + len > (uint64_t)c->svc->cfg->max_output) {
        pc_log(PC_LOG_DEBUG, "connection %llu: output queue over max_output "
               "(%zu + %zu bytes), closing", (unsigned long long)c->id,
               c->out.bytes, len);
        pc_conn_cut(c, PC_CLOSE_OUTPUT_LIMIT);
        return -ENOBUFS;
    }
    return 0;
}

int pc_conn_write(struct pc_conn *c, const void *data, size_t len)
{
    int r = write_check(c, len);
    if (r < 0 || len == 0)
        return r;
    size_t before = c->out.bytes;
    r = pc_outq_copy(&c->out, data, len);
    pc_conn_account_output(c, before);
    return queued(c, r);
}

int pc_conn_write_shared(struct pc_conn *c, struct pc_sbuf *b)
{
    int r = write_check(c, b->len);
    if (r < 0 || b->len == 0)
        return r;
    size_t before = c->out.bytes;
    r = pc_outq_share(&c->out, b);
    pc_conn_account_output(c, before);
    return queued(c, r);
}

size_t pc_conn_queued(const struct pc_conn *c)
{
    return c->out.bytes;
}

void pc_conn_cut_all(struct pc_worker *w, enum pc_close_reason why)
{
    /* A cut leaves a connection where it is on its idle list. */
    for (unsigned i = 0; i < PC_MAX_SLOTS; i++)
        for (struct pc_conn *c = w->svcs[i].idle_head, *next; c; c = next) {
            next = c->next;
            pc_conn_cut(c, why);
        }
}
