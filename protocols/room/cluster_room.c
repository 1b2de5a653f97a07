/* One order per room across nodes. The room's home worker on each node
 * sends the room's lines to Redis (CL_PUBLISH: offset, stream, publish
 * in one step) and delivers what comes back on the room's channel, in
 * offset order, through the node's usual fan-out. Its own lines too: a
 * line is shown nowhere before Redis numbered it, so every member on
 * every node sees the same sequence.
 *
 * Recovery. A room's next offset to deliver is kept. A message ahead of
 * it waits while the missing offsets are read from the stream (XRANGE);
 * what the stream no longer has (trimmed, or a Redis that restarted
 * without its data, seen as a new epoch) is announced to members once
 * (ROOM_EV_MISSED) instead of being skipped silently. After a reconnect
 * each room is resubscribed and asked where it is (CL_META), and the
 * offsets said meanwhile are read the same way.
 *
 * Lines this home sent stay on its `out` list until they come back, so
 * a line that was in flight when the link failed is either found in the
 * stream after the reconnect or sent again: none is lost quietly, none
 * is shown twice. A line waiting longer than `hold` (or over the bound)
 * is dropped and its sender told (ROOM_NOT_DELIVERED). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocols/room/cluster.h"

#define HELD_MAX 4096   /* lines waiting for Redis, per worker */
#define EARLY_MAX 4096  /* lines received ahead of a gap, per room */
#define RANGE_COUNT 512 /* stream entries per XRANGE */
#define SUB_BATCH 128   /* channels per SUBSCRIBE after a reconnect */

enum sub_state { SUB_NONE, SUB_WAIT, SUB_SYNC, SUB_LIVE, SUB_LEAVING };

/* A line received ahead of its turn. */
struct cl_entry {
    struct cl_entry *next;
    uint64_t offset;
    size_t len;
    char data[];
};

/* A line this home sent, until it is seen coming back. */
struct cl_out {
    struct cl_out *next;
    uint64_t seq;
    double queued;
    bool sent;            /* on the current link */
    bool line;            /* the sender waits for it (not a JOIN...) */
    unsigned worker;      /* the sender */
    uint64_t id;
    size_t len;
    char data[];
};

struct cl_room {
    char key[ROOM_NAME_MAX + 1]; /* first: the map's key */
    char name[ROOM_NAME_MAX + 1];
    uint8_t sub;          /* enum sub_state */
    bool wanted;          /* the room has a home (members) here */
    bool synced;          /* caught up after (re)subscribing: send */
    bool filling;         /* an XRANGE is out */
    char epoch[32];
    uint64_t next;        /* the next offset to deliver */
    struct cl_entry *early;
    unsigned nearly;
    struct cl_out *out, *out_tail;
    unsigned nout;
};

static bool room_eq(const void *value, const void *key)
{
    return strcmp(value, key) == 0;
}

static struct cl_room *room_find(struct room_cluster *cl, const char *key)
{
    return room_map_get(&cl->rooms, room_hash_str(key), key, room_eq);
}

static struct cl_room *room_get(struct room_cluster *cl, const char *key,
                                const char *name)
{
    struct cl_room *cr = room_find(cl, key);
    if (cr)
        return cr;
    cr = calloc(1, sizeof *cr);
    if (!cr || room_map_put(&cl->rooms, room_hash_str(key), cr) < 0) {
        free(cr);
        return NULL;
    }
    snprintf(cr->key, sizeof cr->key, "%s", key);
    snprintf(cr->name, sizeof cr->name, "%s", name);
    return cr;
}

static void early_clear(struct cl_room *cr)
{
    while (cr->early) {
        struct cl_entry *e = cr->early;
        cr->early = e->next;
        free(e);
    }
    cr->nearly = 0;
}

static void room_delete(struct room_cluster *cl, struct cl_room *cr)
{
    room_map_del(&cl->rooms, room_hash_str(cr->key), cr->key, room_eq);
    early_clear(cr);
    while (cr->out) {
        struct cl_out *o = cr->out;
        cr->out = o->next;
        free(o);
    }
    cl->held -= cr->nout;
    free(cr);
}

/* A reply names its room by key: the room may be gone when it comes. */
struct room_ref {
    struct room_cluster *cl;
    char key[ROOM_NAME_MAX + 1];
    uint64_t n; /* the XRANGE's last offset, the line's serial */
};

static struct room_ref *ref_new(struct room_cluster *cl, struct cl_room *cr,
                                uint64_t n)
{
    struct room_ref *f = malloc(sizeof *f);
    if (f) {
        f->cl = cl;
        memcpy(f->key, cr->key, sizeof f->key);
        f->n = n;
    }
    return f;
}

/* ---- telling members and senders ------------------------------------------ */

static bool is_line(enum room_event_kind k)
{
    return k == ROOM_EV_SAY || k == ROOM_EV_ACTION || k == ROOM_EV_NOTICE ||
           k == ROOM_EV_CTCP;
}

static void announce_missed(struct room_cluster *cl, struct cl_room *cr)
{
    cl->stats.gaps_announced++;
    pc_log(PC_LOG_INFO, "cluster: lines of %s may have been missed",
           cr->name);
    struct room_home *r = room_home_find(cl->core, cr->key);
    struct room_msg *by = room_msg_new(cl->core, OP_EVENT, NULL, 0, NULL, 0);
    if (r && by) {
        snprintf(by->nick, sizeof by->nick, "%.*s", ROOM_NICK_MAX, cl->node);
        room_fanout_at(cl->core, r, by, ROOM_EV_MISSED, NULL, NULL, 0, 0,
                       room_now_ms(cl->core));
    }
    free(by);
}

static void tell_not_delivered(struct room_cluster *cl, struct cl_room *cr,
                               const struct cl_out *o)
{
    cl->stats.not_delivered++;
    if (!o->line)
        return;
    struct room_msg *a = room_msg_new(cl->core, OP_ANSWER, NULL, 0, NULL, 0);
    if (!a)
        return;
    a->kind = ROOM_ANS_CANNOT_SPEAK;
    a->status = ROOM_NOT_DELIVERED;
    memcpy(a->room, cr->name, sizeof a->room);
    room_answer_to(cl->core, o->worker, o->id, a, false);
}

static void out_remove(struct room_cluster *cl, struct cl_room *cr,
                       struct cl_out *o)
{
    struct cl_out *prev = NULL;
    for (struct cl_out *p = cr->out; p; prev = p, p = p->next)
        if (p == o)
            break;
    if (prev)
        prev->next = o->next;
    else
        cr->out = o->next;
    if (cr->out_tail == o)
        cr->out_tail = prev;
    cr->nout--;
    cl->held--;
    free(o);
}

/* ---- delivering ----------------------------------------------------------- */

/* An id for a user of another node that no local user has (local ids
 * keep their top 16 bits for the worker number). */
static uint64_t remote_id(const struct cl_line *ln)
{
    return (room_hash_str(ln->node) ^ room_hash_u64(ln->from)) | 1ULL << 63;
}

static void deliver(struct room_cluster *cl, struct cl_room *cr,
                    const char *data, size_t len)
{
    struct room_core *core = cl->core;
    struct cl_line ln;
    if (cl_line_decode(&ln, data, len) < 0) {
        pc_log(PC_LOG_WARN, "cluster: a malformed line in %s, skipped",
               cr->name);
        return;
    }
    bool ours = ln.run == cl->run && ln.worker == core->id &&
                strcmp(ln.node, cl->node) == 0;
    if (ours)
        for (struct cl_out *o = cr->out; o; o = o->next)
            if (o->seq == ln.seq) {
                out_remove(cl, cr, o);
                break;
            }
    struct room_home *r = room_home_find(core, cr->key);
    if (!r || (ours && !is_line(ln.kind)))
        return; /* nobody here; or shown here when it happened */
    struct room_msg *by = room_msg_new(core, OP_EVENT, NULL, 0, NULL, 0);
    if (!by)
        return;
    by->id = ours ? ln.from : remote_id(&ln);
    memcpy(by->nick, ln.nick, sizeof by->nick);
    memcpy(by->user, ln.user, sizeof by->user);
    memcpy(by->host, ln.host, sizeof by->host);
    uint64_t dedup = ln.dedup ? (ln.dedup ^ room_hash_str(ln.node)) | 1 : 0;
    if (ln.kind == ROOM_EV_TOPIC && !ours) { /* the room's topic follows */
        free(r->topic);
        r->topic = ln.len ? strndup(ln.text, ROOM_TOPIC_MAX) : NULL;
        snprintf(r->topic_by, sizeof r->topic_by, "%s!%s@%s", ln.nick,
                 ln.user, ln.host);
        r->topic_time = ln.time_ms;
    }
    room_fanout_at(core, r, by, ln.kind, ln.target[0] ? ln.target : NULL,
                   ln.text, ln.len, dedup, ln.time_ms);
    free(by);
    cl->stats.delivered++;
    if (!ours)
        cl->stats.remote_delivered++;
}

static void flush_out(struct room_cluster *cl, struct cl_room *cr);
static void fill(struct room_cluster *cl, struct cl_room *cr, uint64_t hi);

/* A room with neither members here nor lines on their way is left. */
static void maybe_leave(struct room_cluster *cl, struct cl_room *cr)
{
    if (cr->wanted || cr->nout || cr->sub == SUB_LEAVING)
        return;
    if (cr->sub == SUB_NONE || !cl_link_up(cl->link)) {
        room_delete(cl, cr);
        return;
    }
    char ch[ROOM_NAME_MAX + 16];
    const char *chans[] = {ch};
    size_t lens[] = {(size_t)cl_room_key(ch, sizeof ch, cr->key, 'c')};
    if (cl_subscribe(cl->link, false, 1, chans, lens) == 0)
        cr->sub = SUB_LEAVING; /* until the confirmation: see cl_room_sub */
    else
        room_delete(cl, cr);
}

/* Delivers what waited in order; at a gap, reads it from the stream. */
static void drain(struct room_cluster *cl, struct cl_room *cr)
{
    while (cr->early && !cr->filling) {
        struct cl_entry *e = cr->early;
        if (e->offset > cr->next) {
            fill(cl, cr, e->offset - 1);
            return;
        }
        cr->early = e->next;
        cr->nearly--;
        if (e->offset == cr->next) {
            deliver(cl, cr, e->data, e->len);
            cr->next++;
        }
        free(e);
    }
    if (cr->filling || cr->sub != SUB_LIVE)
        return;
    cr->synced = true;
    flush_out(cl, cr);
    maybe_leave(cl, cr);
}

static void on_range(struct cl_link *l, const redisReply *r, void *arg)
{
    struct room_ref *f = arg;
    struct room_cluster *cl = f->cl;
    struct cl_room *cr = room_find(cl, f->key);
    uint64_t hi = f->n;
    free(f);
    (void)l;
    if (!cr)
        return;
    cr->filling = false;
    if (!r || cr->sub != SUB_LIVE)
        return; /* the link went: the next resync reads it again */
    if (r->type != REDIS_REPLY_ARRAY) {
        pc_log(PC_LOG_WARN, "cluster: XRANGE of %s: %s", cr->name,
               r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
        return;
    }
    bool missed = false;
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *e = r->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
            e->element[0]->type != REDIS_REPLY_STRING ||
            e->element[1]->type != REDIS_REPLY_ARRAY)
            continue;
        uint64_t off = strtoull(e->element[0]->str, NULL, 10);
        const redisReply *kv = e->element[1];
        if (off < cr->next || kv->elements != 2 ||
            kv->element[1]->type != REDIS_REPLY_STRING)
            continue;
        if (off > cr->next)
            missed = true; /* trimmed before we read it */
        cr->next = off;
        deliver(cl, cr, kv->element[1]->str, kv->element[1]->len);
        cr->next++;
        cl->stats.gaps_filled++;
    }
    if (r->elements == RANGE_COUNT && cr->next <= hi) {
        if (missed)
            announce_missed(cl, cr);
        fill(cl, cr, hi); /* more to read */
        return;
    }
    if (cr->next <= hi) { /* the stream lacks the rest of the range */
        missed = true;
        cr->next = hi + 1;
    }
    if (missed)
        announce_missed(cl, cr);
    drain(cl, cr);
}

/* Reads offsets next..hi of the room's stream. */
static void fill(struct room_cluster *cl, struct cl_room *cr, uint64_t hi)
{
    if (cr->filling)
        return;
    char key[ROOM_NAME_MAX + 16], lo_id[32], hi_id[32], count[16];
    int kn = cl_room_key(key, sizeof key, cr->key, 's');
    int ln = snprintf(lo_id, sizeof lo_id, "%" PRIu64 "-0", cr->next);
    int hn = snprintf(hi_id, sizeof hi_id, "%" PRIu64 "-0", hi);
    int cn = snprintf(count, sizeof count, "%d", RANGE_COUNT);
    const char *argv[] = {"XRANGE", key, lo_id, hi_id, "COUNT", count};
    size_t lens[] = {6, (size_t)kn, (size_t)ln, (size_t)hn, 5, (size_t)cn};
    struct room_ref *f = ref_new(cl, cr, hi);
    if (f && cl_cmd(cl->link, on_range, f, 6, argv, lens) == 0)
        cr->filling = true;
    else
        free(f);
}

/* A message "OFFSET EPOCH PAYLOAD" on the room's channel. */
static void on_message(struct room_cluster *cl, struct cl_room *cr,
                       const char *data, size_t len)
{
    const char *sp1 = memchr(data, ' ', len);
    const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', len - (size_t)(sp1 + 1 - data))
                          : NULL;
    size_t elen = sp2 ? (size_t)(sp2 - sp1 - 1) : 0;
    if (!sp2 || elen == 0 || elen >= sizeof cr->epoch)
        return;
    uint64_t off = strtoull(data, NULL, 10);
    const char *payload = sp2 + 1;
    size_t plen = len - (size_t)(payload - data);
    if (cr->sub == SUB_LIVE &&
        (strlen(cr->epoch) != elen || memcmp(cr->epoch, sp1 + 1, elen))) {
        /* Redis lost the room (restarted without its data) while we were
         * connected to it: what we had not yet seen is gone. */
        announce_missed(cl, cr);
        memcpy(cr->epoch, sp1 + 1, elen);
        cr->epoch[elen] = '\0';
        cr->next = 1;
        early_clear(cr);
    }
    if (cr->sub == SUB_LIVE && !cr->filling && !cr->early &&
        off == cr->next) { /* the usual case: in order */
        deliver(cl, cr, payload, plen);
        cr->next++;
        if (!cr->synced)
            drain(cl, cr);
        return;
    }
    if ((cr->sub == SUB_LIVE && off < cr->next) ||
        (cr->sub != SUB_LIVE && cr->sub != SUB_SYNC && cr->sub != SUB_WAIT))
        return;
    struct cl_entry **p = &cr->early;
    while (*p && (*p)->offset < off)
        p = &(*p)->next;
    if (*p && (*p)->offset == off)
        return;
    struct cl_entry *e = malloc(sizeof *e + plen);
    if (!e)
        return;
    e->offset = off;
    e->len = plen;
    memcpy(e->data, payload, plen);
    e->next = *p;
    *p = e;
    if (++cr->nearly > EARLY_MAX && cr->sub == SUB_LIVE) {
        /* The gap is not filling (a stalled read): give it up, say so. */
        announce_missed(cl, cr);
        cr->next = cr->early->offset;
        cr->filling = false;
    }
    if (cr->sub == SUB_LIVE)
        drain(cl, cr);
}

/* ---- (re)subscribing and catching up -------------------------------------- */

static void on_meta(struct cl_link *l, const redisReply *r, void *arg)
{
    struct room_ref *f = arg;
    struct room_cluster *cl = f->cl;
    struct cl_room *cr = room_find(cl, f->key);
    free(f);
    (void)l;
    if (!cr || !r || cr->sub != SUB_SYNC)
        return;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[0]->type != REDIS_REPLY_INTEGER ||
        r->element[1]->type != REDIS_REPLY_STRING ||
        r->element[1]->len >= sizeof cr->epoch) {
        pc_log(PC_LOG_WARN, "cluster: where is %s: %s", cr->name,
               r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
        return;
    }
    uint64_t o = (uint64_t)r->element[0]->integer;
    const char *e = r->element[1]->str;
    /* What came on the channel since the subscription was published
     * after it; the smallest of it may be at or below o. */
    uint64_t first = cr->early ? cr->early->offset : o + 1;
    uint64_t base = first < o + 1 ? first : o + 1;
    if (!cr->epoch[0]) {
        cr->next = base; /* a new member starts from now */
    } else if (strcmp(e, cr->epoch) != 0) {
        announce_missed(cl, cr); /* Redis started the room again */
        cr->next = 1;
    } else if (o + 1 < cr->next) {
        /* Same epoch, fewer lines: Redis came back from an older copy
         * of its data (a snapshot), and will number some offsets again. */
        announce_missed(cl, cr);
        cr->next = base;
    }
    snprintf(cr->epoch, sizeof cr->epoch, "%s", e);
    cr->sub = SUB_LIVE;
    cr->synced = false;
    if (cr->next <= o)
        fill(cl, cr, o);
    drain(cl, cr);
}

static void sync_room(struct room_cluster *cl, struct cl_room *cr)
{
    char key[ROOM_NAME_MAX + 16];
    const char *argv[] = {key};
    size_t lens[] = {(size_t)cl_room_key(key, sizeof key, cr->key, 'm')};
    struct room_ref *f = ref_new(cl, cr, 0);
    cr->sub = SUB_SYNC;
    if (!f || cl_eval(cl->link, CL_META, on_meta, f, 1, 1, argv, lens) < 0)
        free(f); /* down: the next link up starts again */
}

void cl_room_sub(struct room_cluster *cl, const char *key, const char *data,
                 size_t len, enum cl_sub_kind kind)
{
    struct cl_room *cr = room_find(cl, key);
    if (!cr)
        return;
    switch (kind) {
    case CL_SUBSCRIBED:
        if (cr->sub == SUB_WAIT)
            sync_room(cl, cr);
        return;
    case CL_UNSUBSCRIBED:
        /* Only now may the channel be subscribed again: hiredis forgets
         * a channel's callback when its unsubscription is confirmed. */
        if (cr->sub != SUB_LEAVING)
            return;
        cr->sub = SUB_NONE;
        if (cr->wanted || cr->nout) {
            char ch[ROOM_NAME_MAX + 16];
            const char *chans[] = {ch};
            size_t lens[] = {(size_t)cl_room_key(ch, sizeof ch, cr->key, 'c')};
            if (cl_subscribe(cl->link, true, 1, chans, lens) == 0)
                cr->sub = SUB_WAIT;
        } else {
            room_delete(cl, cr);
        }
        return;
    case CL_MESSAGE:
        on_message(cl, cr, data, len);
        return;
    }
}

static void subscribe_one(struct room_cluster *cl, struct cl_room *cr)
{
    if (cr->sub != SUB_NONE || !cl_link_up(cl->link))
        return;
    char ch[ROOM_NAME_MAX + 16];
    const char *chans[] = {ch};
    size_t lens[] = {(size_t)cl_room_key(ch, sizeof ch, cr->key, 'c')};
    if (cl_subscribe(cl->link, true, 1, chans, lens) == 0)
        cr->sub = SUB_WAIT;
}

void cl_room_home_made(struct room_cluster *cl, struct room_home *r)
{
    struct cl_room *cr = room_get(cl, r->key, r->name);
    if (!cr) {
        pc_log(PC_LOG_ERR, "cluster: out of memory for room %s", r->name);
        return;
    }
    cr->wanted = true;
    subscribe_one(cl, cr);
}

void cl_room_home_gone(struct room_cluster *cl, const char *key)
{
    struct cl_room *cr = room_find(cl, key);
    if (!cr)
        return;
    cr->wanted = false;
    maybe_leave(cl, cr);
}

void cl_rooms_up(struct room_cluster *cl)
{
    const char *chans[SUB_BATCH];
    size_t lens[SUB_BATCH];
    char (*names)[ROOM_NAME_MAX + 16] = malloc(SUB_BATCH * sizeof *names);
    struct cl_room *batch[SUB_BATCH];
    int n = 0;
    if (!names)
        return;
    for (size_t i = 0; i <= cl->rooms.cap; i++) {
        struct cl_room *cr = i < cl->rooms.cap ? cl->rooms.slots[i].value
                                               : NULL;
        if (cr && cr->sub == SUB_NONE) {
            lens[n] = (size_t)cl_room_key(names[n], sizeof names[n], cr->key,
                                          'c');
            chans[n] = names[n];
            batch[n++] = cr;
        }
        if (n == SUB_BATCH || (i == cl->rooms.cap && n)) {
            bool ok = cl_subscribe(cl->link, true, n, chans, lens) == 0;
            for (int k = 0; k < n; k++)
                batch[k]->sub = ok ? SUB_WAIT : SUB_NONE;
            n = 0;
        }
    }
    free(names);
}

void cl_rooms_down(struct room_cluster *cl)
{
    for (size_t i = 0; i < cl->rooms.cap; i++) {
        struct cl_room *cr = cl->rooms.slots[i].value;
        if (!cr)
            continue;
        cr->sub = SUB_NONE;
        cr->filling = false;
        cr->synced = false;
        early_clear(cr); /* the stream has them: read again after */
        for (struct cl_out *o = cr->out; o; o = o->next)
            o->sent = false; /* maybe executed: the resync will tell */
    }
    /* Rooms nobody needs any more go (not while iterating the map). */
    for (size_t i = 0; i < cl->rooms.cap; i++) {
        struct cl_room *cr = cl->rooms.slots[i].value;
        if (cr && !cr->wanted && !cr->nout) {
            room_delete(cl, cr);
            i = (size_t)-1; /* the map moved: look again from the start */
        }
    }
}

/* ---- publishing ------------------------------------------------------------ */

static void on_published(struct cl_link *l, const redisReply *r, void *arg)
{
    struct room_ref *f = arg;
    struct room_cluster *cl = f->cl;
    uint64_t seq = f->n;
    struct cl_room *cr = room_find(cl, f->key);
    free(f);
    (void)l;
    if (!r) { /* in doubt: it stays on `out` and the resync decides */
        cl->stats.publish_failed++;
        return;
    }
    if (r->type != REDIS_REPLY_ERROR) {
        cl->stats.published++;
        return;
    }
    pc_log(PC_LOG_WARN, "cluster: a line of %s refused by Redis: %s",
           cr ? cr->name : "?", r->str);
    cl->stats.publish_failed++;
    for (struct cl_out *o = cr ? cr->out : NULL; o; o = o->next)
        if (o->seq == seq) {
            tell_not_delivered(cl, cr, o);
            out_remove(cl, cr, o);
            break;
        }
}

static void send_out(struct room_cluster *cl, struct cl_room *cr,
                     struct cl_out *o)
{
    char meta[ROOM_NAME_MAX + 16], stream[ROOM_NAME_MAX + 16];
    char ch[ROOM_NAME_MAX + 16], hist[24];
    int mn = cl_room_key(meta, sizeof meta, cr->key, 'm');
    int sn = cl_room_key(stream, sizeof stream, cr->key, 's');
    int cn = cl_room_key(ch, sizeof ch, cr->key, 'c');
    int hn = snprintf(hist, sizeof hist, "%" PRId64, cl->history);
    const char *argv[] = {meta, stream, o->data, hist, ch};
    size_t lens[] = {(size_t)mn, (size_t)sn, o->len, (size_t)hn, (size_t)cn};
    struct room_ref *f = ref_new(cl, cr, o->seq);
    if (f && cl_eval(cl->link, CL_PUBLISH, on_published, f, 2, 5, argv,
                     lens) == 0)
        o->sent = true;
    else
        free(f);
}

static void flush_out(struct room_cluster *cl, struct cl_room *cr)
{
    for (struct cl_out *o = cr->out; o; o = o->next)
        if (!o->sent)
            send_out(cl, cr, o);
}

bool cl_room_publish(struct room_cluster *cl, struct room_home *r,
                     const struct room_msg *by, enum room_event_kind kind,
                     const char *target, const char *text, size_t len,
                     uint64_t dedup)
{
    bool line = is_line(kind);
    /* Modes and kicks stay with the node where they were decided. */
    if (!line && kind != ROOM_EV_JOIN && kind != ROOM_EV_PART &&
        kind != ROOM_EV_QUIT && kind != ROOM_EV_NICK && kind != ROOM_EV_TOPIC)
        return false;
    struct room_core *core = cl->core;
    struct cl_line ln = {
        .run = cl->run, .worker = core->id, .seq = ++cl->seq, .kind = kind,
        .time_ms = room_now_ms(core), .dedup = dedup, .from = by->id,
        .text = text ? text : "", .len = text ? len : 0};
    snprintf(ln.node, sizeof ln.node, "%s", cl->node);
    memcpy(ln.nick, by->nick, sizeof ln.nick);
    memcpy(ln.user, by->user, sizeof ln.user);
    memcpy(ln.host, by->host, sizeof ln.host);
    snprintf(ln.target, sizeof ln.target, "%s", target ? target : "");
    struct cl_room *cr = room_get(cl, r->key, r->name);
    char *payload = NULL;
    size_t plen = 0;
    struct cl_out *o = NULL;
    if (cr && cl->held < HELD_MAX &&
        cl_line_encode(&ln, &payload, &plen) == 0)
        o = malloc(sizeof *o + plen);
    if (!o) {
        struct cl_out tmp = {.line = line, .worker = by->worker, .id = by->id};
        free(payload);
        if (cr)
            tell_not_delivered(cl, cr, &tmp);
        return line;
    }
    *o = (struct cl_out){.seq = ln.seq, .queued = pc_worker_now(core->w),
                         .line = line, .worker = by->worker, .id = by->id,
                         .len = plen};
    memcpy(o->data, payload, plen);
    free(payload);
    if (cr->out_tail)
        cr->out_tail->next = o;
    else
        cr->out = o;
    cr->out_tail = o;
    cr->nout++;
    cl->held++;
    if (cr->sub == SUB_LIVE && cr->synced)
        send_out(cl, cr, o);
    else
        cl->stats.lines_held++;
    subscribe_one(cl, cr); /* a room with no members here still needs it */
    return line;
}

/* ---- time ------------------------------------------------------------------ */

void cl_rooms_tick(struct room_cluster *cl)
{
    double now = pc_worker_now(cl->core->w);
    for (size_t i = 0; i < cl->rooms.cap; i++) {
        struct cl_room *cr = cl->rooms.slots[i].value;
        if (!cr)
            continue;
        for (struct cl_out *o = cr->out, *next; o; o = next) {
            next = o->next;
            if (!o->sent && now - o->queued > cl->hold) {
                tell_not_delivered(cl, cr, o);
                out_remove(cl, cr, o);
            }
        }
    }
}

void cl_rooms_free(struct room_cluster *cl)
{
    for (size_t i = 0; i < cl->rooms.cap; i++) {
        struct cl_room *cr = cl->rooms.slots[i].value;
        if (!cr)
            continue;
        early_clear(cr);
        while (cr->out) {
            struct cl_out *o = cr->out;
            cr->out = o->next;
            free(o);
        }
        free(cr);
    }
    room_map_free(&cl->rooms);
}
