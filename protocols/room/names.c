/* Nicks: claims meet at the nick's owner worker (a hash of the folded
 * nick), so exactly one of two racing claims wins, whatever face they
 * come from. The owner also knows where a nick lives, so lines to a nick
 * and invitations pass through it on their way to the user's worker. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocols/room/cluster.h"

static bool nick_eq(const void *value, const void *key)
{
    return strcmp(value, key) == 0; /* the key is the first member */
}

static struct room_nick *nick_find(struct room_core *core, const char *key)
{
    return room_map_get(&core->nicks, room_hash_str(key), key, nick_eq);
}

void room_nicks_fini(struct room_core *core)
{
    for (size_t i = 0; i < core->nicks.cap; i++)
        free(core->nicks.slots[i].value);
    room_map_free(&core->nicks);
}

static unsigned owner_of(struct room_core *core, const char *nick, char *key)
{
    room_fold(key, nick, ROOM_NICK_MAX + 1);
    return room_home_of(core, key);
}

void room_answer_user(struct room_core *core, const struct room_msg *m,
                      enum room_answer_kind kind, enum room_status status,
                      const char *nick, const char *text)
{
    struct room_msg *a = room_msg_new(core, OP_ANSWER, text,
                                      text ? strlen(text) : 0, NULL, 0);
    if (!a)
        return;
    a->kind = (uint8_t)kind;
    a->status = (uint8_t)status;
    snprintf(a->nick, sizeof a->nick, "%s", nick);
    memcpy(a->room, m->room, sizeof a->room);
    room_answer_to(core, m->worker, m->id, a, true);
}

/* ---- requests ------------------------------------------------------------ */

void room_nick(struct room_user *u, const char *nick)
{
    struct room_core *core = u->core;
    if (room_nick_reserved(nick, strlen(nick))) { /* the generated nicks are claimed
                                       without an answer: never share */
        struct room_answer a = {.kind = ROOM_ANS_NICK,
                                .status = ROOM_NICK_RESERVED, .nick = nick};
        u->face->answer(u, &a);
        return;
    }
    struct room_msg *m = room_msg_new(core, OP_CLAIM, NULL, 0, NULL, 0);
    if (!m) {
        struct room_answer a = {.kind = ROOM_ANS_NICK,
                                .status = ROOM_NO_MEMORY, .nick = nick};
        u->face->answer(u, &a);
        return;
    }
    room_msg_from(m, u);
    snprintf(m->other, sizeof m->other, "%s", nick);
    char key[ROOM_NICK_MAX + 1];
    u->claiming = true;
    room_wait(u);
    room_send(core, owner_of(core, m->other, key), m);
}

void room_release_nick(struct room_core *core, const char *nick, uint64_t id)
{
    struct room_msg *m = room_msg_new(core, OP_RELEASE, NULL, 0, NULL, 0);
    if (!m)
        return;
    m->id = id;
    snprintf(m->other, sizeof m->other, "%s", nick);
    char key[ROOM_NICK_MAX + 1];
    room_send(core, owner_of(core, nick, key), m);
}

void room_tell(struct room_user *u, const char *nick,
               enum room_event_kind kind, const char *text, size_t len)
{
    struct room_core *core = u->core;
    struct room_msg *m = room_msg_new(core, OP_TELL, text, len, NULL, 0);
    if (!m)
        return;
    room_msg_from(m, u);
    m->kind = (uint8_t)kind;
    snprintf(m->other, sizeof m->other, "%s", nick);
    if (kind != ROOM_EV_NOTICE)
        room_wait(u);
    char key[ROOM_NICK_MAX + 1];
    room_send(core, owner_of(core, nick, key), m);
}

/* ---- at the owner, and at the user's worker ------------------------------- */

static void on_claim(struct room_core *core, struct room_msg *m)
{
    char key[ROOM_NICK_MAX + 1];
    room_fold(key, m->other, sizeof key);
    struct room_nick *o = nick_find(core, key);
    bool granted = !o || o->user == m->id;
    if (!o) {
        o = calloc(1, sizeof *o);
        if (!o || room_map_put(&core->nicks, room_hash_str(key), o) < 0) {
            free(o);
            granted = false;
        } else {
            memcpy(o->key, key, sizeof o->key);
            o->user = m->id;
            o->worker = m->worker;
        }
    }
    /* Across nodes the claim is Redis's to grant; it answers later. */
    if (granted && core->cluster && cl_nick_claim(core->cluster, m, key))
        return;
    room_claim_answer(core, m, granted);
}

void room_claim_answer(struct room_core *core, const struct room_msg *m,
                       bool granted)
{
    if (m->flag) /* a generated nick: nobody waits for the answer */
        return;
    struct room_msg *r = room_msg_copy(m);
    if (!r)
        return;
    r->op = OP_CLAIM_RESULT;
    r->status = granted ? ROOM_OK : ROOM_NICK_TAKEN;
    room_send(core, m->worker, r);
}

void room_nick_forget(struct room_core *core, const char *key, uint64_t id)
{
    struct room_nick *o = nick_find(core, key);
    if (o && o->user == id)
        free(room_map_del(&core->nicks, room_hash_str(key), key, nick_eq));
}

static void on_claim_result(struct room_core *core, struct room_msg *m)
{
    struct room_user *u = room_user_find(core, m->id);
    if (!u) { /* gone meanwhile: give back what it won */
        if (m->status == ROOM_OK)
            room_release_nick(core, m->other, m->id);
        return;
    }
    u->claiming = false;
    char old[ROOM_NICK_MAX + 1];
    memcpy(old, u->nick, sizeof old);
    if (m->status == ROOM_OK && strcmp(old, m->other) != 0) {
        room_user_set_nick(u, m->other);
        room_user_renamed(u, old);
    }
    struct room_answer a = {.kind = ROOM_ANS_NICK,
                            .status = (enum room_status)m->status,
                            .nick = m->other, .text = old,
                            .len = strlen(old)};
    room_answer_local(u, &a, true);
}

/* u's nick changed from old (already set): the old one is freed and
 * every room u is in sees the NICK. */
void room_user_renamed(struct room_user *u, const char *old)
{
    struct room_core *core = u->core;
    if (old[0]) {
        char a[ROOM_NICK_MAX + 1], b[ROOM_NICK_MAX + 1];
        room_fold(a, old, sizeof a);
        room_fold(b, u->nick, sizeof b);
        if (strcmp(a, b) != 0) /* a change of case keeps the claim */
            room_release_nick(core, old, u->id);
    }
    u->events++;
    uint64_t key = room_event_key(u);
    for (struct room_membership *ms = u->rooms; ms; ms = ms->next) {
        struct room_msg *r = room_msg_new(core, OP_RENAME, NULL, 0, NULL, 0);
        if (!r)
            continue;
        room_msg_from(r, u);
        memcpy(r->nick, old, sizeof r->nick);
        memcpy(r->other, u->nick, sizeof r->other);
        memcpy(r->room, ms->name, sizeof r->room);
        r->dedup = key;
        room_send(core, room_home_of(core, ms->key), r);
    }
}

static void on_release(struct room_core *core, struct room_msg *m)
{
    char key[ROOM_NICK_MAX + 1];
    room_fold(key, m->other, sizeof key);
    struct room_nick *o = nick_find(core, key);
    if (o && o->user == m->id) {
        if (core->cluster)
            cl_nick_release(core->cluster, key, o->worker, o->user);
        free(room_map_del(&core->nicks, room_hash_str(key), key, nick_eq));
    }
}

/* flag 0: at the owner; 1: at the recipient's worker (count: its id). */
static void on_tell(struct room_core *core, struct room_msg *m)
{
    bool notice = m->kind == ROOM_EV_NOTICE;
    if (m->flag == 0) {
        char key[ROOM_NICK_MAX + 1];
        room_fold(key, m->other, sizeof key);
        struct room_nick *o = nick_find(core, key);
        if (!o && core->cluster && cl_tell(core->cluster, m))
            return; /* another node's, maybe: Redis knows */
        if (!o) {
            if (!notice)
                room_answer_user(core, m, ROOM_ANS_SAID, ROOM_NO_SUCH_NICK,
                            m->other, NULL);
            return;
        }
        struct room_msg *f = room_msg_copy(m);
        if (!f)
            return;
        f->flag = 1;
        f->count = o->user;
        room_send(core, o->worker, f);
        return;
    }
    struct room_user *t = room_user_find(core, m->count);
    if (!t) {
        if (!notice)
            room_answer_user(core, m, ROOM_ANS_SAID, ROOM_NO_SUCH_NICK,
                             m->other, NULL);
        return;
    }
    struct room_event ev = {
        .kind = (enum room_event_kind)m->kind, .to = t->nick,
        .from = m->id, .nick = m->nick, .user = m->user, .host = m->host,
        .text = m->text, .len = m->len, .time_ms = room_now_ms(core)};
    pc_metric_add(core->lines, ROOM_LINES_NICK, 1);
    room_deliver_one(t, &ev);
    if (!notice)
        room_answer_user(core, m, ROOM_ANS_SAID, ROOM_OK, t->nick, t->away);
}

/* An invitation past the room's home. flag 1: at the invitee's nick
 * owner; 2: at its worker (count: its id). */
static void on_invite(struct room_core *core, struct room_msg *m)
{
    if (m->flag == 1) {
        char key[ROOM_NICK_MAX + 1];
        room_fold(key, m->other, sizeof key);
        struct room_nick *o = nick_find(core, key);
        if (!o) {
            room_answer_user(core, m, ROOM_ANS_INVITE, ROOM_NO_SUCH_NICK,
                        m->other, NULL);
            return;
        }
        struct room_msg *f = room_msg_copy(m);
        if (!f)
            return;
        f->flag = 2;
        f->count = o->user;
        room_send(core, o->worker, f);
        return;
    }
    struct room_user *t = room_user_find(core, m->count);
    if (!t) {
        room_answer_user(core, m, ROOM_ANS_INVITE, ROOM_NO_SUCH_NICK, m->other,
                    NULL);
        return;
    }
    struct room_event ev = {
        .kind = ROOM_EV_INVITE, .to = t->nick, .room = m->room,
        .from = m->id, .nick = m->nick, .user = m->user, .host = m->host,
        .target = t->nick, .text = "", .time_ms = room_now_ms(core)};
    room_deliver_one(t, &ev);
    room_answer_user(core, m, ROOM_ANS_INVITE, ROOM_OK, t->nick, NULL);
}

void room_names_handle(struct room_core *core, struct room_msg *m)
{
    switch ((enum room_op)m->op) {
    case OP_CLAIM: on_claim(core, m); break;
    case OP_CLAIM_RESULT: on_claim_result(core, m); break;
    case OP_RELEASE: on_release(core, m); break;
    case OP_TELL: on_tell(core, m); break;
    case OP_INVITE: on_invite(core, m); break;
    case OP_NICK_LOST: cl_nick_lost(core, m); break;
    default: break;
    }
}
