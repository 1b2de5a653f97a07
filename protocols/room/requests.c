/* A user's requests about rooms, sent from its worker to the room's
 * home. Each holds the user's input until its answer (room_wait), except
 * lines said to a room, which are only answered when refused. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocols/room/core.h"

/* A message about room from u, to the room's home. */
static struct room_msg *to_home(struct room_user *u, enum room_op op,
                                const char *room, const char *text,
                                size_t len, unsigned *home)
{
    struct room_core *core = u->core;
    struct room_msg *m = room_msg_new(core, op, text, len, NULL, 0);
    *home = 0; /* set even without m: callers pass it on to ask() */
    if (!m)
        return NULL;
    room_msg_from(m, u);
    snprintf(m->room, sizeof m->room, "%s", room);
    char key[ROOM_NAME_MAX + 1];
    room_fold(key, m->room, sizeof key);
    *home = room_home_of(core, key);
    return m;
}

static void refuse_now(struct room_user *u, enum room_answer_kind kind,
                       const char *room)
{
    struct room_answer a = {.kind = kind, .status = ROOM_NO_MEMORY,
                            .room = room};
    u->face->answer(u, &a);
}

/* Sends m, holding u's input until the answer. */
static void ask(struct room_user *u, struct room_msg *m, unsigned home,
                enum room_answer_kind kind, const char *room)
{
    if (!m) {
        refuse_now(u, kind, room);
        return;
    }
    room_wait(u);
    room_send(u->core, home, m);
}

void room_join(struct room_user *u, const char *room, const char *key,
               bool want_info)
{
    struct room_core *core = u->core;
    char folded[ROOM_NAME_MAX + 1];
    room_fold(folded, room, sizeof folded);
    if (room_membership_find(u, folded)) { /* already in (or on the way) */
        struct room_answer a = {.kind = ROOM_ANS_JOIN,
                                .status = ROOM_ALREADY_MEMBER, .room = room};
        u->face->answer(u, &a);
        return;
    }
    struct room_membership *ms = calloc(1, sizeof *ms);
    const char *real = u->realname ? u->realname : "";
    struct room_msg *m = ms ? room_msg_new(core, OP_JOIN, key, strlen(key),
                                           real, strlen(real))
                            : NULL;
    if (!m) {
        free(ms);
        refuse_now(u, ROOM_ANS_JOIN, room);
        return;
    }
    ms->u = u;
    ms->state = MS_JOINING;
    ms->gen = ++u->events;
    memcpy(ms->key, folded, sizeof ms->key);
    snprintf(ms->name, sizeof ms->name, "%s", room);
    ms->next = u->rooms;
    u->rooms = ms;
    room_msg_from(m, u);
    memcpy(m->room, ms->name, sizeof m->room);
    m->gen = ms->gen;
    m->flag = want_info;
    room_wait(u);
    room_send(core, room_home_of(core, folded), m);
}

void room_part(struct room_user *u, const char *room, const char *reason)
{
    char key[ROOM_NAME_MAX + 1];
    room_fold(key, room, sizeof key);
    struct room_membership *ms = room_membership_find(u, key);
    unsigned home;
    if (!ms || ms->state != MS_IN) { /* the home tells whether it exists */
        struct room_msg *m = to_home(u, OP_LEAVE, room, NULL, 0, &home);
        if (m)
            m->kind = 1;
        ask(u, m, home, ROOM_ANS_PART, room);
        return;
    }
    struct room_msg *m = to_home(u, OP_LEAVE, ms->name, reason,
                                 reason ? strlen(reason) : 0, &home);
    if (!m) {
        refuse_now(u, ROOM_ANS_PART, room);
        return;
    }
    /* Listed until the home answers: u gets every event numbered before
     * its leave, as every other member does. */
    ms->state = MS_LEAVING;
    m->flag = LEAVE_PART;
    room_wait(u);
    room_send(u->core, home, m);
}

void room_say(struct room_user *u, const char *room,
              enum room_event_kind kind, const char *text, size_t len)
{
    unsigned home;
    struct room_msg *m = to_home(u, OP_SAY, room, text, len, &home);
    if (!m)
        return;
    m->kind = (uint8_t)kind;
    room_send(u->core, home, m);
}

/* What the home knows of a room: MODES_NAMES, _MODES or _BANS. */
static void ask_home(struct room_user *u, const char *room, uint8_t what,
                     enum room_answer_kind kind)
{
    unsigned home;
    struct room_msg *m = to_home(u, OP_MODES, room, NULL, 0, &home);
    if (m)
        m->flag = what;
    ask(u, m, home, kind, room);
}

void room_names(struct room_user *u, const char *room)
{
    ask_home(u, room, MODES_NAMES, ROOM_ANS_NAMES);
}

void room_modes(struct room_user *u, const char *room)
{
    ask_home(u, room, MODES_MODES, ROOM_ANS_MODE);
}

void room_bans(struct room_user *u, const char *room)
{
    ask_home(u, room, MODES_BANS, ROOM_ANS_BANS);
}

void room_topic(struct room_user *u, const char *room, const char *topic)
{
    unsigned home;
    struct room_msg *m = to_home(u, OP_TOPIC, room, topic,
                                 topic ? strlen(topic) : 0, &home);
    if (m)
        m->flag = topic != NULL;
    ask(u, m, home, ROOM_ANS_TOPIC, room);
}

void room_mode(struct room_user *u, const char *room,
               const struct room_mode_change *changes, unsigned n)
{
    char text[2048];
    size_t len = 0;
    for (unsigned i = 0; i < n && len + 128 < sizeof text; i++) {
        int w = snprintf(text + len, sizeof text - len, "%c%c%s%.120s\n",
                         changes[i].add ? '+' : '-', changes[i].mode,
                         changes[i].arg ? " " : "",
                         changes[i].arg ? changes[i].arg : "");
        if (w > 0)
            len += (size_t)w;
    }
    unsigned home = 0;
    struct room_msg *m = to_home(u, OP_MODE, room, text, len, &home);
    ask(u, m, home, ROOM_ANS_MODE, room);
}

void room_kick(struct room_user *u, const char *room, const char *nick,
               const char *reason)
{
    unsigned home;
    struct room_msg *m = to_home(u, OP_KICK, room, reason,
                                 reason ? strlen(reason) : 0, &home);
    if (m)
        snprintf(m->other, sizeof m->other, "%s", nick);
    ask(u, m, home, ROOM_ANS_KICK, room);
}

void room_invite(struct room_user *u, const char *room, const char *nick)
{
    unsigned home;
    struct room_msg *m = to_home(u, OP_INVITE, room, NULL, 0, &home);
    if (m)
        snprintf(m->other, sizeof m->other, "%s", nick);
    ask(u, m, home, ROOM_ANS_INVITE, room);
}

void room_away(struct room_user *u, const char *text)
{
    free(u->away);
    u->away = text ? strndup(text, 300) : NULL;
    for (char *c = u->away; c && *c; c++)
        if ((unsigned char)*c < 0x20) /* tabs separate the core's fields */
            *c = ' ';
    for (struct room_membership *ms = u->rooms; ms; ms = ms->next) {
        unsigned home;
        struct room_msg *m = to_home(u, OP_AWAY, ms->name, NULL, 0, &home);
        if (!m)
            continue;
        m->flag = u->away != NULL;
        room_send(u->core, home, m);
    }
}
