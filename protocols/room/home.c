/* What a room's home worker decides: who is in, who may speak, modes,
 * topic, bans, invitations, kicks; and the numbering of every event,
 * sent once to each worker with members. One home per room and FIFO
 * links between workers give every member the same order. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocols/room/cluster.h"

static bool key_eq(const void *value, const void *key)
{
    return strcmp(value, key) == 0; /* the key is the first member */
}

static bool member_eq(const void *value, const void *key)
{
    return ((const struct room_member *)value)->id == *(const uint64_t *)key;
}

struct room_home *room_home_find(struct room_core *core, const char *name)
{
    char key[ROOM_NAME_MAX + 1];
    room_fold(key, name, sizeof key);
    return room_map_get(&core->homes, room_hash_str(key), key, key_eq);
}

struct room_member *room_member_find(struct room_home *r, uint64_t id)
{
    return room_map_get(&r->by_id, room_hash_u64(id), &id, member_eq);
}

struct room_member *room_member_by_nick(struct room_home *r,
                                          const char *nick)
{
    char key[ROOM_NICK_MAX + 1], other[ROOM_NICK_MAX + 1];
    room_fold(key, nick, sizeof key);
    for (size_t i = 0; i < r->by_id.cap; i++) {
        struct room_member *mb = r->by_id.slots[i].value;
        if (!mb)
            continue;
        room_fold(other, mb->nick, sizeof other);
        if (strcmp(key, other) == 0)
            return mb;
    }
    return NULL;
}

static void home_free(struct room_home *r)
{
    for (size_t i = 0; i < r->by_id.cap; i++) {
        struct room_member *mb = r->by_id.slots[i].value;
        if (mb)
            free(mb->realname);
        free(mb);
    }
    room_map_free(&r->by_id);
    struct room_core *core = r->core;
    pc_metric_add(core->rooms, 0, -1);
    pc_metric_add(core->members, 0, -(int64_t)r->members);
    free(r->topic);
    free(r->bans);
    free(r->invited);
    free(r);
}

void room_homes_fini(struct room_core *core)
{
    for (size_t i = 0; i < core->homes.cap; i++)
        if (core->homes.slots[i].value)
            home_free(core->homes.slots[i].value);
    room_map_free(&core->homes);
}

static void member_remove(struct room_core *core, struct room_home **room,
                          struct room_member *mb)
{
    struct room_home *r = *room;
    room_map_del(&r->by_id, room_hash_u64(mb->id), &mb->id, member_eq);
    r->members--;
    r->per_worker[mb->worker]--;
    pc_metric_add(core->members, 0, -1);
    if (core->cluster)
        cl_member(core->cluster, r, mb, true);
    free(mb->realname);
    free(mb);
    if (r->members == 0) {
        room_map_del(&core->homes, room_hash_str(r->key), r->key, key_eq);
        if (core->cluster)
            cl_room_home_gone(core->cluster, r->key);
        home_free(r);
        *room = NULL;
    }
}

/* ---- numbering and fan-out --------------------------------------------- */

/* One event of room r, by the user described in `by` (its id, nick, user,
 * host), sent once to every worker with members, in the order of the
 * calls. */
void room_fanout(struct room_core *core, struct room_home *r,
                 const struct room_msg *by, enum room_event_kind kind,
                 const char *target, const char *text, size_t len,
                 uint64_t dedup)
{
    if (core->cluster && cl_room_publish(core->cluster, r, by, kind, target,
                                         text, len, dedup))
        return; /* shown when Redis has numbered it */
    room_fanout_at(core, r, by, kind, target, text, len, dedup,
                   room_now_ms(core));
}

void room_fanout_at(struct room_core *core, struct room_home *r,
                    const struct room_msg *by, enum room_event_kind kind,
                    const char *target, const char *text, size_t len,
                    uint64_t dedup, int64_t time_ms)
{
    r->events++;
    struct room_msg *t = room_msg_new(core, OP_EVENT, text, len, NULL, 0);
    if (!t)
        return;
    t->kind = (uint8_t)kind;
    t->id = by->id;
    memcpy(t->nick, by->nick, sizeof t->nick);
    memcpy(t->user, by->user, sizeof t->user);
    memcpy(t->host, by->host, sizeof t->host);
    memcpy(t->room, r->name, sizeof t->room);
    if (target)
        snprintf(t->other, sizeof t->other, "%s", target);
    t->dedup = dedup;
    t->time_ms = time_ms;
    size_t size = sizeof *t + len + 2;
    for (unsigned i = 0; i < core->nworkers; i++) {
        if (!r->per_worker[i] || i == core->id)
            continue;
        struct room_msg *copy = malloc(size);
        if (!copy) {
            pc_log(PC_LOG_ERR, "room: out of memory for a line of %s",
                   r->name);
            continue;
        }
        memcpy(copy, t, size);
        room_send(core, i, copy);
    }
    if (r->per_worker[core->id])
        room_send(core, core->id, t);
    else
        free(t);
}

/* An answer from the home to the user m came from. */
void room_home_answer(struct room_core *core, const struct room_msg *m,
                   enum room_answer_kind kind, enum room_status status,
                   struct room_msg *a)
{
    if (!a)
        a = room_msg_new(core, OP_ANSWER, NULL, 0, NULL, 0);
    if (!a)
        return;
    a->kind = (uint8_t)kind;
    a->status = (uint8_t)status;
    memcpy(a->room, m->room, sizeof a->room);
    if (!a->nick[0])
        memcpy(a->nick, m->other, sizeof a->nick);
    room_answer_to(core, m->worker, m->id, a, true);
}

/* "PA nick user host realname\n" per member, sorted by nick. */
static int by_nick(const void *a, const void *b)
{
    return strcmp((*(struct room_member *const *)a)->nick,
                  (*(struct room_member *const *)b)->nick);
}

struct room_msg *room_pack_members(struct room_core *core,
                                     struct room_home *r)
{
    struct room_member **all = malloc((r->members + 1) * sizeof *all);
    size_t line = 8 + ROOM_NICK_MAX + ROOM_USER_MAX + ROOM_HOST_MAX +
                  ROOM_REAL_MAX;
    char *text = malloc(r->members * line + 1);
    struct room_msg *a = NULL;
    if (all && text) {
        size_t n = 0, len = 0;
        for (size_t i = 0; i < r->by_id.cap; i++)
            if (r->by_id.slots[i].value)
                all[n++] = r->by_id.slots[i].value;
        qsort(all, n, sizeof *all, by_nick);
        for (size_t i = 0; i < n; i++)
            len += (size_t)snprintf(text + len, line + 1, "%u%d %s %s %s %.*s\n",
                                    all[i]->prefix, all[i]->away,
                                    all[i]->nick, all[i]->user, all[i]->host,
                                    ROOM_REAL_MAX,
                                    all[i]->realname ? all[i]->realname : "");
        const char *topic = r->topic ? r->topic : "";
        a = room_msg_new(core, OP_ANSWER, text, len, topic, strlen(topic));
        if (a) {
            snprintf(a->extra, sizeof a->extra, "%s", r->topic_by);
            a->time_ms = r->topic_time;
            a->time2 = r->created;
        }
    }
    free(all);
    free(text);
    return a;
}

/* ---- joining and leaving ------------------------------------------------ */

static bool banned(const struct room_home *r, const struct room_msg *m)
{
    char who[sizeof r->bans[0].mask];
    snprintf(who, sizeof who, "%s!%s@%s", m->nick, m->user, m->host);
    for (unsigned i = 0; i < r->nbans; i++)
        if (room_mask_match(r->bans[i].mask, who))
            return true;
    return false;
}

static int invited_at(const struct room_home *r, const char *nick)
{
    char key[ROOM_NICK_MAX + 1];
    room_fold(key, nick, sizeof key);
    for (unsigned i = 0; i < r->ninvited; i++)
        if (strcmp(r->invited[i], key) == 0)
            return (int)i;
    return -1;
}

static enum room_status may_join(const struct room_home *r,
                                 const struct room_msg *m)
{
    int invite = invited_at(r, m->nick);
    if (banned(r, m) && invite < 0)
        return ROOM_BANNED;
    if ((r->modes & ROOM_MODE_INVITE_ONLY) && invite < 0)
        return ROOM_INVITE_ONLY;
    if (r->pass[0] && strcmp(r->pass, m->text) != 0)
        return ROOM_BAD_KEY;
    if (r->limit && r->members >= r->limit)
        return ROOM_FULL;
    return ROOM_OK;
}

static struct room_home *home_create(struct room_core *core,
                                     const char *name)
{
    struct room_home *r =
        calloc(1, sizeof *r + core->nworkers * sizeof r->per_worker[0]);
    if (!r)
        return NULL;
    room_fold(r->key, name, sizeof r->key);
    snprintf(r->name, sizeof r->name, "%s", name);
    r->modes = ROOM_MODE_TOPIC_LOCK | ROOM_MODE_NO_EXTERNAL;
    r->created = room_now_ms(core);
    r->core = core;
    if (room_map_put(&core->homes, room_hash_str(r->key), r) < 0) {
        free(r);
        return NULL;
    }
    pc_metric_add(core->rooms, 0, 1);
    if (core->cluster)
        cl_room_home_made(core->cluster, r);
    return r;
}

static void refuse_join(struct room_core *core, const struct room_msg *m,
                        enum room_status status)
{
    struct room_msg *a = room_msg_new(core, OP_JOIN_REFUSED, NULL, 0, NULL, 0);
    if (!a)
        return;
    a->id = m->id;
    a->gen = m->gen;
    a->status = (uint8_t)status;
    memcpy(a->room, m->room, sizeof a->room);
    room_send(core, m->worker, a);
}

static void on_join(struct room_core *core, struct room_msg *m)
{
    if (core->cluster && cl_room_hold_join(core->cluster, m))
        return; /* until this node hears the room's lines */
    struct room_home *r = room_home_find(core, m->room);
    bool created = !r;
    if (!r && !(r = home_create(core, m->room))) {
        refuse_join(core, m, ROOM_NO_MEMORY);
        return;
    }
    struct room_member *mb = room_member_find(r, m->id);
    if (!mb) {
        enum room_status st = created ? ROOM_OK : may_join(r, m);
        mb = st == ROOM_OK ? calloc(1, sizeof *mb) : NULL;
        if (mb && room_map_put(&r->by_id, room_hash_u64(m->id), mb) < 0) {
            free(mb);
            mb = NULL;
        }
        if (!mb) {
            refuse_join(core, m, st == ROOM_OK ? ROOM_NO_MEMORY : st);
            if (created) { /* empty: nobody made it in */
                room_map_del(&core->homes, room_hash_str(r->key), r->key,
                             key_eq);
                if (core->cluster)
                    cl_room_home_gone(core->cluster, r->key);
                home_free(r);
            }
            return;
        }
        mb->id = m->id;
        mb->worker = m->worker;
        mb->prefix = created ? ROOM_OP : 0;
        memcpy(mb->nick, m->nick, sizeof mb->nick);
        memcpy(mb->user, m->user, sizeof mb->user);
        memcpy(mb->host, m->host, sizeof mb->host);
        if (m->len2)
            mb->realname = strdup(room_msg_text2(m));
        r->members++;
        r->per_worker[m->worker]++;
        pc_metric_add(core->members, 0, 1);
        if (core->cluster)
            cl_member(core->cluster, r, mb, false);
        int invite = invited_at(r, m->nick);
        if (invite >= 0) /* an invitation is good for one join */
            memcpy(r->invited[invite], r->invited[--r->ninvited],
                   sizeof r->invited[0]);
    }
    /* The acknowledgement goes before the JOIN event on the same FIFO
     * link: the joiner's worker lists it before the room's next event. */
    struct room_msg *ack = room_msg_new(core, OP_JOIN_ACK, NULL, 0, NULL, 0);
    if (ack) {
        ack->id = m->id;
        ack->gen = m->gen;
        ack->flag = m->flag;
        ack->kind = mb->prefix;
        memcpy(ack->room, r->name, sizeof ack->room);
    }
    room_send(core, m->worker, ack);
    room_fanout(core, r, m, ROOM_EV_JOIN, NULL, NULL, 0, 0);
    if (m->flag) { /* the topic and members, after the JOIN */
        memcpy(m->room, r->name, sizeof m->room);
        if (core->cluster && cl_names(core->cluster, m, ROOM_ANS_JOIN))
            return; /* with the other nodes' members, when Redis answers */
        struct room_msg *a = room_pack_members(core, r);
        room_home_answer(core, m, ROOM_ANS_JOIN, a ? ROOM_OK : ROOM_NO_MEMORY, a);
    }
}

static void on_leave(struct room_core *core, struct room_msg *m)
{
    struct room_home *r = room_home_find(core, m->room);
    struct room_member *mb = r ? room_member_find(r, m->id) : NULL;
    if (m->kind) { /* a part from a room the user is not in: which is it */
        room_home_answer(core, m, ROOM_ANS_PART,
                         r ? ROOM_NOT_MEMBER : ROOM_NO_SUCH_ROOM, NULL);
        return;
    }
    /* The PART goes out while the leaver is still listed, so it sees its
     * own; the answer follows on the same link, and the leaver's worker
     * unlists it before any event numbered after its leave. */
    if (mb && m->flag != LEAVE_SILENT)
        room_fanout(core, r, m,
                    m->flag == LEAVE_QUIT ? ROOM_EV_QUIT : ROOM_EV_PART, NULL,
                    m->text, m->len, m->dedup);
    if (mb)
        member_remove(core, &r, mb);
    if (m->flag == LEAVE_PART) {
        struct room_msg *a = room_msg_new(core, OP_LEAVE_ACK, NULL, 0, NULL, 0);
        if (a) {
            a->id = m->id;
            a->flag = 1;
            memcpy(a->room, m->room, sizeof a->room);
        }
        room_send(core, m->worker, a);
    }
}

/* ---- speaking, names, away ---------------------------------------------- */

static void on_say(struct room_core *core, struct room_msg *m)
{
    struct room_home *r = room_home_find(core, m->room);
    struct room_member *mb = r ? room_member_find(r, m->id) : NULL;
    enum room_status st = ROOM_OK;
    if (!r)
        st = ROOM_NO_SUCH_ROOM;
    else if (!mb && (r->modes & ROOM_MODE_NO_EXTERNAL))
        /* NOLINTNEXTLINE(bugprone-branch-clone): two causes, one answer */
        st = ROOM_CANNOT_SPEAK;
    else if (!(mb && (mb->prefix & (ROOM_OP | ROOM_VOICE))) &&
             ((r->modes & ROOM_MODE_MODERATED) || banned(r, m)))
        st = ROOM_CANNOT_SPEAK;
    if (st == ROOM_OK) {
        pc_metric_add(core->lines, ROOM_LINES_ROOM, 1);
        room_fanout(core, r, m, (enum room_event_kind)m->kind, NULL, m->text,
               m->len, 0);
        return;
    }
    if (m->kind == ROOM_EV_NOTICE) /* a notice is never answered */
        return;
    struct room_msg *a = room_msg_new(core, OP_ANSWER, NULL, 0, NULL, 0);
    if (!a)
        return;
    a->kind = ROOM_ANS_CANNOT_SPEAK;
    a->status = (uint8_t)st;
    memcpy(a->room, m->room, sizeof a->room);
    room_answer_to(core, m->worker, m->id, a, false);
}

static void on_rename(struct room_core *core, struct room_msg *m)
{
    struct room_home *r = room_home_find(core, m->room);
    struct room_member *mb = r ? room_member_find(r, m->id) : NULL;
    if (!mb)
        return;
    memcpy(mb->nick, m->other, sizeof mb->nick);
    if (core->cluster)
        cl_member(core->cluster, r, mb, false);
    room_fanout(core, r, m, ROOM_EV_NICK, m->other, NULL, 0, m->dedup);
}

static void on_away(struct room_core *core, struct room_msg *m)
{
    struct room_home *r = room_home_find(core, m->room);
    struct room_member *mb = r ? room_member_find(r, m->id) : NULL;
    if (mb)
        mb->away = m->flag;
    if (mb && core->cluster)
        cl_member(core->cluster, r, mb, false);
}

static void on_topic(struct room_core *core, struct room_msg *m)
{
    struct room_home *r = room_home_find(core, m->room);
    struct room_member *mb = r ? room_member_find(r, m->id) : NULL;
    if (!r) {
        room_home_answer(core, m, ROOM_ANS_TOPIC, ROOM_NO_SUCH_ROOM, NULL);
        return;
    }
    memcpy(m->room, r->name, sizeof m->room);
    if (!m->flag) {
        const char *t = r->topic ? r->topic : "";
        struct room_msg *a = room_msg_new(core, OP_ANSWER, NULL, 0, t,
                                          strlen(t));
        if (a) {
            snprintf(a->extra, sizeof a->extra, "%s", r->topic_by);
            a->time_ms = r->topic_time;
        }
        room_home_answer(core, m, ROOM_ANS_TOPIC, ROOM_OK, a);
        return;
    }
    enum room_status st = !mb ? ROOM_NOT_MEMBER
                          : (r->modes & ROOM_MODE_TOPIC_LOCK) &&
                                  !(mb->prefix & ROOM_OP)
                              ? ROOM_NOT_OP
                              : ROOM_OK;
    if (st == ROOM_OK) {
        free(r->topic);
        r->topic = m->len ? strndup(m->text, ROOM_TOPIC_MAX) : NULL;
        snprintf(r->topic_by, sizeof r->topic_by, "%s!%s@%s", m->nick,
                 m->user, m->host);
        r->topic_time = room_now_ms(core);
        room_fanout(core, r, m, ROOM_EV_TOPIC, NULL, r->topic ? r->topic : "",
               r->topic ? strlen(r->topic) : 0, 0);
    }
    room_home_answer(core, m, ROOM_ANS_TOPIC, st, NULL);
}

/* ---- kicks and invitations ------------------------------------------------ */

static void on_kick(struct room_core *core, struct room_msg *m)
{
    struct room_home *r = room_home_find(core, m->room);
    struct room_member *mb = r ? room_member_find(r, m->id) : NULL;
    struct room_member *target = r ? room_member_by_nick(r, m->other) : NULL;
    enum room_status st = !r              ? ROOM_NO_SUCH_ROOM
                          : !mb           ? ROOM_NOT_MEMBER
                          : !(mb->prefix & ROOM_OP) ? ROOM_NOT_OP
                          : !target       ? ROOM_TARGET_NOT_MEMBER
                                          : ROOM_OK;
    if (st == ROOM_OK) {
        memcpy(m->room, r->name, sizeof m->room);
        room_fanout(core, r, m, ROOM_EV_KICK, target->nick, m->text, m->len, 0);
        /* After the KICK on the same link: the target sees its kick. */
        struct room_msg *k = room_msg_new(core, OP_KICKED, NULL, 0, NULL, 0);
        if (k) {
            k->id = target->id;
            memcpy(k->room, r->name, sizeof k->room);
        }
        room_send(core, target->worker, k);
        member_remove(core, &r, target);
    }
    room_home_answer(core, m, ROOM_ANS_KICK, st, NULL);
}

static void on_invite(struct room_core *core, struct room_msg *m)
{
    struct room_home *r = room_home_find(core, m->room);
    struct room_member *mb = r ? room_member_find(r, m->id) : NULL;
    enum room_status st = !r    ? ROOM_NO_SUCH_ROOM
                          : !mb ? ROOM_NOT_MEMBER
                          : (r->modes & ROOM_MODE_INVITE_ONLY) &&
                                  !(mb->prefix & ROOM_OP)
                              ? ROOM_NOT_OP
                          : room_member_by_nick(r, m->other) ? ROOM_ALREADY_MEMBER
                                                        : ROOM_OK;
    if (st != ROOM_OK) {
        room_home_answer(core, m, ROOM_ANS_INVITE, st, NULL);
        return;
    }
    if (invited_at(r, m->other) < 0) {
        if (r->ninvited == ROOM_BANS_MAX) /* forget the oldest */
            memmove(r->invited, r->invited + 1,
                    --r->ninvited * sizeof r->invited[0]);
        void *grown = realloc(r->invited, (r->ninvited + 1) *
                                              sizeof r->invited[0]);
        if (grown) {
            r->invited = grown;
            room_fold(r->invited[r->ninvited++], m->other,
                      sizeof r->invited[0]);
        }
    }
    /* The nick's owner knows where the invitee lives; it answers. */
    struct room_msg *f = room_msg_new(core, OP_INVITE, NULL, 0, NULL, 0);
    if (!f)
        return;
    f->id = m->id;
    f->worker = m->worker;
    memcpy(f->nick, m->nick, sizeof f->nick);
    memcpy(f->user, m->user, sizeof f->user);
    memcpy(f->host, m->host, sizeof f->host);
    memcpy(f->other, m->other, sizeof f->other);
    memcpy(f->room, r->name, sizeof f->room);
    f->flag = 1;
    char key[ROOM_NICK_MAX + 1];
    room_fold(key, m->other, sizeof key);
    room_send(core, room_home_of(core, key), f);
}

void room_home_handle(struct room_core *core, struct room_msg *m)
{
    switch ((enum room_op)m->op) {
    case OP_JOIN: on_join(core, m); break;
    case OP_LEAVE: on_leave(core, m); break;
    case OP_SAY: on_say(core, m); break;
    case OP_RENAME: on_rename(core, m); break;
    case OP_AWAY: on_away(core, m); break;
    case OP_TOPIC: on_topic(core, m); break;
    case OP_MODE: room_home_mode(core, m); break;
    case OP_MODES: room_home_modes(core, m); break;
    case OP_KICK: on_kick(core, m); break;
    case OP_INVITE: on_invite(core, m); break;
    default: break;
    }
}
