/* The room core: rooms, nicks and the rules between them, shared by every
 * face (a protocol module that parses and formats one wire format: chat,
 * irc). A face never decides order or membership; it asks the core and
 * renders what the core tells it.
 *
 * Model. Each worker has one core (struct room_core), shared by all face
 * listeners on that worker. A room is named case-insensitively (rfc1459
 * folding) and has a home worker, a hash of its folded name: the home
 * keeps its members, modes, topic and bans, and numbers its events; it
 * sends each event once to every worker with members, which renders it
 * once per face (a shared buffer) for its local members. A nick has an
 * owner worker, a hash of the folded nick, where claims meet: nicks are
 * unique across every face. Everything that crosses workers is a message
 * (pc_post), FIFO per pair of workers, so one sequencer per room gives
 * every member of every face the same order.
 *
 * Threads: every function here runs on the worker that owns the user
 * (struct room_user) it is given, and calls the face back on that worker.
 * Requests that need another worker (claiming a nick, joining, asking
 * who is in a room) hold the user's input until the face's answer()
 * has run, so answers come in the order of the requests. */
#ifndef PC_ROOM_ROOM_H
#define PC_ROOM_ROOM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "percore/percore.h"
#include "protocols/room/bucket.h"
#include "protocols/room/fold.h"

#define ROOM_NICK_MAX 32  /* bytes of a nick */
#define ROOM_NAME_MAX 32  /* bytes of a room name */
#define ROOM_USER_MAX 16  /* bytes of an IRC user name ("ident") */
#define ROOM_HOST_MAX 63  /* bytes of a host (a peer address) */
#define ROOM_REAL_MAX 64  /* bytes of a real name */
#define ROOM_TOPIC_MAX 390 /* bytes of a topic */
#define ROOM_KEY_MAX 23   /* bytes of a room key (+k) */
#define ROOM_BANS_MAX 64  /* bans per room */
#define ROOM_VARIANTS 4   /* shared buffers a face may build per event */

/* Room modes, named by their IRC letters, which every face shares. */
enum room_mode {
    ROOM_MODE_TOPIC_LOCK = 1 << 0, /* t: only operators set the topic */
    ROOM_MODE_NO_EXTERNAL = 1 << 1, /* n: only members speak */
    ROOM_MODE_MODERATED = 1 << 2, /* m: only voiced members and ops speak */
    ROOM_MODE_INVITE_ONLY = 1 << 3, /* i: joining needs an invitation */
    ROOM_MODE_SECRET = 1 << 4,    /* s: not listed to non-members */
};

/* A member's standing in a room. */
enum room_prefix { ROOM_OP = 1 << 0, ROOM_VOICE = 1 << 1 };

/* Why a request was refused. */
enum room_status {
    ROOM_OK,
    ROOM_NO_SUCH_NICK,
    ROOM_NO_SUCH_ROOM,
    ROOM_NOT_MEMBER,        /* the requester is not in the room */
    ROOM_NOT_OP,            /* the request needs a room operator */
    ROOM_TARGET_NOT_MEMBER, /* the nick acted on is not in the room */
    ROOM_ALREADY_MEMBER,    /* an invitation for a member */
    ROOM_NICK_TAKEN,
    ROOM_NICK_RESERVED,     /* "guest" and digits: generated nicks */
    ROOM_BANNED,
    ROOM_INVITE_ONLY,
    ROOM_BAD_KEY,
    ROOM_FULL,
    ROOM_CANNOT_SPEAK,      /* +m without voice, +n from outside, or banned */
    ROOM_BAN_LIST_FULL,
    ROOM_NO_MEMORY,
    ROOM_NOT_DELIVERED,     /* cluster: Redis stayed unreachable */
};

/* ---- what faces render ------------------------------------------------ */

enum room_event_kind {
    ROOM_EV_SAY,    /* text said in a room or to a nick */
    ROOM_EV_ACTION, /* "/me text" (IRC: CTCP ACTION) */
    ROOM_EV_NOTICE, /* a notice: never answered automatically */
    ROOM_EV_CTCP,   /* another CTCP request: text is its body without \1 */
    ROOM_EV_JOIN,
    ROOM_EV_PART,   /* text: the reason, maybe empty */
    ROOM_EV_QUIT,   /* text: the reason */
    ROOM_EV_NICK,   /* target: the new nick */
    ROOM_EV_TOPIC,  /* text: the new topic, maybe empty */
    ROOM_EV_MODE,   /* text: the applied changes, "+o-v alice bob" */
    ROOM_EV_KICK,   /* target: who was kicked; text: the reason */
    ROOM_EV_INVITE, /* to a nick: target is the invitee, room the room */
    ROOM_EV_MISSED, /* cluster: lines of the room may have been lost (Redis
                       restarted without them, or trimmed them); from the
                       server, no text */
};

/* One event, borrowed for the duration of a face's deliver(). */
struct room_event {
    enum room_event_kind kind;
    const char *room;      /* display name; NULL for a private message */
    const char *to;        /* private: the recipient's nick */
    uint64_t from;         /* the acting user's id, 0 for the server */
    const char *nick, *user, *host; /* the acting user */
    const char *target;
    const char *text;
    size_t len;
    int64_t time_ms;       /* stamped where the event was ordered */
};

/* One member as listed by room_names(), in answer->members. */
struct room_listed {
    uint8_t prefix;        /* enum room_prefix bits */
    bool away;
    const char *nick, *user, *host, *realname;
};

enum room_answer_kind {
    ROOM_ANS_NICK,     /* a nick claim: status, nick */
    ROOM_ANS_JOIN,     /* room; on ROOM_OK after the user's JOIN event:
                          topic, topic_by, topic_time, members */
    ROOM_ANS_PART,     /* room, status */
    ROOM_ANS_SAID,     /* a private message: status, nick; away text */
    ROOM_ANS_NAMES,    /* room, status, members (sorted by nick) */
    ROOM_ANS_TOPIC,    /* room, status, topic, topic_by, topic_time */
    ROOM_ANS_MODE,     /* room, status, text: "+nt" and parameters,
                          created; or a refused change (mode letter) */
    ROOM_ANS_BANS,     /* room, status, text: "mask setter time\n"... */
    ROOM_ANS_KICK,     /* room, status, nick */
    ROOM_ANS_INVITE,   /* room, status, nick */
    ROOM_ANS_ROOMS,    /* text: "name members modes topic\n" per room */
    ROOM_ANS_USERS,    /* count: users on every worker; rooms: rooms */
    ROOM_ANS_WHOIS,    /* text: one line per nick found (room_whois) */
    ROOM_ANS_CANNOT_SPEAK, /* room: a line was refused (+m, +n, ban) */
};

struct room_answer {
    enum room_answer_kind kind;
    enum room_status status;
    const char *room;
    const char *nick;
    const char *text;
    size_t len;
    char mode;             /* ROOM_ANS_MODE refusal: the mode letter */
    const char *topic, *topic_by;
    int64_t topic_time, created;
    const struct room_listed *members;
    unsigned nmembers;
    uint64_t count, rooms;
};

struct room_user;

/* What a face gives the core. */
struct room_face {
    const char *name;
    /* Renders ev for u, a local member of ev's room (or its recipient).
     * cache[0..ROOM_VARIANTS) starts NULL for each event on each worker:
     * build a shared buffer the first time a variant is needed, keep it
     * there, and write it with room_write_shared(); the core drops the
     * references after the last member. May write nothing. */
    void (*deliver)(struct room_user *u, const struct room_event *ev,
                    struct pc_sbuf **cache);
    /* The answer to a request of u's. Its strings are borrowed. */
    void (*answer)(struct room_user *u, const struct room_answer *a);
};

/* Limits of one face listener, read from its options; the face keeps the
 * struct (reload updates it in place) and every user points at it. */
struct room_limits {
    size_t sendq;          /* queued output that cuts a user off */
    double flood_rate;     /* lines per second; 0 = no limit */
    double flood_burst;
};

/* Counters of one face listener on one worker (pc_metric handles,
 * labelled with the listener): set by room_core_attach, and every user
 * of the listener counts into them. */
struct room_counters {
    struct pc_metric *deliveries;  /* events written to a member */
    struct pc_metric *cutoffs;     /* users cut off over their sendq */
    struct pc_metric *flood_holds; /* lines held by flood control */
};

/* A room a user is in (or joining, or leaving). Core-owned. */
struct room_membership;
struct room_gather;

/* The core's part of a face's connection state: the first member of it.
 * The face may set user, host and realname (malloc'd) itself; nick only
 * through the core (room_user_guest, room_nick); the rest is the core's. */
struct room_user {
    struct pc_conn *c;
    struct room_core *core;
    const struct room_face *face;
    const struct room_limits *limits;
    const struct room_counters *counters;
    uint64_t id;
    char nick[ROOM_NICK_MAX + 1];  /* "" until a nick is granted */
    char user[ROOM_USER_MAX + 1];
    char host[ROOM_HOST_MAX + 1];
    char *realname;                /* malloc'd or NULL */
    char *away;                    /* malloc'd or NULL: here */
    struct room_membership *rooms;
    struct room_gather *gather;    /* a question to every worker */
    uint32_t seen[8];    /* NICK and QUIT events already shown (dedup) */
    uint32_t events;     /* serial of this user's NICK/QUIT events */
    uint16_t awaiting;   /* answers due before input resumes */
    bool flood_wait;
    bool claiming;
    bool invisible;      /* user mode +i */
    bool registered;     /* counted in room_users() */
    bool cut;            /* cut off over its sendq */
    struct room_bucket bucket;
    struct pc_timer flood_timer;
};

/* ---- per-worker life ------------------------------------------------- */

/* Joins this face listener (cfg) to the worker's core (created by the
 * first; the core's messages carry the first face's service) and
 * registers the listener's counters into *counters. Returns the core or
 * NULL (out of memory). worker_init of a face. */
struct room_core *room_core_attach(struct pc_worker *w,
                                   const struct pc_section *cfg,
                                   struct room_counters *counters);
/* The face listener is done; the last one frees the core. worker_fini. */
void room_core_detach(struct room_core *core);

/* What every face's worker state starts with, so that attaching to the
 * core and detaching are written once for all faces (the cores' messages
 * go to the worker slot they share, not to a face). */
struct room_face_worker {
    struct room_core *core;
    struct room_counters counters; /* this listener's room metrics */
};
/* A face's worker state of `size` bytes (zeroed; a struct whose first
 * member is a struct room_face_worker) attached to the worker's core.
 * Returns it or NULL (out of memory). worker_init. */
void *room_face_worker_new(struct pc_worker *w, const struct pc_section *cfg,
                           size_t size);
/* Detaches and frees what room_face_worker_new made, once the face has
 * freed its own parts; usable as a face's worker_fini. */
void room_face_worker_fini(struct pc_worker *w, void *wstate);
/* Ends a member's connection after its queued output with the face's
 * goodbye for a shutdown (pc_conn_end): the on_stop of chat and irc. */
void room_face_on_stop(struct pc_conn *c);

/* ---- a user ---------------------------------------------------------- */

/* Registers a connection's user (state zeroed by the framework; user and
 * realname may be set) and sets its host from the peer's address; limits
 * and counters are its listener's, kept by the face. Returns 0 or
 * -ENOMEM (then abort c). on_open. */
int room_user_open(struct room_user *u, struct room_core *core,
                   struct pc_conn *c, const struct room_face *face,
                   const struct room_limits *limits,
                   const struct room_counters *counters);
/* Leaves every room with a QUIT event (reason), frees the nick and what
 * the core holds for u. on_close; idempotent. */
void room_user_close(struct room_user *u, const char *reason);

/* The names of the rooms u is in (joined, not joining or leaving), at
 * most max of them. Returns how many. */
unsigned room_user_rooms(const struct room_user *u,
                         char (*names)[ROOM_NAME_MAX + 1], unsigned max);

/* Flood control: takes a token for one line and returns true, or holds
 * u's input until a token is there and returns false (the line waits). */
bool room_user_admit(struct room_user *u);
/* Whether a request holds u's input: stop consuming lines. */
static inline bool room_user_waiting(const struct room_user *u)
{
    return u->awaiting || u->flood_wait;
}

/* Writes one unit (a whole line) to u, counted against its sendq: over
 * it, u is cut off after its last whole line with the face's goodbye
 * (pc_conn_cut, PC_CLOSE_OUTPUT_LIMIT). 0 or negative (nothing written). */
int room_write(struct room_user *u, const void *data, size_t len);
int room_write_shared(struct room_user *u, struct pc_sbuf *b);

/* A generated nick ("guest" and a number unique to the process) claimed
 * for u at once: for faces where a user starts with a name. */
void room_user_guest(struct room_user *u);

/* ---- requests (answered by face->answer unless said otherwise) ------- */

/* Claims nick for u (case-insensitively unique across every face). On
 * ROOM_OK u->nick is the new nick, the old one is freed and every room u
 * is in sees a ROOM_EV_NICK. */
void room_nick(struct room_user *u, const char *nick);
/* Joins room (key: "" or the +k key). want_info: answer with the topic
 * and members after u's own JOIN event. Answered as ROOM_ANS_JOIN. */
void room_join(struct room_user *u, const char *room, const char *key,
               bool want_info);
/* Leaves room with a PART event; answered as ROOM_ANS_PART after u has
 * received every event ordered before its leave. */
void room_part(struct room_user *u, const char *room, const char *reason);
/* Says text in a room u is in (or any room without +n). Not answered
 * unless refused (ROOM_ANS_CANNOT_SPEAK, for SAY/ACTION/CTCP only). */
void room_say(struct room_user *u, const char *room,
              enum room_event_kind kind, const char *text, size_t len);
/* Says text to one nick. Answered as ROOM_ANS_SAID unless kind is a
 * notice (a notice is never answered, not even with an error). */
void room_tell(struct room_user *u, const char *nick,
               enum room_event_kind kind, const char *text, size_t len);
/* Members of room, for /who, NAMES and WHO. */
void room_names(struct room_user *u, const char *room);
/* The topic (topic == NULL) or a new one. */
void room_topic(struct room_user *u, const char *room, const char *topic);
/* One mode change of a room; an op's changes are applied in order and
 * seen as one ROOM_EV_MODE. arg: a nick for o/v, a mask for b, the key
 * for k, the count for l; NULL if none. */
struct room_mode_change {
    bool add;
    char mode;
    const char *arg;
};
void room_mode(struct room_user *u, const char *room,
               const struct room_mode_change *changes, unsigned n);
/* The room's modes (ROOM_ANS_MODE) or its ban list (ROOM_ANS_BANS). */
void room_modes(struct room_user *u, const char *room);
void room_bans(struct room_user *u, const char *room);
void room_kick(struct room_user *u, const char *room, const char *nick,
               const char *reason);
void room_invite(struct room_user *u, const char *room, const char *nick);
/* Every room (ROOM_ANS_ROOMS), or how many users and rooms there are
 * (ROOM_ANS_USERS), gathered from every worker. */
void room_list(struct room_user *u);
void room_users(struct room_user *u);
/* Finds nicks (space-separated) on every worker: ROOM_ANS_WHOIS holds a
 * line per nick found, "nick\tuser\thost\trooms\trealname\taway\n",
 * rooms space-separated with "@" or "+" for ops and voice, away empty
 * when the user is here. */
void room_whois(struct room_user *u, const char *nicks);
/* Sets (text) or clears (NULL) u's away message; rooms' lists follow. */
void room_away(struct room_user *u, const char *text);

#endif
