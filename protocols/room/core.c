/* The room core of one worker: its life, its messages, its users, and
 * the output and flood rules every face shares. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocols/room/cluster.h"

/* The key of the core in each worker's pc_worker_slot. Messages between
 * cores are addressed to it, not to a face listener's service: a reload
 * may remove any face listener while the others (and the core) live on. */
static const char core_slot_key = 0;

static void handle(struct room_core *core, struct room_msg *m);

static void core_on_message(struct pc_worker *w, void *value,
                            struct pc_msg *m)
{
    (void)w;
    handle(value, (struct room_msg *)m);
}

struct room_core *room_core_attach(struct pc_worker *w,
                                   const struct pc_section *cfg,
                                   struct room_counters *counters)
{
    void **slot = pc_worker_slot(w, &core_slot_key);
    if (!slot)
        return NULL;
    struct room_core *core = *slot;
    if (!core) {
        core = calloc(1, sizeof *core);
        if (!core || pc_worker_slot_on_message(w, &core_slot_key,
                                               core_on_message) < 0) {
            free(core);
            return NULL;
        }
        core->w = w;
        core->id = pc_worker_id(w);
        core->nworkers = pc_worker_count(w);
        room_metrics_init(core, w);
        const struct pc_section *cluster = pc_cluster_section(w);
        if (cluster && !(core->cluster = room_cluster_new(core, cluster))) {
            free(core);
            return NULL;
        }
        *slot = core;
    }
    room_metrics_listener(w, cfg, counters);
    core->faces++;
    return core;
}

void room_core_detach(struct room_core *core)
{
    if (--core->faces)
        return;
    room_cluster_free(core->cluster);
    room_homes_fini(core);
    room_nicks_fini(core);
    for (size_t i = 0; i < core->locals.cap; i++)
        free(core->locals.slots[i].value);
    room_map_free(&core->locals);
    room_map_free(&core->users);
    room_map_free(&core->by_nick);
    *pc_worker_slot(core->w, &core_slot_key) = NULL;
    (void)pc_worker_slot_on_message(core->w, &core_slot_key, NULL);
    free(core);
}

/* ---- messages ---------------------------------------------------------- */

static void msg_destroy(struct pc_msg *m)
{
    free(m);
}

struct room_msg *room_msg_new(struct room_core *core, enum room_op op,
                              const char *text, size_t len,
                              const char *text2, size_t len2)
{
    struct room_msg *m = malloc(sizeof *m + len + len2 + 2);
    if (!m) {
        pc_log(PC_LOG_ERR, "room: out of memory for a message");
        return NULL;
    }
    memset(m, 0, sizeof *m);
    m->base.slot_key = &core_slot_key;
    m->base.destroy = msg_destroy;
    m->op = (uint8_t)op;
    m->worker = core->id;
    m->len = (uint32_t)len;
    m->len2 = (uint32_t)len2;
    if (len)
        memcpy(m->text, text, len);
    m->text[len] = '\0';
    if (len2)
        memcpy(m->text + len + 1, text2, len2);
    m->text[len + 1 + len2] = '\0';
    return m;
}

struct room_msg *room_msg_copy(const struct room_msg *m)
{
    size_t size = sizeof *m + m->len + m->len2 + 2;
    struct room_msg *c = malloc(size);
    if (c)
        memcpy(c, m, size);
    else
        pc_log(PC_LOG_ERR, "room: out of memory copying a message");
    return c;
}

void room_msg_from(struct room_msg *m, const struct room_user *u)
{
    m->id = u->id;
    m->worker = u->core->id;
    memcpy(m->nick, u->nick, sizeof m->nick);
    memcpy(m->user, u->user, sizeof m->user);
    memcpy(m->host, u->host, sizeof m->host);
}

static void handle(struct room_core *core, struct room_msg *m)
{
    switch ((enum room_op)m->op) {
    case OP_CLAIM:
    case OP_CLAIM_RESULT:
    case OP_RELEASE:
    case OP_TELL:
    case OP_NICK_LOST:
        room_names_handle(core, m);
        break;
    case OP_INVITE:
        if (m->flag) /* past the home: the nick's owner or its worker */
            room_names_handle(core, m);
        else
            room_home_handle(core, m);
        break;
    case OP_JOIN:
    case OP_LEAVE:
    case OP_SAY:
    case OP_RENAME:
    case OP_AWAY:
    case OP_TOPIC:
    case OP_MODE:
    case OP_MODES:
    case OP_KICK:
        room_home_handle(core, m);
        break;
    case OP_JOIN_ACK:
    case OP_JOIN_REFUSED:
    case OP_LEAVE_ACK:
    case OP_KICKED:
    case OP_EVENT:
    case OP_ANSWER:
        room_local_event(core, m);
        break;
    case OP_GATHER_ASK:
    case OP_GATHER_REPLY:
        room_gather_handle(core, m);
        break;
    }
}

void room_send(struct room_core *core, unsigned to, struct room_msg *m)
{
    if (!m)
        return;
    /* At once on our own worker: the same order a posted message would
     * have (one thread), without the mailbox round trip. */
    if (to == core->id) {
        handle(core, m);
        free(m);
        return;
    }
    pc_post(core->w, to, &m->base);
}

void *room_face_worker_new(struct pc_worker *w, const struct pc_section *cfg,
                           size_t size)
{
    struct room_face_worker *fw = calloc(1, size);
    if (!fw)
        return NULL;
    fw->core = room_core_attach(w, cfg, &fw->counters);
    if (!fw->core) {
        free(fw);
        return NULL;
    }
    return fw;
}

void room_face_worker_fini(struct pc_worker *w, void *wstate)
{
    (void)w;
    struct room_face_worker *fw = wstate;
    room_core_detach(fw->core);
    free(fw);
}

void room_face_on_stop(struct pc_conn *c)
{
    pc_conn_end(c, PC_CLOSE_SHUTDOWN);
}

unsigned room_home_of(const struct room_core *core, const char *key)
{
    return (unsigned)(room_hash_str(key) % core->nworkers);
}

int64_t room_now_ms(struct room_core *core)
{
    return (int64_t)(pc_worker_now(core->w) * 1000.0);
}

/* ---- users --------------------------------------------------------------- */

static bool user_eq(const void *value, const void *key)
{
    return ((const struct room_user *)value)->id == *(const uint64_t *)key;
}

struct room_user *room_user_find(struct room_core *core, uint64_t id)
{
    return room_map_get(&core->users, room_hash_u64(id), &id, user_eq);
}

static void flood_resume(struct pc_timer *t)
{
    struct room_user *u = t->data;
    u->flood_wait = false;
    if (!u->awaiting)
        pc_conn_resume_input(u->c);
}

/* The peer address without its port, safe in a nick!user@host prefix:
 * "127.0.0.1", "::1" as "0::1" (a word may not start with ':'). */
static void host_of(struct pc_conn *c, char *host, size_t size)
{
    char peer[ROOM_HOST_MAX + 8];
    pc_conn_peer(c, peer, sizeof peer);
    char *start = peer, *end;
    if (peer[0] == '[') { /* "[addr]:port" */
        start = peer + 1;
        end = strchr(start, ']');
    } else {
        end = strrchr(peer, ':');
    }
    if (end)
        *end = '\0';
    snprintf(host, size, "%s%.*s", start[0] == ':' ? "0" : "",
             ROOM_HOST_MAX - 1, start);
}

int room_user_open(struct room_user *u, struct room_core *core,
                   struct pc_conn *c, const struct room_face *face,
                   const struct room_limits *limits,
                   const struct room_counters *counters)
{
    host_of(c, u->host, sizeof u->host);
    u->c = c;
    u->core = core;
    u->face = face;
    u->limits = limits;
    u->counters = counters;
    u->id = pc_conn_id(c);
    if (room_map_put(&core->users, room_hash_u64(u->id), u) < 0) {
        u->id = 0; /* not registered: close must not look it up */
        return -ENOMEM;
    }
    pc_timer_init(&u->flood_timer, flood_resume, u);
    room_bucket_init(&u->bucket, pc_worker_now(core->w), limits->flood_burst);
    return 0;
}

static bool by_nick_eq(const void *value, const void *key)
{
    char folded[ROOM_NICK_MAX + 1];
    room_fold(folded, ((const struct room_user *)value)->nick, sizeof folded);
    return strcmp(folded, key) == 0;
}

static bool same_user(const void *value, const void *key)
{
    return value == key;
}

/* by_nick indexes this worker's users by folded nick, for questions
 * asked of every worker (WHOIS, ISON). Removal is by identity: whatever
 * shares the key, only u's own entry goes. */
static void index_nick(struct room_user *u, bool add)
{
    char key[ROOM_NICK_MAX + 1];
    room_fold(key, u->nick, sizeof key);
    uint64_t h = room_hash_str(key);
    if (add) {
        if (room_map_put(&u->core->by_nick, h, u) < 0)
            pc_log(PC_LOG_WARN, "room: out of memory indexing %s", u->nick);
    } else {
        room_map_del(&u->core->by_nick, h, u, same_user);
    }
}

void room_user_set_nick(struct room_user *u, const char *nick)
{
    if (u->nick[0])
        index_nick(u, false);
    snprintf(u->nick, sizeof u->nick, "%s", nick);
    if (u->nick[0])
        index_nick(u, true);
}

struct room_user *room_user_by_nick(struct room_core *core, const char *key)
{
    return room_map_get(&core->by_nick, room_hash_str(key), key, by_nick_eq);
}

void room_user_close(struct room_user *u, const char *reason)
{
    struct room_core *core = u->core;
    if (!u->id)
        return;
    pc_timer_stop(core->w, &u->flood_timer);
    u->events++;
    uint64_t dedup = room_event_key(u);
    while (u->rooms) {
        struct room_membership *ms = u->rooms;
        struct room_msg *m = room_msg_new(core, OP_LEAVE, reason,
                                          reason ? strlen(reason) : 0, NULL, 0);
        if (m) {
            room_msg_from(m, u);
            m->flag = LEAVE_QUIT;
            m->dedup = dedup;
            memcpy(m->room, ms->name, sizeof m->room);
        }
        room_send(core, room_home_of(core, ms->key), m);
        room_membership_unlist(ms);
        room_membership_free(u, ms);
    }
    if (u->nick[0]) {
        room_release_nick(core, u->nick, u->id);
        index_nick(u, false);
    }
    room_map_del(&core->users, room_hash_u64(u->id), &u->id, user_eq);
    room_gather_free(u);
    free(u->realname);
    free(u->away);
    u->realname = u->away = NULL;
    u->id = 0;
}

void room_user_guest(struct room_user *u)
{
    struct room_core *core = u->core;
    char nick[ROOM_NICK_MAX + 1];
    /* Unique without asking anyone: the number encodes the worker. */
    uint64_t guest = ++core->guests * core->nworkers + core->id;
    if (core->cluster) /* and unique across nodes, but for a hash clash
                          (then Redis refuses it and u is renamed again) */
        guest = guest * 100000 + core->cluster->node_hash % 100000;
    snprintf(nick, sizeof nick, "guest%llu", (unsigned long long)guest);
    room_user_set_nick(u, nick);
    char key[ROOM_NICK_MAX + 1];
    room_fold(key, nick, sizeof key);
    struct room_msg *m = room_msg_new(core, OP_CLAIM, NULL, 0, NULL, 0);
    if (m) {
        room_msg_from(m, u);
        m->flag = 1; /* nobody waits for the answer */
        memcpy(m->other, key, sizeof m->other);
    }
    room_send(core, room_home_of(core, key), m);
}

/* ---- waiting ----------------------------------------------------------- */

void room_wait(struct room_user *u)
{
    u->awaiting++;
    pc_conn_hold_input(u->c);
}

void room_resume(struct room_user *u)
{
    if (u->awaiting && --u->awaiting == 0 && !u->flood_wait)
        pc_conn_resume_input(u->c);
}

bool room_user_admit(struct room_user *u)
{
    struct room_core *core = u->core;
    double wait = room_bucket_take(&u->bucket, pc_worker_now(core->w),
                                   u->limits->flood_rate,
                                   u->limits->flood_burst);
    if (wait <= 0)
        return true;
    u->flood_wait = true;
    pc_metric_add(u->counters->flood_holds, 0, 1);
    pc_conn_hold_input(u->c);
    pc_timer_start(core->w, &u->flood_timer, wait);
    return false;
}

/* ---- output ------------------------------------------------------------ */

/* Every write to a user passes here, so room lines, private lines and
 * answers all count against the one sendq. The cut ends on a whole line
 * and the face's goodbye (its pc_proto.goodbye for PC_CLOSE_OUTPUT_LIMIT). */
static bool over_sendq(struct room_user *u, size_t len)
{
    if (pc_conn_queued(u->c) + len <= u->limits->sendq)
        return false;
    if (!u->cut) { /* later writes find it over too: count it once */
        u->cut = true;
        pc_metric_add(u->counters->cutoffs, 0, 1);
    }
    pc_conn_cut(u->c, PC_CLOSE_OUTPUT_LIMIT);
    return true;
}

int room_write(struct room_user *u, const void *data, size_t len)
{
    if (over_sendq(u, len))
        return -ENOBUFS;
    return pc_conn_write(u->c, data, len);
}

int room_write_shared(struct room_user *u, struct pc_sbuf *b)
{
    if (over_sendq(u, b->len))
        return -ENOBUFS;
    int r = pc_conn_write_shared(u->c, b); /* faces write events so */
    if (r == 0)
        pc_metric_add(u->counters->deliveries, 0, 1);
    return r;
}
