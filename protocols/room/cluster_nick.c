/* Nicks unique across nodes, and private lines between them. A nick's
 * owner worker on each node (where that node's claims meet) asks Redis
 * too: pcn:NICK is set if absent, with a time to live of nick_ttl, and
 * its value says where the user is ("NODE\tRUN\tWORKER\tID"). The owner
 * refreshes its nicks every nick_ttl / 3, so a node that dies frees its
 * nicks within nick_ttl. While Redis is away a nick is granted on this
 * node's word alone; when the link is back the refresh claims it, and a
 * user whose nick another node took meanwhile is renamed, with a notice.
 *
 * A line to a nick this node does not hold goes to Redis (CL_TELL), which
 * publishes it on the holder's worker channel, pcw:NODE:WORKER, in the
 * same step as it looks the nick up. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocols/room/cluster.h"

static int nick_key(char *out, size_t size, const char *key)
{
    int n = snprintf(out, size, "pcn:%s", key);
    return n < 0 || (size_t)n >= size ? 0 : n;
}

static int ttl_ms(const struct room_cluster *cl, char *out, size_t size)
{
    return snprintf(out, size, "%lld", (long long)(cl->nick_ttl * 1000));
}

/* ---- claims ------------------------------------------------------------ */

struct claim {
    struct room_cluster *cl;
    char key[ROOM_NICK_MAX + 1];
    unsigned worker;
    uint64_t id;
    struct room_msg *m; /* the claim waiting for its answer, or NULL */
};

/* The user of worker/id lost key to another node. */
static void lost(struct room_cluster *cl, const struct claim *c)
{
    struct room_core *core = cl->core;
    cl->stats.nick_lost++;
    room_nick_forget(core, c->key, c->id);
    struct room_msg *m = room_msg_new(core, OP_NICK_LOST, NULL, 0, NULL, 0);
    if (!m)
        return;
    m->id = c->id;
    memcpy(m->other, c->key, sizeof m->other);
    room_send(core, c->worker, m);
}

static void on_claim(struct cl_link *l, const redisReply *r, void *arg)
{
    struct claim *c = arg;
    struct room_cluster *cl = c->cl;
    (void)l;
    /* No answer (Redis away): keep it on this node's word; the refresh
     * after the reconnect settles it. An error: the same. */
    bool taken = r && r->type == REDIS_REPLY_INTEGER && r->integer == 0;
    if (c->m) {
        if (taken && !c->m->flag) {
            room_nick_forget(cl->core, c->key, c->id);
            room_claim_answer(cl->core, c->m, false);
        } else {
            if (taken) /* a generated nick clashed: generate another */
                lost(cl, c);
            room_claim_answer(cl->core, c->m, true);
        }
        free(c->m);
    } else if (taken) {
        lost(cl, c);
    }
    free(c);
}

/* old_key: the folded nick a rename leaves, freed with the claim; NULL
 * for none. */
static bool send_claim(struct room_cluster *cl, const char *key,
                       const char *old_key, unsigned worker, uint64_t id,
                       struct room_msg *m)
{
    struct claim *c = malloc(sizeof *c);
    if (!c)
        return false;
    *c = (struct claim){.cl = cl, .worker = worker, .id = id, .m = m};
    memcpy(c->key, key, sizeof c->key);
    char k[ROOM_NICK_MAX + 8], old[ROOM_NICK_MAX + 8], v[160], t[24];
    int nkeys = old_key ? 2 : 1;
    const char *argv[] = {k, old, v, t};
    size_t lens[] = {(size_t)nick_key(k, sizeof k, key),
                     old_key ? (size_t)nick_key(old, sizeof old, old_key) : 0,
                     (size_t)cl_nick_value(cl, v, sizeof v, worker, id),
                     (size_t)ttl_ms(cl, t, sizeof t)};
    if (!old_key) { /* no second key: the arguments follow the first */
        argv[1] = v, argv[2] = t;
        lens[1] = lens[2], lens[2] = lens[3];
    }
    if (cl_eval(cl->link, CL_CLAIM, on_claim, c, nkeys, nkeys + 2, argv,
                lens) < 0) {
        free(c);
        return false;
    }
    cl->stats.nick_claims++;
    return true;
}

bool cl_nick_claim(struct room_cluster *cl, const struct room_msg *m,
                   const char *key)
{
    struct room_msg *copy = room_msg_copy(m);
    if (!copy)
        return false;
    char old[ROOM_NICK_MAX + 1];
    room_fold(old, m->nick, sizeof old); /* the claimer's nick now */
    bool renames = old[0] && strcmp(old, key) != 0;
    if (send_claim(cl, key, renames ? old : NULL, m->worker, m->id, copy))
        return true;
    free(copy);
    return false;
}

void cl_nick_release(struct room_cluster *cl, const char *key,
                     unsigned worker, uint64_t id)
{
    char k[ROOM_NICK_MAX + 8], v[160];
    const char *argv[] = {k, v};
    size_t lens[] = {(size_t)nick_key(k, sizeof k, key),
                     (size_t)cl_nick_value(cl, v, sizeof v, worker, id)};
    /* Down: the key expires by itself within nick_ttl. */
    cl_eval(cl->link, CL_RELEASE, NULL, NULL, 1, 2, argv, lens);
}

void cl_nicks_refresh(struct room_cluster *cl)
{
    const struct room_map *nicks = &cl->core->nicks;
    for (size_t i = 0; i < nicks->cap; i++) {
        const struct room_nick *o = nicks->slots[i].value;
        if (o && !send_claim(cl, o->key, NULL, o->worker, o->user, NULL))
            return; /* down: the next link up refreshes them all */
    }
}

/* ---- at the user's worker ------------------------------------------------ */

void cl_nick_lost(struct room_core *core, struct room_msg *m)
{
    struct room_user *u = room_user_find(core, m->id);
    char key[ROOM_NICK_MAX + 1], old[ROOM_NICK_MAX + 1];
    if (!u || !u->nick[0])
        return;
    room_fold(key, u->nick, sizeof key);
    if (strcmp(key, m->other) != 0)
        return; /* renamed meanwhile */
    memcpy(old, u->nick, sizeof old);
    room_user_guest(u);
    room_user_renamed(u, old);
    char text[160];
    int n = snprintf(text, sizeof text, "your nick %s was taken on another "
                     "node while this one could not reach it; you are now %s",
                     old, u->nick);
    struct room_event ev = {
        .kind = ROOM_EV_NOTICE, .to = u->nick, .nick = "cluster",
        .user = "percore", .host = core->cluster ? core->cluster->node : "",
        .text = text, .len = (size_t)n, .time_ms = room_now_ms(core)};
    room_deliver_one(u, &ev);
    struct room_answer a = {.kind = ROOM_ANS_NICK, .status = ROOM_OK,
                            .nick = u->nick, .text = old,
                            .len = strlen(old)};
    u->face->answer(u, &a);
}

/* ---- private lines ------------------------------------------------------- */

struct tell {
    struct room_cluster *cl;
    struct room_msg *m;
};

static void on_tell(struct cl_link *l, const redisReply *r, void *arg)
{
    struct tell *t = arg;
    struct room_msg *m = t->m;
    struct room_core *core = t->cl->core;
    (void)l;
    bool notice = m->kind == ROOM_EV_NOTICE;
    bool ok = r && r->type == REDIS_REPLY_INTEGER && r->integer > 0;
    if (ok)
        t->cl->stats.tells_out++;
    if (!notice)
        room_answer_user(core, m, ROOM_ANS_SAID,
                         ok ? ROOM_OK : ROOM_NO_SUCH_NICK, m->other, NULL);
    free(m);
    free(t);
}

bool cl_tell(struct room_cluster *cl, const struct room_msg *m)
{
    if (!cl_link_up(cl->link))
        return false;
    char key[ROOM_NICK_MAX + 1];
    room_fold(key, m->other, sizeof key);
    struct tell *t = malloc(sizeof *t);
    struct room_msg *copy = room_msg_copy(m);
    /* "KIND\tNICK\tUSER\tHOST\tTEXT" */
    size_t lsize = 16 + sizeof m->nick + sizeof m->user + sizeof m->host +
                   m->len;
    char *line = malloc(lsize);
    bool sent = false;
    if (t && copy && line) {
        char k[ROOM_NICK_MAX + 8];
        *t = (struct tell){.cl = cl, .m = copy};
        int n = snprintf(line, lsize, "%u\t%s\t%s\t%s\t", (unsigned)m->kind,
                         m->nick, m->user, m->host);
        memcpy(line + n, m->text, m->len);
        const char *argv[] = {k, cl->node, line};
        size_t lens[] = {(size_t)nick_key(k, sizeof k, key),
                         strlen(cl->node), (size_t)n + m->len};
        sent = cl_eval(cl->link, CL_TELL, on_tell, t, 1, 3, argv, lens) == 0;
    }
    free(line);
    if (!sent) {
        free(t);
        free(copy);
    }
    return sent;
}

/* "ID\tKIND\tNICK\tUSER\tHOST\tTEXT" on this worker's channel. */
void cl_self_message(struct room_cluster *cl, const char *data, size_t len)
{
    const char *f[5];
    size_t fl[5];
    const char *p = data, *end = data + len;
    for (unsigned i = 0; i < 5; i++) {
        const char *tab = memchr(p, '\t', (size_t)(end - p));
        if (!tab)
            return;
        f[i] = p;
        fl[i] = (size_t)(tab - p);
        p = tab + 1;
    }
    char id[24], nick[ROOM_NICK_MAX + 1], user[ROOM_USER_MAX + 1];
    char host[ROOM_HOST_MAX + 1];
    if (fl[0] >= sizeof id || fl[2] >= sizeof nick || fl[3] >= sizeof user ||
        fl[4] >= sizeof host || fl[1] != 1)
        return;
    memcpy(id, f[0], fl[0]), id[fl[0]] = '\0';
    memcpy(nick, f[2], fl[2]), nick[fl[2]] = '\0';
    memcpy(user, f[3], fl[3]), user[fl[3]] = '\0';
    memcpy(host, f[4], fl[4]), host[fl[4]] = '\0';
    unsigned kind = (unsigned)(f[1][0] - '0');
    if (kind > ROOM_EV_CTCP)
        return;
    struct room_user *u = room_user_find(cl->core, strtoull(id, NULL, 10));
    if (!u)
        return;
    cl->stats.tells_in++;
    struct room_event ev = {
        .kind = (enum room_event_kind)kind, .to = u->nick,
        .from = room_hash_str(nick) | 1ULL << 63, .nick = nick, .user = user,
        .host = host, .text = p, .len = (size_t)(end - p),
        .time_ms = room_now_ms(cl->core)};
    room_deliver_one(u, &ev);
}
