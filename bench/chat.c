/* chat mode: rooms of members; some members also send. Every line carries
 * its sender, a sequence number and the time it was sent (or, open loop,
 * was due), so each member checks every sender's order and times every
 * delivery from send to receipt.
 *
 * Stalled members (--stalled) read like the others until measuring starts,
 * then never again: the slow consumer a server must cut off without
 * slowing the room. Their deliveries are not counted; at the end each one
 * is read dry to see whether the server closed it.
 *
 * The same workload speaks four dialects (dialect.c): percore's chat
 * protocol, Redis pub/sub, NATS and IRC. Redis cannot publish on a
 * subscribed connection, so there a sender has a second connection to
 * publish on. An IRC server does not send a sender its own lines: there
 * each line owes one delivery fewer (pcb_chat_fanout), one coming back is
 * an error, and in a closed loop another member of the room on the same
 * thread, its witness (pcb_chat_witness), hears it for the sender. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "chat.h"

static void launch(struct chat_state *st);

static struct pcb_thread *thread_of(const struct chat_conn *c)
{
    return c->m->st->t;
}

static void member_set_up(struct chat_member *m)
{
    if (m->set_up)
        return;
    m->set_up = true;
    struct pcb_thread *t = m->st->t;
    PCB_ADD(t, ready, 1);
    if (++m->st->set_up == t->count)
        pcb_thread_ready(t);
}

static void conn_close(struct chat_conn *c)
{
    struct pcb_thread *t = thread_of(c);
    if (c->state == CHAT_CONNECTING || c->state == CHAT_HANDSHAKE)
        t->connecting--; /* see launch() */
    if (c->state == CHAT_CONNECTING || c->state == CHAT_HANDSHAKE ||
        c->state == CHAT_JOINED) {
        ev_io_stop(t->loop, &c->io);
        close(c->io.fd);
        c->io.fd = -1;
        if (c->state != CHAT_CONNECTING)
            PCB_ADD(t, open, (uint64_t)-1);
    }
    c->state = CHAT_DEAD;
    free(c->in);
    free(c->out);
    c->in = c->out = NULL;
    c->in_len = c->in_cap = c->out_len = c->out_off = c->out_cap = 0;
}

void pcb_chat_fail(struct chat_conn *c, enum pcb_error e)
{
    if (c->state == CHAT_DEAD)
        return;
    struct pcb_thread *t = thread_of(c);
    pcb_error(t, e);
    conn_close(c);
    ev_timer_stop(t->loop, &c->m->pace);
    member_set_up(c->m); /* counted, as a failure */
    launch(c->m->st);
}

/* Makes room for `need` bytes in a growable buffer; -1 when out of memory. */
static int reserve(char **buf, size_t *cap, size_t need)
{
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap : 4096;
    while (n < need)
        n *= 2;
    char *p = realloc(*buf, n);
    if (!p)
        return -1;
    *buf = p;
    *cap = n;
    return 0;
}

static void watch(struct chat_conn *c, int events)
{
    if (c->events == events)
        return;
    struct ev_loop *loop = thread_of(c)->loop;
    ev_io_stop(loop, &c->io);
    ev_io_set(&c->io, c->io.fd, events);
    c->events = events;
    ev_io_start(loop, &c->io);
}

static void flush_out(struct chat_conn *c)
{
    while (c->out_off < c->out_len) {
        ssize_t n =
            write(c->io.fd, c->out + c->out_off, c->out_len - c->out_off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN)
                break;
            pcb_chat_fail(c, PCB_ERR_CLOSED);
            return;
        }
        c->out_off += (size_t)n;
    }
    if (c->out_off == c->out_len)
        c->out_off = c->out_len = 0;
    watch(c, EV_READ | (c->out_len ? EV_WRITE : 0));
}

void pcb_chat_send(struct chat_conn *c, const char *data, size_t len)
{
    if (c->state == CHAT_DEAD)
        return;
    if (c->out_off && c->out_len + len > c->out_cap) {
        /* compact before growing */
        memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
        c->out_len -= c->out_off;
        c->out_off = 0;
    }
    if (reserve(&c->out, &c->out_cap, c->out_len + len) < 0) {
        pcb_chat_fail(c, PCB_ERR_CLOSED);
        return;
    }
    memcpy(c->out + c->out_len, data, len);
    c->out_len += len;
    /* Sent when the current callback is over: several lines queued in one
     * callback leave in one write(). */
    watch(c, EV_READ | EV_WRITE);
}

/* ---- lines: "p SENDER SEQ TIME xxx..." in hex, fixed width ---- */

#define TEXT_SENDER 2
#define TEXT_SEQ    11
#define TEXT_TIME   28
#define TEXT_MIN    44

static bool hex(const char *s, int n, uint64_t *out)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++) {
        char ch = s[i];
        unsigned d = ch >= '0' && ch <= '9'   ? (unsigned)(ch - '0')
                     : ch >= 'a' && ch <= 'f' ? (unsigned)(ch - 'a' + 10)
                                              : 16;
        if (d == 16)
            return false;
        v = v << 4 | d;
    }
    *out = v;
    return true;
}

static void send_line(struct chat_member *m, uint64_t stamp)
{
    struct chat_state *st = m->st;
    struct pcb_thread *t = st->t;
    struct chat_conn *out = m->pub ? m->pub : &m->sub;
    if (out->state != CHAT_JOINED)
        return;
    char text[4100];
    size_t size = t->cfg->size;
    int n = snprintf(text, sizeof text, "p %08x %016llx %016llx ",
                     (unsigned)m->sender, (unsigned long long)++m->seq,
                     (unsigned long long)stamp);
    memset(text + n, 'x', size - (size_t)n);
    st->dialect->publish(out, st->room_names[m->room], text, size);
    PCB_ADD(t, sent, 1);
}

/* Sender number -> its member, if it is on this thread. */
static struct chat_member *member_of_sender(struct chat_state *st,
                                            uint64_t sender)
{
    const struct pcb_config *cfg = st->t->cfg;
    uint64_t index = sender % cfg->senders * cfg->rooms + sender / cfg->senders;
    if (index < st->t->first || index - st->t->first >= st->t->count)
        return NULL;
    return &st->members[index - st->t->first];
}

void pcb_chat_deliver(struct chat_conn *c, const char *text, size_t len)
{
    struct chat_member *m = c->m;
    struct chat_state *st = m->st;
    struct pcb_thread *t = st->t;
    uint64_t sender, seq, stamp;
    if (len < TEXT_MIN || text[0] != 'p' ||
        !hex(text + TEXT_SENDER, 8, &sender) ||
        !hex(text + TEXT_SEQ, 16, &seq) || !hex(text + TEXT_TIME, 16, &stamp) ||
        sender / t->cfg->senders != m->room) {
        pcb_error(t, PCB_ERR_PROTOCOL);
        return;
    }
    if (!st->self_echo && m->sender == (int64_t)sender) {
        pcb_error(t, PCB_ERR_PROTOCOL); /* an echo the protocol rules out */
        return;
    }
    uint64_t now = pcb_now_ns();
    unsigned k = (unsigned)(sender % t->cfg->senders);
    if (seq != m->last_seq[k] + 1)
        pcb_error(t, PCB_ERR_ORDER);
    if (seq > m->last_seq[k])
        m->last_seq[k] = seq;
    if (m->stalled)
        return; /* not counted: it stops reading half way */
    PCB_ADD(t, received, 1);
    if (t->measuring) {
        pcb_hist_record(t->hist, now > stamp ? now - stamp : 0);
        PCB_ADD(t, messages, 1);
    }
    /* Closed loop: a sender's own line is back (or has reached its
     * witness); the next may go. */
    if (t->cfg->rate > 0 || (t->phase != PCB_WARMUP && t->phase != PCB_MEASURE))
        return;
    if (st->self_echo) {
        if (m->sender == (int64_t)sender)
            send_line(m, now);
    } else if (m->witnessing) {
        struct chat_member *s = member_of_sender(st, sender);
        if (s && s->witness == m)
            send_line(s, now);
    }
}

void pcb_chat_joined(struct chat_conn *c)
{
    if (c->state != CHAT_HANDSHAKE)
        return;
    c->state = CHAT_JOINED;
    thread_of(c)->connecting--;
    launch(c->m->st);
    struct chat_member *m = c->m;
    if (m->sub.state == CHAT_JOINED &&
        (!m->pub || m->pub->state == CHAT_JOINED))
        member_set_up(m);
}

/* ---- input ---- */

static void conn_read(struct chat_conn *c)
{
    struct pcb_thread *t = thread_of(c);
    ssize_t n = read(c->io.fd, t->scratch, PCB_SCRATCH);
    if (n <= 0) {
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        pcb_chat_fail(c, PCB_ERR_CLOSED);
        return;
    }
    const struct chat_dialect *d = c->m->st->dialect;
    /* Parse straight from the scratch buffer; keep only a frame cut in
     * two for the next read. */
    char *buf = t->scratch;
    size_t len = (size_t)n;
    if (c->in_len) {
        if (reserve(&c->in, &c->in_cap, c->in_len + len) < 0) {
            pcb_chat_fail(c, PCB_ERR_CLOSED);
            return;
        }
        memcpy(c->in + c->in_len, buf, len);
        c->in_len += len;
        buf = c->in;
        len = c->in_len;
    }
    size_t used = d->parse(c, buf, len);
    if (c->state == CHAT_DEAD)
        return;
    size_t left = len - used;
    if (left > (1u << 20)) {
        pcb_chat_fail(c, PCB_ERR_PROTOCOL); /* no end of frame in 1 MiB */
        return;
    }
    if (buf == c->in) {
        memmove(c->in, c->in + used, left);
    } else if (left) {
        if (reserve(&c->in, &c->in_cap, left) < 0) {
            pcb_chat_fail(c, PCB_ERR_CLOSED);
            return;
        }
        memcpy(c->in, buf + used, left);
    }
    c->in_len = left;
}

static void conn_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct chat_conn *c = w->data;
    struct pcb_thread *t = thread_of(c);
    if (c->state == CHAT_CONNECTING) {
        if (pcb_connect_result(c->io.fd) < 0) {
            pcb_chat_fail(c, PCB_ERR_CONNECT);
            return;
        }
        c->state = CHAT_HANDSHAKE;
        PCB_ADD(t, opened, 1);
        PCB_ADD(t, open, 1);
        c->m->st->dialect->handshake(c, c->m->st->room_names[c->m->room]);
        flush_out(c);
        return;
    }
    if (revents & EV_READ) {
        conn_read(c);
        if (c->state == CHAT_DEAD)
            return;
    }
    flush_out(c);
}

/* Connections in flight count until they have joined (or failed), not
 * only until connected: a server that answers slowly is not flooded with
 * connections its listen backlog drops (a dropped SYN waits a second). */
static void launch(struct chat_state *st)
{
    struct pcb_thread *t = st->t;
    while (t->phase == PCB_SETUP && st->next < st->nconns &&
           t->connecting < t->cfg->connect_concurrency) {
        struct chat_conn *c = st->conns[st->next++];
        /* A stalled member's small window makes the server, not the
         * kernels' buffers, hold what it does not read. */
        unsigned member = t->first + (unsigned)(c->m - st->members);
        int fd = pcb_connect_start(t->run, member, c->m->stalled ? 4096 : 0);
        if (fd < 0) {
            c->state = CHAT_DEAD;
            pcb_error(t, PCB_ERR_CONNECT);
            member_set_up(c->m);
            continue;
        }
        ev_io_init(&c->io, conn_cb, fd, EV_WRITE);
        c->io.data = c;
        c->events = EV_WRITE;
        ev_io_start(t->loop, &c->io);
        c->state = CHAT_CONNECTING;
        t->connecting++;
    }
}

/* ---- open loop ---- */

static void pace_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct chat_member *m = w->data;
    double interval = m->st->interval;
    uint64_t now = pcb_now_ns();
    if (now >= m->t0) {
        uint64_t due = (uint64_t)((double)(now - m->t0) / interval) + 1;
        while (m->seq < due) {
            uint64_t before = m->seq;
            send_line(m, m->t0 + (uint64_t)((double)m->seq * interval));
            if (m->seq == before)
                return; /* its connection is gone */
        }
    }
    uint64_t next = m->t0 + (uint64_t)((double)m->seq * interval);
    ev_timer_set(w, next > now ? (double)(next - now) / 1e9 : 0, 0);
    ev_timer_start(loop, w);
}

/* ---- the mode ---- */

static int chat_setup(struct pcb_thread *t)
{
    const struct pcb_config *cfg = t->cfg;
    struct chat_state *st = calloc(1, sizeof *st);
    if (!st)
        return -1;
    t->mode = st;
    st->t = t;
    st->dialect = pcb_chat_dialect(cfg->target);
    st->self_echo = pcb_target_self_echo(cfg->target);
    st->members = calloc(t->count, sizeof *st->members);
    st->room_names = calloc(cfg->rooms, sizeof *st->room_names);
    bool redis = cfg->target == PCB_TARGET_REDIS;
    st->conns = calloc((size_t)t->count * (redis ? 2 : 1), sizeof *st->conns);
    if (!st->members || !st->room_names || !st->conns)
        return -1;
    for (unsigned r = 0; r < cfg->rooms; r++) {
        if (!(st->room_names[r] = malloc(48)))
            return -1;
        snprintf(st->room_names[r], 48, "%s%u", cfg->room, r);
    }
    if (cfg->rate > 0)
        st->interval = 1e9 * cfg->rooms * cfg->senders / cfg->rate;
    for (unsigned i = 0; i < t->count; i++) {
        struct chat_member *m = &st->members[i];
        unsigned index = t->first + i;
        m->st = st;
        m->room = index % cfg->rooms;
        unsigned slot = index / cfg->rooms;
        m->sender =
            slot < cfg->senders ? (int64_t)(m->room * cfg->senders + slot) : -1;
        m->stalled = slot >= cfg->members - cfg->stalled;
        if (!(m->last_seq = calloc(cfg->senders, sizeof *m->last_seq)))
            return -1;
        m->sub.m = m;
        m->sub.io.fd = -1;
        st->conns[st->nconns++] = &m->sub;
        if (redis && m->sender >= 0) {
            if (!(m->pub = calloc(1, sizeof *m->pub)))
                return -1;
            m->pub->m = m;
            m->pub->io.fd = -1;
            m->pub->publisher = true;
            st->conns[st->nconns++] = m->pub;
        }
        ev_init(&m->pace, pace_cb);
        m->pace.data = m;
    }
    /* The command line made sure every sender has one on its thread. */
    for (unsigned i = 0; i < t->count && !st->self_echo && cfg->rate <= 0;
         i++) {
        long w = st->members[i].sender >= 0
                     ? pcb_chat_witness(cfg, t->first + i)
                     : -1;
        if (w >= (long)t->first && w - t->first < t->count) {
            st->members[i].witness = &st->members[w - t->first];
            st->members[i].witness->witnessing = true;
        }
    }
    launch(st);
    return 0;
}

static void start_senders(struct chat_state *st)
{
    struct pcb_thread *t = st->t;
    const struct pcb_config *cfg = t->cfg;
    uint64_t now = pcb_now_ns();
    unsigned nsenders = cfg->rooms * cfg->senders;
    for (unsigned i = 0; i < t->count; i++) {
        struct chat_member *m = &st->members[i];
        if (m->sender < 0 || m->sub.state != CHAT_JOINED)
            continue;
        if (cfg->rate > 0) {
            /* Senders' schedules spread over one interval. */
            m->t0 =
                now + (uint64_t)(st->interval * (double)m->sender / nsenders);
            ev_timer_set(&m->pace, (double)(m->t0 - now) / 1e9, 0);
            ev_timer_start(t->loop, &m->pace);
        } else {
            for (unsigned k = 0; k < cfg->pipeline; k++)
                send_line(m, pcb_now_ns());
        }
    }
}

/* Reads the stalled members dry, all at once: the server's kernel sends
 * what it held as the windows open. End of stream or a reset means the
 * server cut that member; one still silent after 200 ms of quiet (or 3 s
 * in all) was not cut. */
static void count_cut(struct chat_state *st)
{
    struct pcb_thread *t = st->t;
    unsigned n = 0;
    struct pollfd *fds = calloc(t->count, sizeof *fds);
    if (!fds)
        return;
    for (unsigned i = 0; i < t->count; i++) {
        struct chat_member *m = &st->members[i];
        if (m->stalled && m->sub.state == CHAT_JOINED)
            fds[n++] = (struct pollfd){.fd = m->sub.io.fd, .events = POLLIN};
    }
    uint64_t deadline = pcb_now_ns() + 3000000000ull;
    unsigned open = n;
    while (open && pcb_now_ns() < deadline &&
           poll(fds, n, 200) > 0) {
        for (unsigned i = 0; i < n; i++) {
            if (fds[i].fd < 0 || !fds[i].revents)
                continue;
            ssize_t r;
            while ((r = recv(fds[i].fd, t->scratch, PCB_SCRATCH, 0)) > 0)
                ;
            if (r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK &&
                           errno != EINTR)) {
                PCB_ADD(t, stalled_cut, 1);
                fds[i].fd = -1; /* poll ignores it from now on */
                open--;
            }
        }
    }
    free(fds);
}

static void stall(struct chat_state *st)
{
    struct pcb_thread *t = st->t;
    for (unsigned i = 0; i < t->count; i++) {
        struct chat_member *m = &st->members[i];
        if (m->stalled && m->sub.state == CHAT_JOINED) {
            ev_io_stop(t->loop, &m->sub.io);
            m->sub.events = 0;
        }
    }
}

static void chat_phase(struct pcb_thread *t)
{
    struct chat_state *st = t->mode;
    if (!st)
        return;
    if (t->phase == PCB_WARMUP) {
        /* Not when the run skips ahead (setup timed out, interrupted):
         * those lines would be counted lost. */
        if (atomic_load(&t->run->phase) < PCB_STOP)
            start_senders(st);
    } else if (t->phase == PCB_MEASURE) {
        stall(st);
    } else if (t->phase == PCB_STOP) {
        for (unsigned i = 0; i < t->count; i++)
            ev_timer_stop(t->loop, &st->members[i].pace);
    } else if (t->phase == PCB_QUIT) {
        count_cut(st);
        for (unsigned i = 0; i < st->nconns; i++) {
            struct chat_conn *c = st->conns[i];
            if (c->state == CHAT_CONNECTING || c->state == CHAT_HANDSHAKE)
                pcb_error(t, PCB_ERR_CONNECT);
            conn_close(c);
        }
        for (unsigned i = 0; i < t->count; i++)
            ev_timer_stop(t->loop, &st->members[i].pace);
    }
}

static void chat_fini(struct pcb_thread *t)
{
    struct chat_state *st = t->mode;
    if (!st)
        return;
    if (st->members)
        for (unsigned i = 0; i < t->count; i++) {
            free(st->members[i].last_seq);
            free(st->members[i].pub);
        }
    if (st->room_names)
        for (unsigned r = 0; r < t->cfg->rooms; r++)
            free(st->room_names[r]);
    free(st->room_names);
    free(st->members);
    free(st->conns);
    free(st);
}

const struct pcb_mode_ops pcb_chat_ops = {
    .setup = chat_setup,
    .phase = chat_phase,
    .fini = chat_fini,
};
