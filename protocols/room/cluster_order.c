/* A room's lines in offset order (see cluster.h). The room's next offset
 * to deliver is kept. A message ahead of it waits while the missing
 * offsets are read from the stream (XRANGE); what the stream no longer
 * has (trimmed, or a Redis that restarted without its data, seen as a
 * new epoch) is announced to members once (ROOM_EV_MISSED) instead of
 * being skipped quietly. After a (re)subscription the room is asked where
 * it is (CL_META), and what was said meanwhile is read the same way. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocols/room/cluster_room.h"

static void fill(struct room_cluster *cl, struct cl_room *cr, uint64_t hi);

void cl_room_missed(struct room_cluster *cl, struct cl_room *cr)
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


/* ---- delivering ----------------------------------------------------------- */

/* An id for a user of another node that no local user has (local ids
 * keep their top 16 bits for the worker number). */
static uint64_t remote_id(const struct cl_line *ln)
{
    return (room_hash_str(ln->node) ^ room_hash_u64(ln->from)) | 1ULL << 63;
}

/* Whether the line with this origin was delivered lately, and if not,
 * remembers it. A home sends a line again when it did not see it come
 * back before the link failed; if Redis lost it, other nodes may have
 * shown it already, under an offset of the old epoch. */
static bool seen_lately(struct cl_room *cr, const struct cl_line *ln)
{
    uint64_t h = room_hash_str(ln->node) ^
                 room_hash_u64(ln->seq ^ (uint64_t)ln->run << 32 ^
                               (uint64_t)ln->worker << 24);
    h |= 1; /* 0 marks an empty slot */
    for (unsigned i = 0; i < CL_RECENT; i++)
        if (cr->recent[i] == h)
            return true;
    cr->recent[cr->recent_at] = h;
    cr->recent_at = (cr->recent_at + 1) % CL_RECENT;
    return false;
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
    if (seen_lately(cr, &ln))
        return;
    bool ours = ln.run == cl->run && ln.worker == core->id &&
                strcmp(ln.node, cl->node) == 0;
    if (ours)
        for (struct cl_out *o = cr->out; o; o = o->next)
            if (o->seq == ln.seq) {
                cl_room_out_remove(cl, cr, o);
                break;
            }
    struct room_home *r = room_home_find(core, cr->key);
    if (!r || (ours && !cl_is_line(ln.kind)))
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
    if (cl_is_line(ln.kind))
        cl_stats_lag(&cl->stats, room_now_ms(core) - ln.time_ms);
    if (!ours)
        cl->stats.remote_delivered++;
}

/* Delivers what waited in order; at a gap, reads it from the stream. */
void cl_order_drain(struct room_cluster *cl, struct cl_room *cr)
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
    cl_room_flush(cl, cr);
    cl_room_let_in(cl, cr);
    cl_room_maybe_leave(cl, cr);
}

static void on_range(struct cl_link *l, const redisReply *r, void *arg)
{
    struct room_ref *f = arg;
    struct room_cluster *cl = f->cl;
    struct cl_room *cr = cl_room_find(cl, f->key);
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
            cl_room_missed(cl, cr);
        fill(cl, cr, hi); /* more to read */
        return;
    }
    if (cr->next <= hi) { /* the stream lacks the rest of the range */
        missed = true;
        cr->next = hi + 1;
    }
    if (missed)
        cl_room_missed(cl, cr);
    cl_order_drain(cl, cr);
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
    struct room_ref *f = cl_room_ref(cl, cr, hi);
    if (f && cl_cmd(cl->link, on_range, f, 6, argv, lens) == 0)
        cr->filling = true;
    else
        free(f);
}

/* One line of a message, offset off: delivered now if it is the next,
 * else kept in order until the gap before it is filled. True when the
 * room must be drained (cl_order_drain) once the message is done. */
static bool take_line(struct room_cluster *cl, struct cl_room *cr,
                      const char *epoch, size_t elen, uint64_t off,
                      const char *payload, size_t plen)
{
    if (cr->sub == SUB_LIVE &&
        (strlen(cr->epoch) != elen || memcmp(cr->epoch, epoch, elen) != 0)) {
        /* Redis lost the room (restarted without its data) while we were
         * connected to it: what we had not yet seen is gone. */
        cl_room_missed(cl, cr);
        memcpy(cr->epoch, epoch, elen);
        cr->epoch[elen] = '\0';
        cr->next = 1;
        cl_room_early_clear(cr);
    }
    if (cr->sub == SUB_LIVE && !cr->filling && !cr->early &&
        off == cr->next) { /* the usual case: in order */
        deliver(cl, cr, payload, plen);
        cr->next++;
        return !cr->synced;
    }
    if ((cr->sub == SUB_LIVE && off < cr->next) ||
        (cr->sub != SUB_LIVE && cr->sub != SUB_SYNC && cr->sub != SUB_WAIT))
        return false;
    struct cl_entry **p = &cr->early;
    while (*p && (*p)->offset < off)
        p = &(*p)->next;
    if (*p && (*p)->offset == off)
        return false;
    struct cl_entry *e = malloc(sizeof *e + plen);
    if (!e)
        return false;
    e->offset = off;
    e->len = plen;
    memcpy(e->data, payload, plen);
    e->next = *p;
    *p = e;
    if (++cr->nearly > EARLY_MAX && cr->sub == SUB_LIVE) {
        /* The gap is not filling (a stalled read): give it up, say so. */
        cl_room_missed(cl, cr);
        cr->next = cr->early->offset;
        cr->filling = false;
    }
    return cr->sub == SUB_LIVE;
}

/* Digits at *p up to a delimiter (or end), as a number; *p moved past
 * them. Nothing else is a number here: no sign, no space, no overflow. */
static bool digits(const char **p, const char *end, uint64_t *out)
{
    const char *s = *p;
    uint64_t v = 0;
    while (s < end && *s >= '0' && *s <= '9') {
        if (v > (UINT64_MAX - 9) / 10)
            return false;
        v = v * 10 + (uint64_t)(*s++ - '0');
    }
    if (s == *p)
        return false;
    *p = s;
    *out = v;
    return true;
}

/* A message "FIRST EPOCH COUNT LEN,...,LEN PAYLOAD..." on the room's
 * channel (cluster_lua.c): COUNT lines numbered from FIRST. Checked like
 * any network input: a malformed message is dropped whole (a gap the
 * next line's offset reveals and the stream fills). */
void cl_order_message(struct room_cluster *cl, struct cl_room *cr,
                      const char *data, size_t len)
{
    const char *p = data, *end = data + len;
    uint64_t first, count, plen[CL_BATCH_MAX], total = 0;
    if (!digits(&p, end, &first) || p == end || *p++ != ' ')
        return;
    const char *epoch = p, *sp = memchr(p, ' ', (size_t)(end - p));
    size_t elen = sp ? (size_t)(sp - p) : 0;
    if (!elen || elen >= sizeof cr->epoch)
        return;
    p = sp + 1;
    if (!digits(&p, end, &count) || count < 1 || count > CL_BATCH_MAX ||
        p == end || *p++ != ' ')
        return;
    for (uint64_t i = 0; i < count; i++) {
        if (!digits(&p, end, &plen[i]) || p == end ||
            *p++ != (i + 1 < count ? ',' : ' ') ||
            plen[i] > (uint64_t)(end - data))
            return;
        total += plen[i];
    }
    if (total != (uint64_t)(end - p))
        return;
    bool drain = false;
    for (uint64_t i = 0; i < count; i++) {
        drain |= take_line(cl, cr, epoch, elen, first + i, p, (size_t)plen[i]);
        p += plen[i];
    }
    if (drain)
        cl_order_drain(cl, cr); /* last: it may free cr */
}

/* ---- (re)subscribing and catching up -------------------------------------- */

static void on_meta(struct cl_link *l, const redisReply *r, void *arg)
{
    struct room_ref *f = arg;
    struct room_cluster *cl = f->cl;
    struct cl_room *cr = cl_room_find(cl, f->key);
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
        cl_room_missed(cl, cr); /* Redis started the room again */
        cr->next = 1;
    } else if (o + 1 < cr->next) {
        /* Same epoch, fewer lines: Redis came back from an older copy
         * of its data (a snapshot), and will number some offsets again. */
        cl_room_missed(cl, cr);
        cr->next = base;
    }
    snprintf(cr->epoch, sizeof cr->epoch, "%s", e);
    cr->sub = SUB_LIVE;
    cr->synced = false;
    if (cr->next <= o)
        fill(cl, cr, o);
    cl_order_drain(cl, cr);
}

void cl_order_sync(struct room_cluster *cl, struct cl_room *cr)
{
    char key[ROOM_NAME_MAX + 16];
    const char *argv[] = {key};
    size_t lens[] = {(size_t)cl_room_key(key, sizeof key, cr->key, 'm')};
    struct room_ref *f = cl_room_ref(cl, cr, 0);
    cr->sub = SUB_SYNC;
    if (!f || cl_eval(cl->link, CL_META, on_meta, f, 1, 1, argv, lens) < 0)
        free(f); /* down: the next link up starts again */
}

