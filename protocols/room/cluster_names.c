/* Who is in which room on the other nodes, for /who, NAMES, WHO, /rooms
 * and LIST. A room's home on each node keeps its node's members in a
 * Redis hash pcm:{ROOM}:NODE (one field per member, the line the core's
 * member lists are made of) and its rooms with their counts in
 * pcl:NODE; the sets pcm:{ROOM} and pcl name the nodes. A node's keys
 * expire after nick_ttl unless it renews them (with its nicks), so a
 * node that dies leaves nobody behind for long: a reader that finds a
 * node's keys gone forgets the node. Answers merge this node's own
 * members (exact, from the home) with the others' (as Redis has them). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocols/room/cluster.h"

#define LINE_MAX (8 + ROOM_NICK_MAX + ROOM_USER_MAX + ROOM_HOST_MAX + \
                  ROOM_REAL_MAX)

/* "PA nick user host realname", as room_pack_members writes it. */
static int member_line(char *out, size_t size, const struct room_member *mb)
{
    int n = snprintf(out, size, "%u%d %s %s %s %.*s", mb->prefix, mb->away,
                     mb->nick, mb->user, mb->host, ROOM_REAL_MAX,
                     mb->realname ? mb->realname : "");
    return n < 0 || (size_t)n >= size ? 0 : n;
}

static void write_member(struct room_cluster *cl, const struct room_home *r,
                         const char *field, const char *value)
{
    char k1[ROOM_NAME_MAX + 80], k2[ROOM_NAME_MAX + 16], k3[80], t[24];
    char count[ROOM_TOPIC_MAX + 24];
    int n1 = snprintf(k1, sizeof k1, "pcm:{%s}:%s", r->key, cl->node);
    int n2 = snprintf(k2, sizeof k2, "pcm:{%s}", r->key);
    int n3 = snprintf(k3, sizeof k3, "pcl:%s", cl->node);
    int nt = snprintf(t, sizeof t, "%lld", (long long)(cl->nick_ttl * 1000));
    int nc = r->members ? snprintf(count, sizeof count, "%u %.*s", r->members,
                                   ROOM_TOPIC_MAX, r->topic ? r->topic : "")
                        : 0;
    count[nc] = '\0';
    const char *argv[] = {k1, k2, k3, "pcl", field, value, cl->node, t,
                          r->name, count};
    size_t lens[] = {(size_t)n1, (size_t)n2, (size_t)n3, 3, strlen(field),
                     strlen(value), strlen(cl->node), (size_t)nt,
                     strlen(r->name), (size_t)nc};
    /* Down: the refresh after the reconnect writes every room again. */
    cl_eval(cl->link, CL_MEMBER, NULL, NULL, 4, 10, argv, lens);
}

void cl_member(struct room_cluster *cl, const struct room_home *r,
               const struct room_member *mb, bool gone)
{
    char field[32], value[LINE_MAX];
    snprintf(field, sizeof field, "%u:%" PRIu64, mb->worker, mb->id);
    if (gone || !member_line(value, sizeof value, mb))
        value[0] = '\0';
    write_member(cl, r, field, value);
}

void cl_members_refresh(struct room_cluster *cl, bool rewrite)
{
    const struct room_map *homes = &cl->core->homes;
    for (size_t i = 0; i < homes->cap; i++) {
        const struct room_home *r = homes->slots[i].value;
        if (!r)
            continue;
        if (!rewrite) {
            write_member(cl, r, "", ""); /* renew the keys, the count */
            continue;
        }
        /* Members who left while Redis was away are not in Redis's
         * copy any more either: it is written again from scratch. */
        char k[ROOM_NAME_MAX + 80];
        const char *argv[] = {"DEL", k};
        size_t lens[] = {3, (size_t)snprintf(k, sizeof k, "pcm:{%s}:%s",
                                             r->key, cl->node)};
        cl_cmd(cl->link, NULL, NULL, 2, argv, lens);
        for (size_t j = 0; j < r->by_id.cap; j++)
            if (r->by_id.slots[j].value)
                cl_member(cl, r, r->by_id.slots[j].value, false);
        if (!r->members)
            write_member(cl, r, "", "");
    }
}

/* ---- NAMES ----------------------------------------------------------------- */

struct names_req {
    struct room_cluster *cl;
    struct room_msg *m;
    enum room_answer_kind kind; /* NAMES, or a JOIN's members */
};

static int by_nick(const void *a, const void *b)
{
    const char *x = strchr(*(char *const *)a, ' ');
    const char *y = strchr(*(char *const *)b, ' ');
    return strcmp(x ? x + 1 : "", y ? y + 1 : "");
}

/* This node's packed members (a) and the other nodes' lines, sorted by
 * nick, as one answer like a's. */
static struct room_msg *merge_members(struct room_core *core,
                                      struct room_msg *a, const redisReply *r)
{
    size_t n = r->elements, len = a->len;
    for (char *p = a->text; *p; p++)
        n += *p == '\n';
    for (size_t i = 0; i < r->elements; i++)
        len += r->element[i]->len + 1;
    char **lines = malloc((n + 1) * sizeof *lines);
    char *local = strndup(a->text, a->len), *text = malloc(len + 1);
    struct room_msg *out = NULL;
    if (lines && local && text) {
        size_t k = 0;
        for (char *save = NULL, *l = strtok_r(local, "\n", &save); l;
             l = strtok_r(NULL, "\n", &save))
            lines[k++] = l;
        for (size_t i = 0; i < r->elements; i++)
            if (r->element[i]->type == REDIS_REPLY_STRING &&
                !memchr(r->element[i]->str, '\n', r->element[i]->len))
                lines[k++] = r->element[i]->str;
        qsort(lines, k, sizeof *lines, by_nick);
        size_t at = 0;
        for (size_t i = 0; i < k; i++)
            at += (size_t)snprintf(text + at, len + 1 - at, "%s\n", lines[i]);
        out = room_msg_new(core, OP_ANSWER, text, at, room_msg_text2(a),
                           a->len2);
        if (out) {
            memcpy(out->extra, a->extra, sizeof out->extra);
            out->time_ms = a->time_ms;
            out->time2 = a->time2;
        }
    }
    free(lines);
    free(local);
    free(text);
    free(a);
    return out;
}

static void on_names(struct cl_link *l, const redisReply *r, void *arg)
{
    struct names_req *q = arg;
    struct room_core *core = q->cl->core;
    struct room_msg *m = q->m;
    (void)l;
    struct room_home *home = room_home_find(core, m->room);
    if (!home) { /* everyone left meanwhile, the joiner too */
        room_home_answer(core, m, q->kind, ROOM_NO_SUCH_ROOM, NULL);
    } else {
        struct room_msg *a = room_pack_members(core, home);
        if (a && r && r->type == REDIS_REPLY_ARRAY)
            a = merge_members(core, a, r);
        room_home_answer(core, m, q->kind, a ? ROOM_OK : ROOM_NO_MEMORY, a);
    }
    free(m);
    free(q);
}

bool cl_names(struct room_cluster *cl, const struct room_msg *m,
              enum room_answer_kind kind)
{
    if (!cl_link_up(cl->link))
        return false;
    char key[ROOM_NAME_MAX + 1];
    room_fold(key, m->room, sizeof key);
    struct names_req *q = malloc(sizeof *q);
    struct room_msg *copy = room_msg_copy(m);
    if (q && copy) {
        char k[ROOM_NAME_MAX + 16], prefix[ROOM_NAME_MAX + 16];
        *q = (struct names_req){.cl = cl, .m = copy, .kind = kind};
        const char *argv[] = {k, prefix, cl->node};
        size_t lens[] = {(size_t)snprintf(k, sizeof k, "pcm:{%s}", key),
                         (size_t)snprintf(prefix, sizeof prefix, "pcm:{%s}:",
                                          key),
                         strlen(cl->node)};
        if (cl_eval(cl->link, CL_NAMES, on_names, q, 1, 3, argv, lens) == 0)
            return true;
    }
    free(q);
    free(copy);
    return false;
}

/* ---- LIST ------------------------------------------------------------------ */

struct rooms_req {
    struct room_cluster *cl;
    uint64_t user;
    void (*done)(struct room_core *core, uint64_t user, const char *more,
                 size_t len);
};

static void on_rooms(struct cl_link *l, const redisReply *r, void *arg)
{
    struct rooms_req *q = arg;
    (void)l;
    size_t len = 0, cap = 1;
    for (size_t i = 0; r && r->type == REDIS_REPLY_ARRAY && i < r->elements;
         i++)
        cap += r->element[i]->len + 1;
    char *text = malloc(cap);
    /* name, "count topic" pairs into "name count topic\n" lines */
    for (size_t i = 0; text && r && r->type == REDIS_REPLY_ARRAY &&
                       i + 1 < r->elements; i += 2) {
        const redisReply *name = r->element[i], *v = r->element[i + 1];
        if (name->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING ||
            memchr(v->str, '\n', v->len) || memchr(name->str, ' ', name->len))
            continue;
        len += (size_t)snprintf(text + len, cap - len, "%s %s\n", name->str,
                                v->str);
    }
    if (text)
        text[len] = '\0';
    q->done(q->cl->core, q->user, text ? text : "", len);
    free(text);
    free(q);
}

bool cl_rooms(struct room_cluster *cl, uint64_t user,
              void (*done)(struct room_core *core, uint64_t user,
                           const char *more, size_t len))
{
    if (!cl_link_up(cl->link))
        return false;
    struct rooms_req *q = malloc(sizeof *q);
    if (!q)
        return false;
    *q = (struct rooms_req){.cl = cl, .user = user, .done = done};
    const char *argv[] = {"pcl", cl->node};
    size_t lens[] = {3, strlen(cl->node)};
    if (cl_eval(cl->link, CL_ROOMS, on_rooms, q, 1, 2, argv, lens) == 0)
        return true;
    free(q);
    return false;
}
