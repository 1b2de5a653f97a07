/* A room's channel and the lines its home sent (see cluster.h; the
 * order they are delivered in is cluster_order.c's). A room is
 * subscribed while it has members on this node or lines of this home
 * on their way; its `out` list keeps those lines until they are seen
 * coming back, so a line in flight when the link failed is found in
 * the stream after the reconnect or sent again. A line waiting longer
 * than `hold` (or past the bound) is dropped and its sender told
 * (ROOM_NOT_DELIVERED). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocols/room/cluster_room.h"

static bool room_eq(const void *value, const void *key)
{
    return strcmp(value, key) == 0;
}

struct cl_room *cl_room_find(struct room_cluster *cl, const char *key)
{
    return room_map_get(&cl->rooms, room_hash_str(key), key, room_eq);
}

static struct cl_room *cl_room_get(struct room_cluster *cl, const char *key,
                                const char *name)
{
    struct cl_room *cr = cl_room_find(cl, key);
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

void cl_room_early_clear(struct cl_room *cr)
{
    while (cr->early) {
        struct cl_entry *e = cr->early;
        cr->early = e->next;
        free(e);
    }
    cr->nearly = 0;
}

static void drop_room_lists(struct cl_room *cr)
{
    cl_room_early_clear(cr);
    while (cr->out) {
        struct cl_out *o = cr->out;
        cr->out = o->next;
        free(o);
    }
    while (cr->joins) {
        struct cl_join *j = cr->joins;
        cr->joins = j->next;
        free(j->m);
        free(j);
    }
}

static void cl_room_delete(struct room_cluster *cl, struct cl_room *cr)
{
    if (cr->flush_queued)
        for (struct cl_room **p = &cl->flush_list; *p; p = &(*p)->flush_next)
            if (*p == cr) {
                *p = cr->flush_next;
                break;
            }
    room_map_del(&cl->rooms, room_hash_str(cr->key), cr->key, room_eq);
    drop_room_lists(cr);
    cl->held -= cr->nout;
    free(cr);
}

struct room_ref *cl_room_ref(struct room_cluster *cl, struct cl_room *cr,
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


/* ---- telling senders ------------------------------------------------------ */

bool cl_is_line(enum room_event_kind k)
{
    return k == ROOM_EV_SAY || k == ROOM_EV_ACTION || k == ROOM_EV_NOTICE ||
           k == ROOM_EV_CTCP;
}

static void cl_room_not_delivered(struct room_cluster *cl, struct cl_room *cr,
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

void cl_room_out_remove(struct room_cluster *cl, struct cl_room *cr,
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

/* A room with neither members here nor lines on their way is left. */
static void subscribe_one(struct room_cluster *cl, struct cl_room *cr);

bool cl_room_hold_join(struct room_cluster *cl, const struct room_msg *m)
{
    if (!cl_link_up(cl->link))
        return false; /* serve the node's own members meanwhile */
    char key[ROOM_NAME_MAX + 1];
    room_fold(key, m->room, sizeof key);
    struct cl_room *cr = cl_room_get(cl, key, m->room);
    if (!cr || (cr->sub == SUB_LIVE && cr->synced))
        return false;
    struct cl_join *j = malloc(sizeof *j);
    struct room_msg *copy = room_msg_copy(m);
    if (!j || !copy) {
        free(j);
        free(copy);
        return false;
    }
    j->m = copy;
    struct cl_join **p = &cr->joins;
    while (*p)
        p = &(*p)->next;
    j->next = NULL;
    *p = j;
    subscribe_one(cl, cr);
    return true;
}

void cl_room_let_in(struct room_cluster *cl, struct cl_room *cr)
{
    struct cl_join *j = cr->joins;
    cr->joins = NULL;
    while (j) {
        struct cl_join *next = j->next;
        room_home_handle(cl->core, j->m); /* on_join: not held now */
        free(j->m);
        free(j);
        j = next;
    }
}

void cl_room_maybe_leave(struct room_cluster *cl, struct cl_room *cr)
{
    if (cr->wanted || cr->nout || cr->joins || cr->sub == SUB_LEAVING)
        return;
    if (cr->sub == SUB_NONE || !cl_link_up(cl->link)) {
        cl_room_delete(cl, cr);
        return;
    }
    char ch[ROOM_NAME_MAX + 16];
    const char *chans[] = {ch};
    size_t lens[] = {(size_t)cl_room_key(ch, sizeof ch, cr->key, 'c')};
    if (cl_subscribe(cl->link, false, 1, chans, lens) == 0)
        cr->sub = SUB_LEAVING; /* until the confirmation: see cl_room_sub */
    else
        cl_room_delete(cl, cr);
}

void cl_room_sub(struct room_cluster *cl, const char *key, const char *data,
                 size_t len, enum cl_sub_kind kind)
{
    struct cl_room *cr = cl_room_find(cl, key);
    if (!cr)
        return;
    switch (kind) {
    case CL_SUBSCRIBED:
        if (cr->sub == SUB_WAIT)
            cl_order_sync(cl, cr);
        return;
    case CL_UNSUBSCRIBED:
        /* Only now may the channel be subscribed again: hiredis forgets
         * a channel's callback when its unsubscription is confirmed. */
        if (cr->sub != SUB_LEAVING)
            return;
        cr->sub = SUB_NONE;
        if (cr->wanted || cr->nout || cr->joins) {
            char ch[ROOM_NAME_MAX + 16];
            const char *chans[] = {ch};
            size_t lens[] = {(size_t)cl_room_key(ch, sizeof ch, cr->key, 'c')};
            if (cl_subscribe(cl->link, true, 1, chans, lens) == 0)
                cr->sub = SUB_WAIT;
        } else {
            cl_room_delete(cl, cr);
        }
        return;
    case CL_MESSAGE:
        cl_order_message(cl, cr, data, len);
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
    struct cl_room *cr = cl_room_get(cl, r->key, r->name);
    if (!cr) {
        pc_log(PC_LOG_ERR, "cluster: out of memory for room %s", r->name);
        return;
    }
    cr->wanted = true;
    subscribe_one(cl, cr);
}

void cl_room_home_gone(struct room_cluster *cl, const char *key)
{
    struct cl_room *cr = cl_room_find(cl, key);
    if (!cr)
        return;
    cr->wanted = false;
    cl_room_maybe_leave(cl, cr);
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
        cl_room_early_clear(cr); /* the stream has them: read again after */
        cl_room_let_in(cl, cr); /* down: this node's members still meet */
        for (struct cl_out *o = cr->out; o; o = o->next)
            o->sent = false; /* maybe executed: the resync will tell */
    }
    /* Rooms nobody needs any more go (not while iterating the map). */
    for (size_t i = 0; i < cl->rooms.cap; i++) {
        struct cl_room *cr = cl->rooms.slots[i].value;
        if (cr && !cr->wanted && !cr->nout && !cr->joins) {
            cl_room_delete(cl, cr);
            i = (size_t)-1; /* the map moved: look again from the start */
        }
    }
}

/* ---- publishing ------------------------------------------------------------ */

static void on_published(struct cl_link *l, const redisReply *r, void *arg)
{
    struct room_ref *f = arg;
    struct room_cluster *cl = f->cl;
    uint64_t first = f->n, last = f->last, count = f->count;
    struct cl_room *cr = cl_room_find(cl, f->key);
    free(f);
    (void)l;
    if (!r) { /* in doubt: they stay on `out` and the resync decides */
        cl->stats.publish_failed += count;
        return;
    }
    if (r->type != REDIS_REPLY_ERROR) {
        cl->stats.published += count;
        return;
    }
    pc_log(PC_LOG_WARN, "cluster: %" PRIu64 " line(s) of %s refused by "
           "Redis: %s", count, cr ? cr->name : "?", r->str);
    cl->stats.publish_failed += count;
    for (struct cl_out *o = cr ? cr->out : NULL, *next; o; o = next) {
        next = o->next;
        if (o->sent && o->seq >= first && o->seq <= last) {
            cl_room_not_delivered(cl, cr, o);
            cl_room_out_remove(cl, cr, o);
        }
    }
}

/* Sends the unsent lines from o on (CL_BATCH_MAX at most) in one
 * CL_PUBLISH; returns the first line left, or NULL. The sent lines of a
 * room are always the first of its `out` list (all are unsent again
 * when the link fails), so a batch is named by its first and last
 * serials. */
static struct cl_out *send_batch(struct room_cluster *cl, struct cl_room *cr,
                                 struct cl_out *o)
{
    char meta[ROOM_NAME_MAX + 16], stream[ROOM_NAME_MAX + 16];
    char ch[ROOM_NAME_MAX + 16], hist[24];
    const char *argv[2 + 2 + CL_BATCH_MAX];
    size_t lens[2 + 2 + CL_BATCH_MAX];
    lens[0] = (size_t)cl_room_key(meta, sizeof meta, cr->key, 'm');
    lens[1] = (size_t)cl_room_key(stream, sizeof stream, cr->key, 's');
    lens[3] = (size_t)cl_room_key(ch, sizeof ch, cr->key, 'c');
    lens[2] = (size_t)snprintf(hist, sizeof hist, "%" PRId64, cl->history);
    argv[0] = meta, argv[1] = stream, argv[2] = hist, argv[3] = ch;
    struct cl_out *batch[CL_BATCH_MAX];
    unsigned n = 0;
    for (; o && n < CL_BATCH_MAX; o = o->next)
        if (!o->sent) {
            batch[n] = o;
            argv[4 + n] = o->data;
            lens[4 + n] = o->len;
            n++;
        }
    if (!n)
        return NULL;
    struct room_ref *f = cl_room_ref(cl, cr, batch[0]->seq);
    if (!f)
        return NULL;
    f->last = batch[n - 1]->seq;
    f->count = n;
    if (cl_eval(cl->link, CL_PUBLISH, on_published, f, 2, (int)(4 + n),
                argv, lens) < 0) {
        free(f);
        return NULL; /* down: the resync sends them */
    }
    for (unsigned i = 0; i < n; i++)
        batch[i]->sent = true;
    return o;
}

void cl_room_flush(struct room_cluster *cl, struct cl_room *cr)
{
    struct cl_out *o = cr->out;
    while (o)
        o = send_batch(cl, cr, o);
}

void cl_rooms_flush_timer(struct pc_timer *t)
{
    cl_rooms_flush(t->data);
}

void cl_rooms_flush_prepare(struct ev_loop *loop, ev_prepare *w, int revents)
{
    (void)revents;
    ev_prepare_stop(loop, w);
    cl_rooms_flush(w->data);
}

void cl_rooms_flush(struct room_cluster *cl)
{
    while (cl->flush_list) {
        struct cl_room *cr = cl->flush_list;
        cl->flush_list = cr->flush_next;
        cr->flush_queued = false;
        if (cr->sub == SUB_LIVE && cr->synced)
            cl_room_flush(cl, cr);
    }
}

/* cr has a line to send: it goes with the room's others at the end of
 * this loop pass, or after batch_delay. */
static void queue_flush(struct room_cluster *cl, struct cl_room *cr)
{
    if (cr->flush_queued)
        return;
    cr->flush_queued = true;
    bool first = !cl->flush_list; /* else the flush is on its way */
    cr->flush_next = cl->flush_list; /* rooms in any order: each its own */
    cl->flush_list = cr;
    if (first && cl->batch_delay > 0)
        pc_timer_start(cl->core->w, &cl->batch, cl->batch_delay);
    else if (first)
        ev_prepare_start(pc_worker_loop(cl->core->w), &cl->batch_now);
}

bool cl_room_publish(struct room_cluster *cl, struct room_home *r,
                     const struct room_msg *by, enum room_event_kind kind,
                     const char *target, const char *text, size_t len,
                     uint64_t dedup)
{
    bool line = cl_is_line(kind);
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
    struct cl_room *cr = cl_room_get(cl, r->key, r->name);
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
            cl_room_not_delivered(cl, cr, &tmp);
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
        queue_flush(cl, cr);
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
                cl_room_not_delivered(cl, cr, o);
                cl_room_out_remove(cl, cr, o);
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
        drop_room_lists(cr);
        free(cr);
    }
    room_map_free(&cl->rooms);
}

