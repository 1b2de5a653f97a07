/* The room core's insides, shared by its files (core.c: users, messages;
 * home.c: what a room's home decides; names.c: nicks and private lines;
 * gather.c: questions to every worker). Faces include room.h only.
 * Everything here belongs to one worker thread. */
#ifndef PC_ROOM_CORE_H
#define PC_ROOM_CORE_H

#include "protocols/room/map.h"
#include "protocols/room/room.h"

struct room_cluster;

struct room_core {
    struct pc_worker *w;
    struct room_cluster *cluster; /* NULL without [cluster] */
    unsigned id, nworkers;
    unsigned faces;          /* listeners attached */
    uint64_t guests;         /* nicks generated here */
    struct room_map users;   /* id -> struct room_user, this worker's */
    struct room_map by_nick; /* folded nick -> struct room_user, here */
    struct room_map nicks;   /* folded nick -> struct room_nick, owned */
    struct room_map homes;   /* folded name -> struct room_home */
    struct room_map locals;  /* folded name -> struct room_local */
    /* This worker's share of the room metrics (metrics.c). */
    struct pc_metric *rooms;   /* rooms homed here */
    struct pc_metric *members; /* memberships of rooms homed here */
    struct pc_metric *lines;   /* lines ordered here: ROOM_LINES_* */
};

/* Values of the label "to" of core->lines. */
enum { ROOM_LINES_ROOM, ROOM_LINES_NICK };

/* Registers the core's metrics of worker w into core. metrics.c. */
void room_metrics_init(struct room_core *core, struct pc_worker *w);
/* Registers one face listener's counters. metrics.c. */
void room_metrics_listener(struct pc_worker *w, const struct pc_section *cfg,
                           struct room_counters *counters);

/* Who holds a nick, at the nick's owner worker. */
struct room_nick {
    char key[ROOM_NICK_MAX + 1]; /* first: the map's key */
    uint64_t user;
    unsigned worker;
};

/* ---- at a room's home ------------------------------------------------- */

struct room_member {
    uint64_t id;     /* first: the map's key */
    unsigned worker;
    uint8_t prefix;
    bool away;
    char nick[ROOM_NICK_MAX + 1];
    char user[ROOM_USER_MAX + 1];
    char host[ROOM_HOST_MAX + 1];
    char *realname;
};

struct room_ban {
    char mask[ROOM_NICK_MAX + ROOM_USER_MAX + ROOM_HOST_MAX + 3];
    char by[ROOM_NICK_MAX + 1];
    int64_t time_ms;
};

struct room_home {
    char key[ROOM_NAME_MAX + 1]; /* first: the map's key */
    struct room_core *core;      /* its worker's: counts rooms, members */
    char name[ROOM_NAME_MAX + 1];
    uint64_t events;             /* numbered so far */
    unsigned members;
    unsigned modes;              /* enum room_mode */
    unsigned limit;              /* +l, 0 = none */
    char pass[ROOM_KEY_MAX + 1]; /* +k, "" = none */
    char *topic;
    char topic_by[ROOM_NICK_MAX + ROOM_USER_MAX + ROOM_HOST_MAX + 3];
    int64_t topic_time, created;
    struct room_ban *bans;
    unsigned nbans;
    char (*invited)[ROOM_NICK_MAX + 1]; /* folded nicks */
    unsigned ninvited;
    struct room_map by_id;       /* user id -> struct room_member */
    unsigned per_worker[];       /* members living on each worker */
};

/* ---- at every worker with members -------------------------------------- */

struct room_link {
    struct room_link *prev, *next;
};

struct room_local {
    char key[ROOM_NAME_MAX + 1]; /* first: the map's key */
    unsigned members;
    struct room_link head;       /* circular list of memberships */
};

enum membership_state { MS_JOINING, MS_IN, MS_LEAVING };

struct room_membership {
    struct room_link link;       /* on local->head while listed */
    struct room_membership *next; /* the user's next room */
    struct room_user *u;
    struct room_local *local;    /* NULL until the home acknowledged */
    uint32_t gen;
    uint8_t state;
    uint8_t prefix;              /* mirrored from the home's MODE events */
    char key[ROOM_NAME_MAX + 1];
    char name[ROOM_NAME_MAX + 1];
};

/* ---- messages --------------------------------------------------------- */

enum room_op {
    OP_CLAIM,        /* to the nick's owner: user wants nick (flag: guest) */
    OP_CLAIM_RESULT, /* to the user: status */
    OP_RELEASE,      /* to the nick's owner */
    OP_JOIN,         /* to home: text key, text2 realname; flag want_info */
    OP_JOIN_ACK,     /* to the user's worker: list the membership */
    OP_JOIN_REFUSED, /* to the user's worker: status */
    OP_LEAVE,        /* to home: flag LEAVE_*; text the reason */
    OP_LEAVE_ACK,    /* to the user's worker: unlist; flag: answer it */
    OP_EVENT,        /* to a worker with members: deliver ev */
    OP_SAY,          /* to home: kind in flag; text */
    OP_RENAME,       /* to home: nick is now other */
    OP_AWAY,         /* to home: flag away */
    OP_TOPIC,        /* to home: flag set; text */
    OP_MODE,         /* to home: text "+-letter arg\n" per change */
    OP_MODES,        /* to home: flag 0 modes, 1 bans, 2 names */
    OP_KICK,         /* to home: other the target; text the reason */
    OP_KICKED,       /* to the target's worker: unlist without answer */
    OP_INVITE,       /* to home, then the nick's owner, then its worker */
    OP_TELL,         /* to the nick's owner, then the target's worker */
    OP_ANSWER,       /* to the user's worker: a struct room_answer, packed */
    OP_GATHER_ASK,   /* to every worker: flag GATHER_* */
    OP_GATHER_REPLY, /* to the asker: text to append */
    OP_NICK_LOST,    /* cluster, to the user's worker: another node has
                        its nick (other): rename it */
};

enum { LEAVE_PART, LEAVE_QUIT, LEAVE_SILENT };
enum { GATHER_ROOMS, GATHER_USERS, GATHER_WHOIS };
enum { MODES_MODES, MODES_BANS, MODES_NAMES };

struct room_msg {
    struct pc_msg base; /* first: the framework's part */
    uint8_t op, flag, kind, status;
    char mode;
    unsigned worker;    /* where `id` lives */
    uint32_t gen;
    uint64_t id;        /* the user the message is about */
    uint64_t dedup;     /* NICK and QUIT events: shown once per user */
    int64_t time_ms, time2;
    uint64_t count, count2;
    char nick[ROOM_NICK_MAX + 1];
    char user[ROOM_USER_MAX + 1];
    char host[ROOM_HOST_MAX + 1];
    char room[ROOM_NAME_MAX + 1]; /* display name */
    char other[ROOM_NICK_MAX + 1];
    char extra[ROOM_NICK_MAX + ROOM_USER_MAX + ROOM_HOST_MAX + 3];
    uint32_t len, len2; /* text[0..len), '\0', text2 = text + len + 1 */
    char text[];
};

/* A message of op carrying text (copied, may be NULL) and text2. */
struct room_msg *room_msg_new(struct room_core *core, enum room_op op,
                              const char *text, size_t len,
                              const char *text2, size_t len2);
static inline char *room_msg_text2(struct room_msg *m)
{
    return m->text + m->len + 1;
}
/* A copy of m with its texts, for keeping or sending on (caller owns
 * it); NULL, logged, on out of memory. */
struct room_msg *room_msg_copy(const struct room_msg *m);
/* Copies u's identity (id, worker, nick, user, host) into m. */
void room_msg_from(struct room_msg *m, const struct room_user *u);
/* Sends m to worker `to`; handled at once when that is this worker. */
void room_send(struct room_core *core, unsigned to, struct room_msg *m);
unsigned room_home_of(const struct room_core *core, const char *key);
struct room_user *room_user_find(struct room_core *core, uint64_t id);
/* A user of this worker by folded nick, or NULL. */
struct room_user *room_user_by_nick(struct room_core *core, const char *key);
/* Sets u->nick and keeps the by-nick index in step. */
void room_user_set_nick(struct room_user *u, const char *nick);
int64_t room_now_ms(struct room_core *core);
/* The key of u's latest NICK or QUIT (after u->events++), the same in
 * every room it reaches: a hash of the user's id and the event's serial,
 * never 0. (Not a shift of the id: its top bits are the worker's.) */
static inline uint64_t room_event_key(const struct room_user *u)
{
    uint64_t k = room_hash_u64(u->id ^ ((uint64_t)u->events << 40)) + u->events;
    return k ? k : 1;
}

/* Answers a user on any worker; `resume`: it ends a wait. */
void room_answer_to(struct room_core *core, unsigned worker, uint64_t id,
                    struct room_msg *a, bool resume);
/* Runs u's face->answer() for a, ending a wait if `resume`. */
void room_answer_local(struct room_user *u, const struct room_answer *a,
                       bool resume);
void room_wait(struct room_user *u);
void room_resume(struct room_user *u);

/* Delivers ev to this worker's members of local room (or to one user). */
void room_deliver(struct room_core *core, struct room_local *local,
                  const struct room_event *ev, uint64_t dedup);
void room_deliver_one(struct room_user *u, const struct room_event *ev);
struct room_local *room_local_find(struct room_core *core, const char *key);
struct room_membership *room_membership_find(struct room_user *u,
                                             const char *key);
void room_membership_unlist(struct room_membership *ms);
void room_membership_free(struct room_user *u, struct room_membership *ms);

/* At a room's home (home.c, modes.c). */
struct room_home *room_home_find(struct room_core *core, const char *name);
struct room_member *room_member_find(struct room_home *r, uint64_t id);
struct room_member *room_member_by_nick(struct room_home *r,
                                        const char *nick);
/* Numbers one event of r by the user `by` describes and sends it once to
 * every worker with members. With a cluster, lines go through Redis
 * first (cluster.h: cl_room_publish) and come back to room_fanout_at. */
void room_fanout(struct room_core *core, struct room_home *r,
                 const struct room_msg *by, enum room_event_kind kind,
                 const char *target, const char *text, size_t len,
                 uint64_t dedup);
/* The same, on this node only, stamped time_ms. */
void room_fanout_at(struct room_core *core, struct room_home *r,
                    const struct room_msg *by, enum room_event_kind kind,
                    const char *target, const char *text, size_t len,
                    uint64_t dedup, int64_t time_ms);
/* Answers the user request m came from; a: a prepared OP_ANSWER or NULL. */
void room_home_answer(struct room_core *core, const struct room_msg *m,
                      enum room_answer_kind kind, enum room_status status,
                      struct room_msg *a);
/* An OP_ANSWER holding r's members, topic and creation time. */
struct room_msg *room_pack_members(struct room_core *core,
                                   struct room_home *r);
void room_home_mode(struct room_core *core, struct room_msg *m);
void room_home_modes(struct room_core *core, struct room_msg *m);

/* The handlers of each file, called by core.c's dispatcher. */
void room_home_handle(struct room_core *core, struct room_msg *m);
void room_names_handle(struct room_core *core, struct room_msg *m);
void room_gather_handle(struct room_core *core, struct room_msg *m);
void room_homes_fini(struct room_core *core);
/* Drops u's unanswered question to every worker. */
void room_gather_free(struct room_user *u);
void room_nicks_fini(struct room_core *core);
/* At a nick's owner: sends claim m's result to its user (none for a
 * generated nick). */
void room_claim_answer(struct room_core *core, const struct room_msg *m,
                       bool granted);
/* At a nick's owner: forgets key if user id holds it. */
void room_nick_forget(struct room_core *core, const char *key, uint64_t id);
/* Answers the user m came from (its worker and id), ending its wait. */
void room_answer_user(struct room_core *core, const struct room_msg *m,
                      enum room_answer_kind kind, enum room_status status,
                      const char *nick, const char *text);
/* u->nick was just set; old (maybe "") is released, u's rooms told. */
void room_user_renamed(struct room_user *u, const char *old);
void room_release_nick(struct room_core *core, const char *nick, uint64_t id);

/* Member events coming to a worker, and their effect on memberships. */
void room_local_event(struct room_core *core, struct room_msg *m);

#endif
