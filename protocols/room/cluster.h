/* The room core across several percored nodes, through Redis (only with a
 * [cluster] section; docs/scaling.md). Inside a node nothing changes: a
 * room's home worker decides and fans out to the workers with members.
 * Across nodes, each node's home worker of a room sends the room's lines
 * to Redis, which numbers them (one offset per room, and an epoch that
 * changes when Redis lost the room's data), and delivers them, in offset
 * order, as they come back over its subscription. Nicks are claimed in
 * Redis too, so they are unique across nodes.
 *
 * Files: cluster_link.c (one worker's two Redis connections: commands
 * and subscriptions; reconnects, timeouts), cluster_lua.c (the scripts),
 * cluster_room.c (a room's order: publishing, subscribing, gaps),
 * cluster_nick.c (nicks and private lines across nodes), cluster.c (the
 * per-worker state tying them to the core).
 *
 * Threads: everything here belongs to one worker, like the rest of the
 * core; hiredis runs on the worker's own loop (pc_worker_loop), and no
 * call waits for Redis. */
#ifndef PC_ROOM_CLUSTER_H
#define PC_ROOM_CLUSTER_H

#include <ev.h>
#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stdint.h>

#include "protocols/room/core.h"

/* ---- the link: cluster_link.c ----------------------------------------- */

struct cl_link;

enum cl_sub_kind { CL_SUBSCRIBED, CL_UNSUBSCRIBED, CL_MESSAGE };

/* Called with the reply, or NULL when there is none to come (the link
 * went down, or Redis took longer than the timeout). The reply is
 * hiredis's, borrowed until return. */
typedef void cl_reply_cb(struct cl_link *l, const redisReply *r, void *arg);

struct cl_link_events {
    void *owner;
    void (*up)(void *owner);   /* both connections ready, scripts loaded */
    void (*down)(void *owner); /* after every pending reply got NULL */
    /* A subscription's confirmation (data NULL) or a message; channel
     * and data borrowed. */
    void (*sub)(void *owner, const char *channel, size_t clen,
                const char *data, size_t len, enum cl_sub_kind kind);
};

struct cl_link_config {
    const char *redis;        /* host:port, [v6]:port or unix:/path */
    const char *password, *user;
    double timeout;           /* seconds for any reply */
};

/* Starts connecting at once; reconnects by itself with exponential
 * back-off (0.1 s doubling to 5 s, with jitter) whenever the link fails.
 * NULL on out of memory or a malformed address. */
struct cl_link *cl_link_new(struct pc_worker *w,
                            const struct cl_link_config *cfg,
                            const struct cl_link_events *ev);
/* Closes both connections (pending callbacks get NULL) and frees l. */
void cl_link_free(struct cl_link *l);
bool cl_link_up(const struct cl_link *l);

/* Sends one command on the command connection; cb runs once, on this
 * worker. argv/lens are copied. -ENOTCONN when the link is not up (cb is
 * not called), 0 otherwise. */
int cl_cmd(struct cl_link *l, cl_reply_cb *cb, void *arg, int argc,
           const char **argv, const size_t *lens);
/* EVALSHA of one of the scripts below with its keys then its args (at
 * most CL_EVAL_ARGS of them). */
int cl_eval(struct cl_link *l, unsigned script, cl_reply_cb *cb, void *arg,
            int nkeys, int argc, const char **argv, const size_t *lens);
/* SUBSCRIBE or UNSUBSCRIBE channels on the subscription connection
 * (confirmations come to events.sub). -ENOTCONN when down. */
int cl_subscribe(struct cl_link *l, bool on, int n, const char **channels,
                 const size_t *lens);

struct cl_link_stats {
    uint64_t connects, failures, timeouts, commands;
};
const struct cl_link_stats *cl_link_stats(const struct cl_link *l);

/* ---- the scripts: cluster_lua.c ---------------------------------------- */

#define CL_BATCH_MAX 64 /* lines of a room in one CL_PUBLISH */
#define CL_EVAL_ARGS (CL_BATCH_MAX + 4)

enum cl_script {
    CL_PUBLISH, /* keys meta stream; args history channel payload...
                   (CL_BATCH_MAX at most) -> {last offset, epoch} */
    CL_META,    /* keys meta -> {offset, epoch}, making the epoch */
    CL_CLAIM,   /* keys nick; args value ttl_ms -> 1 ours, 0 taken */
    CL_RELEASE, /* keys nick; args value -> deleted or not */
    CL_TELL,    /* keys nick; args node line -> receivers, -1 if the nick
                   is this node's (gone here), 0 if nobody has it */
    CL_MEMBER,  /* keys members-of-node nodes-of-room rooms-of-node nodes;
                   args field value node ttl_ms room count: one member
                   set (or, value "", removed) and the room's count */
    CL_NAMES,   /* keys nodes-of-room; args members-prefix node -> the
                   other nodes' member lines */
    CL_ROOMS,   /* keys nodes; args node -> name, "count topic", ... of
                   the other nodes' rooms */
    CL_SCRIPTS
};
extern const char *const cl_script_source[CL_SCRIPTS];

/* ---- a room's line as Redis keeps it: cluster_wire.c ------------------ */

/* "1\tNODE\tRUN\tWORKER\tSEQ\tKIND\tTIME\tDEDUP\tFROM\tNICK\tUSER\tHOST\t
 * TARGET\tTEXT": who sent it (node, process run, worker, serial: how a
 * home knows its own lines when they come back), the event, and its text
 * last, as it is (it may hold tabs). */
struct cl_line {
    char node[65];
    uint32_t run;
    unsigned worker;
    uint64_t seq;
    enum room_event_kind kind;
    int64_t time_ms;
    uint64_t dedup, from;
    char nick[ROOM_NICK_MAX + 1], user[ROOM_USER_MAX + 1];
    char host[ROOM_HOST_MAX + 1], target[ROOM_NICK_MAX + 1];
    const char *text;     /* borrowed from the decoded payload */
    size_t len;
};
/* A malloc'd payload of ln (text and len included) in *out. 0 or -ENOMEM. */
int cl_line_encode(const struct cl_line *ln, char **out, size_t *len);
/* Fills ln from data (ln->text points into data). 0 or -EINVAL. */
int cl_line_decode(struct cl_line *ln, const char *data, size_t len);

/* ---- per worker: cluster.c --------------------------------------------- */

#define CL_LAG_BUCKETS 8 /* 1, 2, 5, 10, 50, 100, 1000 ms and more */

struct cl_stats {
    uint64_t published, publish_failed, delivered, remote_delivered;
    uint64_t gaps_filled, gaps_announced, lines_held, not_delivered;
    uint64_t nick_claims, nick_lost, tells_out, tells_in;
    uint64_t lag[CL_LAG_BUCKETS]; /* lines from publish to delivery here */
};

/* cluster_metrics.c: the counters above as pc_metric_* series. */
struct cl_metrics;
struct cl_metrics *cl_metrics_new(struct pc_worker *w);
/* Brings the series up to date with the counters (each tick). */
void cl_metrics_update(struct cl_metrics *m, const struct room_cluster *cl);
void cl_metrics_free(struct cl_metrics *m);
/* Counts one line delivered lag_ms after it was said. */
void cl_stats_lag(struct cl_stats *s, int64_t lag_ms);

struct room_cluster {
    struct room_core *core;
    struct cl_link *link;
    char node[65];
    uint32_t run;          /* this process's incarnation: lines it sent */
    uint32_t node_hash;
    int64_t history;
    double nick_ttl, hold;
    double batch_delay;    /* how long a line waits for more to share its
                              CL_PUBLISH (0: the end of the loop pass) */
    /* Send the rooms on flush_list: after batch_delay, or with 0 just
     * before the loop next waits for events (libev's prepare watcher,
     * on the worker's own loop: no extra pass, no timer). */
    struct pc_timer batch;
    ev_prepare batch_now;
    struct cl_room *flush_list;
    uint64_t seq;          /* serial of the lines this worker sent */
    unsigned held;         /* lines waiting for Redis, every room */
    struct room_map rooms; /* folded name -> struct cl_room */
    struct pc_timer tick;
    double next_refresh, next_log;
    char self_channel[96]; /* pcw:NODE:WORKER: private lines to here */
    struct cl_stats stats;
    struct cl_metrics *metrics;
};

/* Made by room_core_attach when pc_cluster_section() is set. */
struct room_cluster *room_cluster_new(struct room_core *core,
                                      const struct pc_section *cfg);
void room_cluster_free(struct room_cluster *cl);

/* ---- rooms: cluster_room.c ---------------------------------------------- */

/* The core's room_fanout hands each event of a room here first. Lines
 * (say, action, notice, CTCP) go to Redis and return true: they are
 * delivered here when they come back, in the room's one order. Other
 * events (join, part, quit, nick, topic) are published for the other
 * nodes and return false: this node shows them at once, as without a
 * cluster. */
bool cl_room_publish(struct room_cluster *cl, struct room_home *r,
                     const struct room_msg *by, enum room_event_kind kind,
                     const char *target, const char *text, size_t len,
                     uint64_t dedup);
/* At the home, before a join is decided: true when it must wait for the
 * room's subscription (m is kept and handled again once it is live). */
bool cl_room_hold_join(struct room_cluster *cl, const struct room_msg *m);
/* A room got its first member on this node: subscribe to it. */
void cl_room_home_made(struct room_cluster *cl, struct room_home *r);
/* Its last member here left: unsubscribe once its own lines are out. */
void cl_room_home_gone(struct room_cluster *cl, const char *key);
/* The link is up (resubscribe and recover every room) or went down. */
void cl_rooms_up(struct room_cluster *cl);
void cl_rooms_down(struct room_cluster *cl);
/* A confirmation or message on a room's channel. */
void cl_room_sub(struct room_cluster *cl, const char *key, const char *data,
                 size_t len, enum cl_sub_kind kind);
/* Sends the lines of every room on cl->flush_list (the batch timer's
 * and the prepare watcher's callbacks). */
void cl_rooms_flush(struct room_cluster *cl);
void cl_rooms_flush_timer(struct pc_timer *t);
void cl_rooms_flush_prepare(struct ev_loop *loop, ev_prepare *w, int revents);
/* Once a second: tells senders of lines held past `hold`. */
void cl_rooms_tick(struct room_cluster *cl);
void cl_rooms_free(struct room_cluster *cl);

/* ---- nicks and private lines: cluster_nick.c ---------------------------- */

/* At the nick's owner worker, after the local check granted key to the
 * claim m (a local entry exists): confirms it in Redis, then sends m's
 * result on. Returns false when the link is down (grant at once; the
 * next refresh claims it). */
bool cl_nick_claim(struct room_cluster *cl, const struct room_msg *m,
                   const char *key);
void cl_nick_release(struct room_cluster *cl, const char *key,
                     unsigned worker, uint64_t id);
/* Refreshes every nick this worker owns (every nick_ttl / 3, and when the
 * link comes up); a nick found taken by another node renames its user. */
void cl_nicks_refresh(struct room_cluster *cl);
/* At the owner, for a nick not held on this node: looks it up in Redis
 * and passes the line to the node that has it. False: link down. */
bool cl_tell(struct room_cluster *cl, const struct room_msg *m);
/* A message on this worker's own channel (a private line from afar). */
void cl_self_message(struct room_cluster *cl, const char *data, size_t len);
/* At the user's worker: u lost its nick to another node. */
void cl_nick_lost(struct room_core *core, struct room_msg *m);

/* ---- who is where: cluster_names.c -------------------------------------- */

/* At the home: member mb of r joined, changed (nick, away) or left
 * (gone). Kept in Redis per room and node, with a time to live that the
 * refresh renews, so a dead node's members vanish within nick_ttl. */
void cl_member(struct room_cluster *cl, const struct room_home *r,
               const struct room_member *mb, bool gone);
/* Renews this worker's rooms in Redis (with the nick refresh); after a
 * reconnect, first writes them again in full. */
void cl_members_refresh(struct room_cluster *cl, bool rewrite);
/* At the home, for NAMES/WHO/who (kind ROOM_ANS_NAMES) and a join's
 * member list (ROOM_ANS_JOIN): answers m with the members of every node
 * once Redis replies (this node's alone if it does not within the
 * link's timeout). False when the link is down (answer with this
 * node's now). */
bool cl_names(struct room_cluster *cl, const struct room_msg *m,
              enum room_answer_kind kind);
/* At the asker of /rooms or LIST: adds the other nodes' rooms to text
 * ("name members topic\n" lines, merged by name), then calls done.
 * False when the link is down. */
bool cl_rooms(struct room_cluster *cl, uint64_t user,
              void (*done)(struct room_core *core, uint64_t user,
                           const char *more, size_t len));

/* ---- shared helpers: cluster.c ------------------------------------------ */

/* The Redis keys of a room: pcr:{KEY}:m (meta), :s (stream), :c (channel). */
int cl_room_key(char *out, size_t size, const char *key, char what);
/* The value a nick's Redis key (pcn:NICK) holds for user id of worker:
 * "NODE\tRUN\tWORKER\tID", which is where a private line goes. */
int cl_nick_value(const struct room_cluster *cl, char *out, size_t size,
                  unsigned worker, uint64_t id);

#endif
