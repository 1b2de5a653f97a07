/* Questions asked of every worker (the room list, user counts, where
 * nicks are): the asker sends one question to each worker, appends the
 * answers as they come and answers its face when the last is in. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocols/room/cluster.h"

struct room_gather {
    unsigned kind, pending;
    uint64_t count, rooms;
    size_t len;
    char *text;
};

static const enum room_answer_kind answer_kinds[] = {
    [GATHER_ROOMS] = ROOM_ANS_ROOMS,
    [GATHER_USERS] = ROOM_ANS_USERS,
    [GATHER_WHOIS] = ROOM_ANS_WHOIS,
};

static void finish(struct room_user *u)
{
    struct room_gather *g = u->gather;
    u->gather = NULL;
    struct room_answer a = {.kind = answer_kinds[g->kind],
                            .text = g->text ? g->text : "",
                            .len = g->len, .count = g->count,
                            .rooms = g->rooms};
    room_answer_local(u, &a, true);
    free(g->text);
    free(g);
}

static void ask_all(struct room_user *u, unsigned kind, const char *text)
{
    struct room_core *core = u->core;
    struct room_gather *g = u->gather ? NULL : calloc(1, sizeof *g);
    if (!g) {
        struct room_answer a = {.kind = answer_kinds[kind],
                                .status = ROOM_NO_MEMORY};
        u->face->answer(u, &a);
        return;
    }
    g->kind = kind;
    g->pending = core->nworkers;
    u->gather = g;
    room_wait(u);
    unsigned lost = 0;
    for (unsigned i = 0; i < core->nworkers; i++) {
        struct room_msg *m = room_msg_new(core, OP_GATHER_ASK, text,
                                          text ? strlen(text) : 0, NULL, 0);
        if (!m) {
            lost++;
            continue;
        }
        room_msg_from(m, u);
        m->flag = (uint8_t)kind;
        room_send(core, i, m); /* may answer at once, even finish */
    }
    if (lost && u->gather == g && (g->pending -= lost) == 0)
        finish(u);
}

void room_list(struct room_user *u)
{
    ask_all(u, GATHER_ROOMS, NULL);
}

void room_users(struct room_user *u)
{
    ask_all(u, GATHER_USERS, NULL);
}

void room_whois(struct room_user *u, const char *nicks)
{
    ask_all(u, GATHER_WHOIS, nicks);
}

/* ---- answering, at every worker ------------------------------------------ */

static void append(char **text, size_t *len, size_t *cap, const char *s)
{
    size_t n = strlen(s);
    if (*len + n + 1 > *cap) {
        size_t grown = (*cap ? *cap * 2 : 256) + n;
        char *t = realloc(*text, grown);
        if (!t)
            return;
        *text = t;
        *cap = grown;
    }
    memcpy(*text + *len, s, n + 1);
    *len += n;
}

static void rooms_of(struct room_core *core, char **text, size_t *len,
                     size_t *cap, const struct room_msg *m)
{
    for (size_t i = 0; i < core->homes.cap; i++) {
        struct room_home *r = core->homes.slots[i].value;
        if (!r)
            continue;
        if ((r->modes & ROOM_MODE_SECRET) && !room_member_find(r, m->id))
            continue;
        char line[ROOM_NAME_MAX + 32];
        snprintf(line, sizeof line, "%s %u ", r->name, r->members);
        append(text, len, cap, line);
        append(text, len, cap, r->topic ? r->topic : "");
        append(text, len, cap, "\n");
    }
}

/* "nick\tuser\thost\trooms\tsecure\trealname\taway\n", rooms with @ or
 * +, secure "tls" for a user connected over TLS (else ""). */
static void whois_of(struct room_core *core, char **text, size_t *len,
                     size_t *cap, char *nicks)
{
    for (char *save = NULL, *n = strtok_r(nicks, " ", &save); n;
         n = strtok_r(NULL, " ", &save)) {
        char key[ROOM_NICK_MAX + 1];
        room_fold(key, n, sizeof key);
        struct room_user *u = room_user_by_nick(core, key);
        if (!u)
            continue;
        char head[ROOM_NICK_MAX + ROOM_USER_MAX + ROOM_HOST_MAX + 8];
        snprintf(head, sizeof head, "%s\t%s\t%s\t", u->nick, u->user,
                 u->host);
        append(text, len, cap, head);
        for (struct room_membership *ms = u->rooms; ms; ms = ms->next) {
            if (ms->state != MS_IN)
                continue;
            char room[ROOM_NAME_MAX + 4];
            snprintf(room, sizeof room, "%s%s ",
                     ms->prefix & ROOM_OP      ? "@"
                     : ms->prefix & ROOM_VOICE ? "+"
                                               : "",
                     ms->name);
            append(text, len, cap, room);
        }
        append(text, len, cap, "\t");
        append(text, len, cap, pc_conn_tls(u->c, NULL) ? "tls\t" : "\t");
        append(text, len, cap, u->realname ? u->realname : "");
        append(text, len, cap, "\t");
        append(text, len, cap, u->away ? u->away : "");
        append(text, len, cap, "\n");
    }
}

static void on_ask(struct room_core *core, struct room_msg *m)
{
    char *text = NULL;
    size_t len = 0, cap = 0;
    if (m->flag == GATHER_ROOMS)
        rooms_of(core, &text, &len, &cap, m);
    else if (m->flag == GATHER_WHOIS)
        whois_of(core, &text, &len, &cap, m->text);
    struct room_msg *r = room_msg_new(core, OP_GATHER_REPLY, text, len, NULL,
                                      0);
    free(text);
    if (!r)
        return; /* out of memory: the asker's question stays open */
    r->id = m->id;
    r->count = core->by_nick.len;
    r->count2 = core->homes.len;
    room_send(core, m->worker, r);
}

/* One "name members topic" line per room: a room on several nodes is
 * listed once, with all its members. */
static void merge_rooms(struct room_gather *g)
{
    size_t n = 0, len = 0;
    for (size_t i = 0; i < g->len; i++)
        n += g->text[i] == '\n';
    struct {
        char key[ROOM_NAME_MAX + 1], name[ROOM_NAME_MAX + 1];
        const char *topic;
        unsigned count;
    } *rooms = calloc(n + 1, sizeof *rooms);
    size_t cap = g->len + n * 12 + 1;
    char *out = malloc(cap);
    if (!rooms || !out) {
        free(rooms);
        free(out);
        return;
    }
    size_t k = 0;
    for (char *save = NULL, *l = strtok_r(g->text, "\n", &save); l;
         l = strtok_r(NULL, "\n", &save)) {
        char name[ROOM_NAME_MAX + 1], key[ROOM_NAME_MAX + 1];
        unsigned count = 0;
        /* NOLINTNEXTLINE(cert-err34-c): the homes' own "name count" */
        if (sscanf(l, "%32s %u", name, &count) != 2)
            continue;
        room_fold(key, name, sizeof key);
        size_t i = 0;
        while (i < k && strcmp(rooms[i].key, key) != 0)
            i++;
        if (i == k) {
            const char *topic = strchr(l, ' ');
            topic = topic ? strchr(topic + 1, ' ') : NULL;
            memcpy(rooms[k].key, key, sizeof key);
            memcpy(rooms[k].name, name, sizeof name);
            rooms[k++].topic = topic ? topic + 1 : "";
        }
        rooms[i].count += count;
    }
    out[0] = '\0';
    for (size_t i = 0; i < k && len < cap; i++)
        len += (size_t)snprintf(out + len, cap - len, "%s %u %s\n",
                                rooms[i].name, rooms[i].count, rooms[i].topic);
    free(g->text);
    g->text = out;
    g->len = len;
    free(rooms);
}

static void other_nodes_rooms(struct room_core *core, uint64_t user,
                              const char *more, size_t len)
{
    struct room_user *u = room_user_find(core, user);
    struct room_gather *g = u ? u->gather : NULL;
    if (!g)
        return;
    char *t = realloc(g->text, g->len + len + 1);
    if (t) {
        memcpy(t + g->len, more, len);
        t[g->len + len] = '\0';
        g->text = t;
        g->len += len;
        merge_rooms(g);
    }
    finish(u);
}

static void on_reply(struct room_core *core, struct room_msg *m)
{
    struct room_user *u = room_user_find(core, m->id);
    struct room_gather *g = u ? u->gather : NULL;
    if (!g)
        return;
    if (m->len) {
        char *t = realloc(g->text, g->len + m->len + 1);
        if (t) {
            memcpy(t + g->len, m->text, m->len + 1);
            g->text = t;
            g->len += m->len;
        }
    }
    g->count += m->count;
    g->rooms += m->count2;
    if (--g->pending)
        return;
    if (g->kind == GATHER_ROOMS && core->cluster &&
        cl_rooms(core->cluster, u->id, other_nodes_rooms))
        return; /* and the other nodes' rooms, when Redis answers */
    finish(u);
}

void room_gather_handle(struct room_core *core, struct room_msg *m)
{
    if (m->op == OP_GATHER_ASK)
        on_ask(core, m);
    else
        on_reply(core, m);
}

void room_gather_free(struct room_user *u)
{
    if (!u->gather)
        return;
    free(u->gather->text);
    free(u->gather);
    u->gather = NULL;
}
