/* What reaches a worker that has members: acknowledgements of joins and
 * leaves, events to render for local members, and answers to requests.
 * A room's local list holds the memberships of this worker's users, in
 * the order they joined; an event is rendered once per face variant and
 * the shared buffer queued on every member. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocols/room/core.h"

static bool local_eq(const void *value, const void *key)
{
    return strcmp(value, key) == 0; /* the key is the first member */
}

struct room_local *room_local_find(struct room_core *core, const char *key)
{
    return room_map_get(&core->locals, room_hash_str(key), key, local_eq);
}

static struct room_local *local_add(struct room_core *core,
                                    struct room_membership *ms)
{
    struct room_local *r = room_local_find(core, ms->key);
    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r)
            return NULL;
        memcpy(r->key, ms->key, sizeof r->key);
        r->head.prev = r->head.next = &r->head;
        if (room_map_put(&core->locals, room_hash_str(r->key), r) < 0) {
            free(r);
            return NULL;
        }
    }
    struct room_link *link = &ms->link;
    link->prev = r->head.prev;
    link->next = &r->head;
    r->head.prev->next = link;
    r->head.prev = link;
    r->members++;
    return r;
}

void room_membership_unlist(struct room_membership *ms)
{
    struct room_local *r = ms->local;
    if (!r)
        return;
    ms->link.prev->next = ms->link.next;
    ms->link.next->prev = ms->link.prev;
    ms->link.prev = ms->link.next = NULL;
    ms->local = NULL;
    if (--r->members == 0) {
        struct room_core *core = ms->u->core;
        room_map_del(&core->locals, room_hash_str(r->key), r->key, local_eq);
        free(r);
    }
}

struct room_membership *room_membership_find(struct room_user *u,
                                             const char *key)
{
    for (struct room_membership *ms = u->rooms; ms; ms = ms->next)
        if (strcmp(ms->key, key) == 0)
            return ms;
    return NULL;
}

unsigned room_user_rooms(const struct room_user *u,
                         char (*names)[ROOM_NAME_MAX + 1], unsigned max)
{
    unsigned n = 0;
    for (const struct room_membership *ms = u->rooms; ms && n < max;
         ms = ms->next)
        if (ms->state == MS_IN)
            memcpy(names[n++], ms->name, ROOM_NAME_MAX + 1);
    return n;
}

void room_membership_free(struct room_user *u, struct room_membership *ms)
{
    for (struct room_membership **p = &u->rooms; *p; p = &(*p)->next)
        if (*p == ms) {
            *p = ms->next;
            break;
        }
    free(ms);
}

/* ---- delivery ------------------------------------------------------------ */

#define FACES_MAX 4 /* distinct faces met in one delivery */

struct delivery {
    const struct room_face *face[FACES_MAX];
    struct pc_sbuf *cache[FACES_MAX][ROOM_VARIANTS];
    unsigned nfaces;
};

static struct pc_sbuf **cache_of(struct delivery *d, const struct room_face *f)
{
    for (unsigned i = 0; i < d->nfaces; i++)
        if (d->face[i] == f)
            return d->cache[i];
    if (d->nfaces == FACES_MAX)
        return NULL;
    d->face[d->nfaces] = f;
    return d->cache[d->nfaces++];
}

static void delivery_end(struct delivery *d)
{
    for (unsigned i = 0; i < d->nfaces; i++)
        for (unsigned v = 0; v < ROOM_VARIANTS; v++)
            if (d->cache[i][v])
                pc_sbuf_unref(d->cache[i][v]);
}

/* A NICK or QUIT reaches a user once per room it shares with the actor;
 * it is shown once. The copies come through different homes, so other
 * NICKs and QUITs may fall between them: the last 8 are remembered (a
 * burst of more from users sharing several rooms with u may show one
 * twice). 32 bits of the key: a false match is a 1 in 4e9 chance. */
static bool seen_before(struct room_user *u, uint64_t dedup)
{
    if (!dedup)
        return false;
    uint32_t key = (uint32_t)(dedup ^ dedup >> 32) | 1;
    const unsigned n = sizeof u->seen / sizeof u->seen[0];
    for (unsigned i = 0; i < n; i++)
        if (u->seen[i] == key)
            return true;
    memmove(u->seen + 1, u->seen, (n - 1) * sizeof u->seen[0]);
    u->seen[0] = key;
    return false;
}

static void deliver_to(struct delivery *d, struct room_user *u,
                       const struct room_event *ev, uint64_t dedup)
{
    if (seen_before(u, dedup))
        return;
    struct pc_sbuf **cache = cache_of(d, u->face);
    struct pc_sbuf *own[ROOM_VARIANTS] = {0};
    u->face->deliver(u, ev, cache ? cache : own);
    for (unsigned v = 0; !cache && v < ROOM_VARIANTS; v++)
        if (own[v])
            pc_sbuf_unref(own[v]);
}

void room_deliver(struct room_core *core, struct room_local *local,
                  const struct room_event *ev, uint64_t dedup)
{
    (void)core;
    struct delivery d = {.nfaces = 0};
    /* A member cut off here is only marked: the list stays valid. */
    for (struct room_link *l = local->head.next; l != &local->head;
         l = l->next) {
        struct room_membership *ms =
            (struct room_membership *)((char *)l -
                                       offsetof(struct room_membership, link));
        deliver_to(&d, ms->u, ev, dedup);
    }
    delivery_end(&d);
}

void room_deliver_one(struct room_user *u, const struct room_event *ev)
{
    struct delivery d = {.nfaces = 0};
    deliver_to(&d, u, ev, 0);
    delivery_end(&d);
}

/* ---- answers --------------------------------------------------------------- */

void room_answer_local(struct room_user *u, const struct room_answer *a,
                       bool resume)
{
    u->face->answer(u, a);
    if (resume)
        room_resume(u);
}

void room_answer_to(struct room_core *core, unsigned worker, uint64_t id,
                    struct room_msg *a, bool resume)
{
    if (!a)
        return;
    a->op = OP_ANSWER;
    a->id = id;
    a->flag = resume;
    room_send(core, worker, a);
}

/* Members packed by the home as "PA nick user host realname\n" lines
 * (P: prefix bits, A: away) are split in place into `out`. */
static unsigned unpack_members(char *text, struct room_listed **out)
{
    unsigned n = 0;
    for (const char *p = text; *p; p++)
        n += *p == '\n';
    *out = n ? calloc(n, sizeof **out) : NULL;
    if (!*out)
        return 0;
    unsigned i = 0;
    for (char *save = NULL, *line = strtok_r(text, "\n", &save);
         line && i < n; line = strtok_r(NULL, "\n", &save)) {
        struct room_listed *l = &(*out)[i];
        if (strlen(line) < 3)
            continue;
        l->prefix = (uint8_t)(line[0] - '0');
        l->away = line[1] == '1';
        char *f = line + 3, *s2 = NULL;
        l->nick = strtok_r(f, " ", &s2);
        l->user = strtok_r(NULL, " ", &s2);
        l->host = strtok_r(NULL, " ", &s2);
        l->realname = s2 ? s2 : "";
        if (l->nick && l->user && l->host)
            i++;
    }
    return i;
}

static void on_answer(struct room_user *u, struct room_msg *m)
{
    struct room_answer a = {
        .kind = (enum room_answer_kind)m->kind,
        .status = (enum room_status)m->status,
        .room = m->room,
        .nick = m->nick,
        .text = m->text,
        .len = m->len,
        .mode = m->mode,
        .topic = m->len2 ? room_msg_text2(m) : NULL,
        .topic_by = m->extra,
        .topic_time = m->time_ms,
        .created = m->time2,
        .count = m->count,
        .rooms = m->count2,
    };
    struct room_listed *members = NULL;
    if ((a.kind == ROOM_ANS_NAMES || a.kind == ROOM_ANS_JOIN) &&
        a.status == ROOM_OK) {
        a.nmembers = unpack_members(m->text, &members);
        a.members = members;
        a.text = NULL;
        a.len = 0;
    }
    room_answer_local(u, &a, m->flag);
    free(members);
}

/* ---- events -------------------------------------------------------------- */

/* Prefix changes ("+o-v alice bob") of local members, mirrored so that
 * WHOIS can show them without asking the home. */
static void mirror_prefixes(struct room_core *core, struct room_local *r,
                            const char *changes)
{
    char modes[64];
    const char *args = strchr(changes, ' ');
    size_t n = args ? (size_t)(args - changes) : strlen(changes);
    if (n >= sizeof modes)
        return;
    memcpy(modes, changes, n);
    modes[n] = '\0';
    bool add = true;
    for (const char *p = modes; *p; p++) {
        if (*p == '+' || *p == '-') {
            add = *p == '+';
            continue;
        }
        bool prefix = *p == 'o' || *p == 'v';
        if (!prefix && !strchr("bkl", *p))
            continue; /* a flag: no argument */
        if (*p == 'l' && !add)
            continue;
        if (!args)
            return;
        while (*args == ' ')
            args++;
        const char *end = strchr(args, ' ');
        size_t len = end ? (size_t)(end - args) : strlen(args);
        if (prefix && len <= ROOM_NICK_MAX) {
            char nick[ROOM_NICK_MAX + 1], key[ROOM_NICK_MAX + 1];
            memcpy(nick, args, len);
            nick[len] = '\0';
            room_fold(key, nick, sizeof key);
            struct room_user *u = room_user_by_nick(core, key);
            struct room_membership *ms = u ? room_membership_find(u, r->key)
                                           : NULL;
            uint8_t bit = *p == 'o' ? ROOM_OP : ROOM_VOICE;
            if (ms)
                ms->prefix = add ? (uint8_t)(ms->prefix | bit)
                                 : (uint8_t)(ms->prefix & ~bit);
        }
        args = end;
    }
}

static void on_event(struct room_core *core, struct room_msg *m)
{
    struct room_event ev = {
        .kind = (enum room_event_kind)m->kind,
        .room = m->room[0] ? m->room : NULL,
        .from = m->id,
        .nick = m->nick,
        .user = m->user,
        .host = m->host,
        .target = m->other,
        .text = m->text,
        .len = m->len,
        .time_ms = m->time_ms,
    };
    if (!ev.room) { /* to one user: count holds its id */
        struct room_user *u = room_user_find(core, m->count);
        if (u) {
            ev.to = u->nick;
            room_deliver_one(u, &ev);
        }
        return;
    }
    char key[ROOM_NAME_MAX + 1];
    room_fold(key, m->room, sizeof key);
    struct room_local *r = room_local_find(core, key);
    if (!r)
        return;
    if (ev.kind == ROOM_EV_MODE)
        mirror_prefixes(core, r, m->text);
    room_deliver(core, r, &ev, m->dedup);
}

void room_local_event(struct room_core *core, struct room_msg *m)
{
    if (m->op == OP_EVENT) {
        on_event(core, m);
        return;
    }
    struct room_user *u = room_user_find(core, m->id);
    if (!u)
        return; /* gone meanwhile: its leave is on its way to the home */
    char key[ROOM_NAME_MAX + 1];
    room_fold(key, m->room, sizeof key);
    struct room_membership *ms = room_membership_find(u, key);
    switch ((enum room_op)m->op) {
    case OP_JOIN_ACK:
        if (!ms || ms->state != MS_JOINING || ms->gen != m->gen)
            return;
        ms->local = local_add(core, ms);
        ms->state = MS_IN;
        ms->prefix = m->kind;
        memcpy(ms->name, m->room, sizeof ms->name);
        if (!ms->local)
            pc_log(PC_LOG_ERR, "room: out of memory listing %s", m->room);
        if (!m->flag) { /* no info wanted: the answer is the ack */
            struct room_answer a = {.kind = ROOM_ANS_JOIN, .room = m->room};
            room_answer_local(u, &a, true);
        }
        return;
    case OP_JOIN_REFUSED: {
        if (ms && ms->state == MS_JOINING && ms->gen == m->gen)
            room_membership_free(u, ms);
        struct room_answer a = {.kind = ROOM_ANS_JOIN,
                                .status = (enum room_status)m->status,
                                .room = m->room};
        room_answer_local(u, &a, true);
        return;
    }
    case OP_LEAVE_ACK:
        if (ms && ms->state == MS_LEAVING) {
            room_membership_unlist(ms);
            room_membership_free(u, ms);
        }
        if (m->flag) {
            struct room_answer a = {.kind = ROOM_ANS_PART, .room = m->room};
            room_answer_local(u, &a, true);
        }
        return;
    case OP_KICKED:
        if (ms && ms->state != MS_JOINING) {
            room_membership_unlist(ms);
            room_membership_free(u, ms);
        }
        return;
    case OP_ANSWER:
        on_answer(u, m);
        return;
    default:
        return;
    }
}
