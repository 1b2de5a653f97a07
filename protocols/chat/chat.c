/* The chat module: a line chat whose rooms span every worker.
 *
 * Nothing is shared between workers; everything that crosses goes as a
 * message (pc_post), which is FIFO per pair of workers. Two kinds of owner
 * make the global guarantees:
 *  - a room's home worker (chat_home_of(room)) holds its members and
 *    numbers its lines: every join, part, rename and line of the room
 *    passes through it, and it sends each line once to every worker with
 *    members, which writes one shared buffer to its local members. One
 *    sequencer and FIFO links give every member the same order;
 *  - a nick's owner worker (chat_home_of(nick)) holds who has the nick:
 *    claims for one nick meet there, so exactly one of two racing wins.
 * A message for the sender's own worker is handled at once instead of
 * posted, which keeps the same order (a worker is one thread) and saves
 * the mailbox round trip for rooms homed where their members are. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "percore/percore.h"
#include "protocols/chat/bucket.h"
#include "protocols/chat/line.h"
#include "protocols/chat/map.h"
#include "protocols/chat/rooms.h"

struct chat_options {
    size_t max_line;
    size_t sendq;
    double flood_rate, flood_burst;
    char default_room[CHAT_ROOM_MAX + 1];
};

/* Who holds a nick, at the nick's owner worker. */
struct chat_nick {
    char nick[CHAT_NICK_MAX + 1]; /* first: the map's key */
    uint64_t conn;
    unsigned worker;
};

struct chat_worker {
    struct pc_worker *w;
    unsigned id, nworkers, service;
    struct chat_options opt;
    uint64_t guests;       /* nicks generated here */
    struct chat_map conns; /* conn id -> struct chat_conn, this worker's */
    struct chat_map nicks; /* nick -> struct chat_nick, nicks owned here */
    struct chat_home home; /* rooms homed here */
    struct chat_local local; /* rooms with members here */
};

/* A /rooms answer being gathered from every worker. */
struct chat_rooms_query {
    unsigned pending;
    size_t len;
    char *text;
};

struct chat_conn {
    struct pc_conn *c;
    struct chat_worker *cw;
    uint64_t id;
    struct chat_link link;         /* on `local`'s list */
    struct chat_local_room *local; /* NULL until the home acknowledged */
    uint32_t join_gen;             /* tells a stale acknowledgement */
    bool in_room;                  /* joined (maybe not yet acknowledged) */
    bool discarding;               /* inside an over-long line */
    bool claiming;                 /* a /nick is on its way */
    bool quitting;                 /* /quit: ignore what follows */
    bool answer_due;   /* a command waits for another worker's answer */
    bool flood_wait;   /* the bucket is empty: the flood timer runs */
    char nick[CHAT_NICK_MAX + 1];
    char room[CHAT_ROOM_MAX + 1];
    char next_room[CHAT_ROOM_MAX + 1]; /* /join waiting for its leave */
    char *quit_reason;
    struct chat_rooms_query *rooms;
    struct chat_bucket bucket;
    struct pc_timer flood_timer;
};

enum chat_op {
    OP_CLAIM,        /* to nick owner: conn wants nick (flag: generated) */
    OP_CLAIM_RESULT, /* to conn's worker: flag = granted */
    OP_RELEASE,      /* to nick owner: conn gives nick up */
    OP_JOIN,         /* to room home: conn (nick) joins */
    OP_JOIN_ACK,     /* to conn's worker: list it locally from now on */
    OP_LEAVE,        /* to room home: conn leaves; text: the notice;
                        flag: answer with OP_LEAVE_ACK */
    OP_LEAVE_ACK,    /* to conn's worker: unlist it from now on */
    OP_SAY,          /* to room home: text is the line to number and send */
    OP_RENAME,       /* to room home: conn is now nick (was other) */
    OP_FANOUT,       /* to a member worker: write text to local members */
    OP_PRIVATE,      /* to nick owner of `other`: deliver text to it */
    OP_REPLY,        /* to conn's worker: write text to conn */
    OP_WHO,          /* to room home: answer conn with the member list */
    OP_ROOMS_ASK,    /* to every worker: answer conn with your home rooms */
    OP_ROOMS_ANSWER, /* to conn's worker: text holds " room(n)" entries */
};

struct chat_msg {
    struct pc_msg base; /* first: the framework's part */
    uint8_t op;
    uint8_t flag;
    unsigned worker;    /* the worker of conn */
    uint32_t gen;
    uint64_t conn;
    char nick[CHAT_NICK_MAX + 1];
    char room[CHAT_ROOM_MAX + 1];
    char other[CHAT_NICK_MAX + 1];
    uint32_t len;
    char text[];
};

static void msg_destroy(struct pc_msg *m)
{
    free(m);
}

static struct chat_msg *msg_new(struct chat_worker *cw, enum chat_op op,
                                const char *text, size_t len)
{
    struct chat_msg *m = malloc(sizeof *m + len + 1);
    if (!m) {
        pc_log(PC_LOG_ERR, "chat: out of memory for a message");
        return NULL;
    }
    memset(m, 0, sizeof *m);
    m->base.service = cw->service;
    m->base.destroy = msg_destroy;
    m->op = (uint8_t)op;
    m->worker = cw->id;
    m->len = (uint32_t)len;
    if (text && len)
        memcpy(m->text, text, len);
    m->text[len] = '\0';
    return m;
}

static void handle(struct chat_worker *cw, struct chat_msg *m);

static void msg_send(struct chat_worker *cw, unsigned to, struct chat_msg *m)
{
    if (!m)
        return;
    if (to == cw->id) {
        handle(cw, m);
        free(m);
        return;
    }
    pc_post(cw->w, to, &m->base);
}

/* ---- connections by id ---------------------------------------------- */

static bool conn_eq(const void *value, const void *key)
{
    return ((const struct chat_conn *)value)->id == *(const uint64_t *)key;
}

static struct chat_conn *conn_find(struct chat_worker *cw, uint64_t id)
{
    return chat_map_get(&cw->conns, chat_hash_u64(id), &id, conn_eq);
}

static bool nick_eq(const void *value, const void *key)
{
    return strcmp(value, key) == 0;
}

/* ---- writing -------------------------------------------------------- */

static void put(struct chat_conn *cc, const char *text, size_t len)
{
    pc_conn_write(cc->c, text, len);
}

static void putf(struct chat_conn *cc, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void putf(struct chat_conn *cc, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof buf) /* keep the line end of a cut line */
        n = sizeof buf - 1, buf[n - 1] = '\n';
    put(cc, buf, (size_t)n);
}

/* Input is held while a command waits for another worker's answer, so
 * answers come in the order of the commands and a line after /nick is
 * said with the new nick; and while flood control makes a line wait. */
static void await_answer(struct chat_conn *cc)
{
    cc->answer_due = true;
    pc_conn_hold_input(cc->c);
}

static void answer_arrived(struct chat_conn *cc)
{
    cc->answer_due = false;
    if (!cc->flood_wait)
        pc_conn_resume_input(cc->c);
}

/* A line for a room's local members: one shared buffer, one reference
 * per member. A member already holding sendq bytes is cut off instead. */
static void deliver_local(struct chat_worker *cw, const char *room,
                          const char *text, size_t len)
{
    struct chat_local_room *r = chat_local_find(&cw->local, room);
    if (!r)
        return;
    struct pc_sbuf *b = pc_sbuf_new(len);
    if (!b) {
        pc_log(PC_LOG_ERR, "chat: out of memory for a line to %s", room);
        return;
    }
    memcpy(b->data, text, len);
    size_t limit = cw->opt.sendq;
    for (struct chat_link *l = r->head.next; l != &r->head; l = l->next) {
        struct chat_conn *cc =
            (struct chat_conn *)((char *)l - offsetof(struct chat_conn, link));
        if (pc_conn_queued(cc->c) + len > limit)
            pc_conn_abort(cc->c, PC_CLOSE_OUTPUT_LIMIT);
        else
            pc_conn_write_shared(cc->c, b);
    }
    pc_sbuf_unref(b);
}

/* At a room's home: one line to every worker with members, in order. */
static void fanout(struct chat_worker *cw, struct chat_home_room *r,
                   const char *text, size_t len)
{
    r->lines++;
    for (unsigned i = 0; i < cw->nworkers; i++) {
        if (!r->per_worker[i])
            continue;
        if (i == cw->id) {
            deliver_local(cw, r->name, text, len);
            continue;
        }
        struct chat_msg *m = msg_new(cw, OP_FANOUT, text, len);
        if (m)
            memcpy(m->room, r->name, sizeof m->room);
        msg_send(cw, i, m);
    }
}

/* ---- rooms, from a member's worker ---------------------------------- */

static void unlist(struct chat_conn *cc)
{
    if (cc->local)
        chat_local_remove(&cc->cw->local, cc->local, &cc->link);
    cc->local = NULL;
    cc->in_room = false;
}

/* Leaving mirrors joining: a member that parts stays listed until the home
 * answers (acknowledged), so it gets every line numbered before its leave,
 * as every other member does. A closing connection goes at once and the
 * home is only told. */
static void leave_room(struct chat_conn *cc, const char *notice_fmt,
                       const char *why, bool acknowledged)
{
    struct chat_worker *cw = cc->cw;
    if (!cc->in_room)
        return;
    if (!acknowledged)
        unlist(cc);
    char notice[CHAT_NICK_MAX + CHAT_ROOM_MAX + 256];
    int n = snprintf(notice, sizeof notice, notice_fmt, cc->nick,
                     why ? why : cc->room);
    if (n < 0 || (size_t)n >= sizeof notice)
        n = snprintf(notice, sizeof notice, "*** %s quit\n", cc->nick);
    struct chat_msg *m = msg_new(cw, OP_LEAVE, notice, (size_t)n);
    if (m) {
        m->conn = cc->id;
        m->flag = acknowledged;
        memcpy(m->room, cc->room, sizeof m->room);
    }
    msg_send(cw, chat_home_of(cc->room, cw->nworkers), m);
}

static void join_room(struct chat_conn *cc, const char *room, bool greeting)
{
    struct chat_worker *cw = cc->cw;
    snprintf(cc->room, sizeof cc->room, "%s", room);
    cc->in_room = true;
    cc->join_gen++;
    struct chat_msg *m = msg_new(cw, OP_JOIN, NULL, 0);
    if (!m)
        return;
    m->conn = cc->id;
    m->gen = cc->join_gen;
    m->flag = greeting;
    memcpy(m->nick, cc->nick, sizeof m->nick);
    memcpy(m->room, cc->room, sizeof m->room);
    msg_send(cw, chat_home_of(room, cw->nworkers), m);
}

/* ---- commands ------------------------------------------------------- */

static void say(struct chat_conn *cc, const char *fmt, const char *text,
                size_t len)
{
    struct chat_worker *cw = cc->cw;
    if (!cc->in_room) {
        putf(cc, "ERR you are not in a room (/join ROOM)\n");
        return;
    }
    size_t nick = strlen(cc->nick), total = len + nick + 4;
    struct chat_msg *m = msg_new(cw, OP_SAY, NULL, total);
    if (!m)
        return;
    /* fmt is "%s: " or "* %s ": the nick, then the text, then '\n'. */
    int head = snprintf(m->text, total + 1, fmt, cc->nick);
    memcpy(m->text + head, text, len);
    m->text[head + len] = '\n';
    m->len = (uint32_t)(head + len + 1);
    memcpy(m->room, cc->room, sizeof m->room);
    msg_send(cw, chat_home_of(cc->room, cw->nworkers), m);
}

static void cmd_nick(struct chat_conn *cc, const char *name, size_t n)
{
    struct chat_worker *cw = cc->cw;
    if (!chat_nick_valid(name, n)) {
        putf(cc, "ERR invalid nick: 1-%d of A-Z a-z 0-9 _ - [ ] { } ^ | `, "
                 "not starting with a digit or -\n", CHAT_NICK_MAX);
        return;
    }
    if (chat_nick_reserved(name, n)) {
        putf(cc, "ERR nick %.*s is reserved for generated nicks\n", (int)n,
             name);
        return;
    }
    if (strlen(cc->nick) == n && memcmp(cc->nick, name, n) == 0) {
        putf(cc, "OK nick %s\n", cc->nick);
        return;
    }
    if (cc->claiming) {
        putf(cc, "ERR a nick change is already under way\n");
        return;
    }
    struct chat_msg *m = msg_new(cw, OP_CLAIM, NULL, 0);
    if (!m)
        return;
    cc->claiming = true;
    await_answer(cc);
    m->conn = cc->id;
    memcpy(m->nick, name, n);
    msg_send(cw, chat_home_of(m->nick, cw->nworkers), m);
}

static void cmd_join(struct chat_conn *cc, const char *room, size_t n)
{
    if (!chat_room_valid(room, n)) {
        putf(cc, "ERR invalid room: 1-%d of A-Z a-z 0-9 _ - . #\n",
             CHAT_ROOM_MAX);
        return;
    }
    if (cc->in_room && strlen(cc->room) == n &&
        memcmp(cc->room, room, n) == 0) {
        putf(cc, "ERR you are already in %s\n", cc->room);
        return;
    }
    char name[CHAT_ROOM_MAX + 1];
    memcpy(name, room, n);
    name[n] = '\0';
    await_answer(cc); /* until OK join: nothing said lands elsewhere */
    if (cc->in_room) { /* the join follows the old room's answer */
        memcpy(cc->next_room, name, sizeof name);
        leave_room(cc, "*** %s left %s\n", NULL, true);
    } else {
        join_room(cc, name, false);
    }
}

static void cmd_part(struct chat_conn *cc)
{
    if (!cc->in_room) {
        putf(cc, "ERR you are not in a room\n");
        return;
    }
    await_answer(cc);
    leave_room(cc, "*** %s left %s\n", NULL, true);
}

static void cmd_msg(struct chat_conn *cc, const char *arg, size_t n)
{
    struct chat_worker *cw = cc->cw;
    size_t nick = 0;
    while (nick < n && arg[nick] != ' ' && arg[nick] != '\t')
        nick++;
    const char *text = arg + nick;
    size_t len = n - nick;
    while (len && (*text == ' ' || *text == '\t'))
        text++, len--;
    if (!len) {
        putf(cc, "ERR usage: /msg NICK TEXT\n");
        return;
    }
    if (!chat_nick_valid(arg, nick)) {
        putf(cc, "ERR no such nick %.*s\n",
             (int)chat_utf8_cut(arg, nick, 64), arg);
        return;
    }
    char to[CHAT_NICK_MAX + 1];
    memcpy(to, arg, nick);
    to[nick] = '\0';
    size_t total = strlen(cc->nick) + nick + len + 7; /* "A -> B: " "\n" */
    struct chat_msg *m = msg_new(cw, OP_PRIVATE, NULL, total);
    if (!m)
        return;
    int head = snprintf(m->text, total + 1, "%s -> %s: ", cc->nick, to);
    memcpy(m->text + head, text, len);
    m->text[head + len] = '\n';
    m->len = (uint32_t)(head + len + 1);
    m->conn = cc->id;
    memcpy(m->other, to, sizeof m->other);
    await_answer(cc);
    msg_send(cw, chat_home_of(to, cw->nworkers), m);
}

static void rooms_finish(struct chat_conn *cc);

static void cmd_rooms(struct chat_conn *cc)
{
    struct chat_worker *cw = cc->cw;
    if (cc->rooms) {
        putf(cc, "ERR a /rooms is already under way\n");
        return;
    }
    cc->rooms = calloc(1, sizeof *cc->rooms);
    if (!cc->rooms) {
        putf(cc, "ERR out of memory\n");
        return;
    }
    cc->rooms->pending = cw->nworkers;
    await_answer(cc);
    struct chat_rooms_query *q = cc->rooms;
    unsigned lost = 0;
    for (unsigned i = 0; i < cw->nworkers; i++) {
        struct chat_msg *m = msg_new(cw, OP_ROOMS_ASK, NULL, 0);
        if (!m) {
            lost++;
            continue;
        }
        m->conn = cc->id;
        msg_send(cw, i, m); /* may answer at once, even finish the query */
    }
    if (lost && cc->rooms == q && (q->pending -= lost) == 0)
        rooms_finish(cc);
}

/* "name(count)" entries, by name: '(' would sort after '#' and '.'. */
static int cmp_room_entry(const void *a, const void *b)
{
    const char *x = *(char *const *)a, *y = *(char *const *)b;
    size_t nx = strcspn(x, "("), ny = strcspn(y, "(");
    int r = strncmp(x, y, nx < ny ? nx : ny);
    return r ? r : (nx > ny) - (nx < ny);
}

static void rooms_finish(struct chat_conn *cc)
{
    struct chat_rooms_query *q = cc->rooms;
    cc->rooms = NULL;
    size_t count = 0;
    for (size_t i = 0; i < q->len; i++)
        count += q->text[i] == ' ';
    char **names = malloc((count + 1) * sizeof *names);
    if (!names) {
        putf(cc, "ERR out of memory\n");
    } else {
        size_t k = 0;
        for (char *save = NULL, *t = q->text ? strtok_r(q->text, " ", &save)
                                             : NULL;
             t; t = strtok_r(NULL, " ", &save))
            names[k++] = t;
        qsort(names, k, sizeof *names, cmp_room_entry);
        putf(cc, "OK rooms %zu:", k);
        for (size_t i = 0; i < k; i++) {
            put(cc, " ", 1);
            put(cc, names[i], strlen(names[i]));
        }
        put(cc, "\n", 1);
        free(names);
    }
    free(q->text);
    free(q);
    answer_arrived(cc);
}

static void cmd_help(struct chat_conn *cc)
{
    for (const struct chat_command *c = chat_commands; c->name; c++)
        putf(cc, "*** %-16s %s\n", c->usage, c->help);
    putf(cc, "*** any other line is said to your room\n");
    putf(cc, "OK help\n");
}

static void cmd_quit(struct chat_conn *cc, const char *reason, size_t n)
{
    if (n) {
        free(cc->quit_reason);
        cc->quit_reason = strndup(reason, chat_utf8_cut(reason, n, 200));
    }
    putf(cc, "OK bye\n");
    cc->quitting = true;
    pc_conn_close(cc->c);
}

static void handle_line(struct chat_conn *cc, const char *s, size_t n)
{
    switch (chat_text_check(s, n)) {
    case CHAT_TEXT_BAD_UTF8:
        putf(cc, "ERR invalid UTF-8\n");
        return;
    case CHAT_TEXT_CONTROL:
        putf(cc, "ERR control characters are not allowed\n");
        return;
    case CHAT_TEXT_OK:
        break;
    }
    struct chat_line l;
    chat_line_parse(s, n, &l);
    if (l.bad_arg) {
        putf(cc, "ERR usage: %s\n", l.command->usage);
        return;
    }
    switch (l.cmd) {
    case CHAT_SAY:
        say(cc, "%s: ", l.arg, l.arg_len);
        break;
    case CHAT_ME:
        say(cc, "* %s ", l.arg, l.arg_len);
        break;
    case CHAT_NICK:
        cmd_nick(cc, l.arg, l.arg_len);
        break;
    case CHAT_JOIN:
        cmd_join(cc, l.arg, l.arg_len);
        break;
    case CHAT_PART:
        cmd_part(cc);
        break;
    case CHAT_ROOMS:
        cmd_rooms(cc);
        break;
    case CHAT_WHO:
        if (!cc->in_room) {
            putf(cc, "ERR you are not in a room\n");
            break;
        }
        struct chat_msg *m = msg_new(cc->cw, OP_WHO, NULL, 0);
        if (m) {
            m->conn = cc->id;
            memcpy(m->room, cc->room, sizeof m->room);
            await_answer(cc);
        }
        msg_send(cc->cw, chat_home_of(cc->room, cc->cw->nworkers), m);
        break;
    case CHAT_MSG:
        cmd_msg(cc, l.arg, l.arg_len);
        break;
    case CHAT_QUIT:
        cmd_quit(cc, l.arg, l.arg_len);
        break;
    case CHAT_HELP:
        cmd_help(cc);
        break;
    case CHAT_UNKNOWN:
        putf(cc, "ERR unknown command %.*s (/help lists them)\n",
             (int)chat_utf8_cut(l.word, l.word_len, 64), l.word);
        break;
    }
}

/* ---- messages ------------------------------------------------------- */

/* Writes text to a connection on any worker; `answer`: it answers a
 * command that holds the connection's input. */
static void reply(struct chat_worker *cw, unsigned worker, uint64_t conn,
                  const char *text, size_t len, bool answer)
{
    struct chat_msg *m = msg_new(cw, OP_REPLY, text, len);
    if (m) {
        m->conn = conn;
        m->flag = answer;
    }
    msg_send(cw, worker, m);
}

static void on_claim(struct chat_worker *cw, struct chat_msg *m)
{
    struct chat_nick *o =
        chat_map_get(&cw->nicks, chat_hash_str(m->nick), m->nick, nick_eq);
    bool granted = !o || o->conn == m->conn;
    if (!o) {
        o = calloc(1, sizeof *o);
        if (!o || chat_map_put(&cw->nicks, chat_hash_str(m->nick), o) < 0) {
            free(o);
            granted = false;
        } else {
            memcpy(o->nick, m->nick, sizeof o->nick);
            o->conn = m->conn;
            o->worker = m->worker;
        }
    }
    if (m->flag) /* a generated nick: its owner does not wait for an answer */
        return;
    struct chat_msg *r = msg_new(cw, OP_CLAIM_RESULT, NULL, 0);
    if (r) {
        r->conn = m->conn;
        r->flag = granted;
        memcpy(r->nick, m->nick, sizeof r->nick);
    }
    msg_send(cw, m->worker, r);
}

static void release_nick(struct chat_worker *cw, const char *nick,
                         uint64_t conn)
{
    struct chat_msg *m = msg_new(cw, OP_RELEASE, NULL, 0);
    if (!m)
        return;
    m->conn = conn;
    snprintf(m->nick, sizeof m->nick, "%s", nick);
    msg_send(cw, chat_home_of(nick, cw->nworkers), m);
}

static void on_claim_result(struct chat_worker *cw, struct chat_msg *m)
{
    struct chat_conn *cc = conn_find(cw, m->conn);
    if (!cc) { /* gone meanwhile: give back what it won */
        if (m->flag)
            release_nick(cw, m->nick, m->conn);
        return;
    }
    cc->claiming = false;
    answer_arrived(cc);
    if (!m->flag) {
        putf(cc, "ERR nick %s is taken\n", m->nick);
        return;
    }
    char old[CHAT_NICK_MAX + 1];
    memcpy(old, cc->nick, sizeof old);
    memcpy(cc->nick, m->nick, sizeof cc->nick);
    putf(cc, "OK nick %s\n", cc->nick);
    release_nick(cw, old, cc->id);
    if (cc->in_room) {
        struct chat_msg *r = msg_new(cw, OP_RENAME, NULL, 0);
        if (!r)
            return;
        r->conn = cc->id;
        memcpy(r->nick, cc->nick, sizeof r->nick);
        memcpy(r->other, old, sizeof r->other);
        memcpy(r->room, cc->room, sizeof r->room);
        msg_send(cw, chat_home_of(cc->room, cw->nworkers), r);
    }
}

static void on_release(struct chat_worker *cw, struct chat_msg *m)
{
    uint64_t h = chat_hash_str(m->nick);
    struct chat_nick *o = chat_map_get(&cw->nicks, h, m->nick, nick_eq);
    if (o && o->conn == m->conn)
        free(chat_map_del(&cw->nicks, h, m->nick, nick_eq));
}

static void on_join(struct chat_worker *cw, struct chat_msg *m)
{
    struct chat_home_room *r =
        chat_home_join(&cw->home, m->room, m->conn, m->worker, m->nick);
    if (!r) {
        pc_log(PC_LOG_ERR, "chat: out of memory joining %s", m->room);
        reply(cw, m->worker, m->conn, "ERR out of memory\n", 18, false);
        return;
    }
    /* The acknowledgement goes before the notice on the same FIFO link,
     * so the joiner's worker lists it before the room's next line. */
    struct chat_msg *a = msg_new(cw, OP_JOIN_ACK, NULL, 0);
    if (a) {
        a->conn = m->conn;
        a->gen = m->gen;
        a->flag = m->flag;
        memcpy(a->room, m->room, sizeof a->room);
    }
    msg_send(cw, m->worker, a);
    char notice[CHAT_NICK_MAX + CHAT_ROOM_MAX + 32];
    int n = snprintf(notice, sizeof notice, "*** %s joined %s\n", m->nick,
                     m->room);
    fanout(cw, r, notice, (size_t)n);
}

static void on_join_ack(struct chat_worker *cw, struct chat_msg *m)
{
    struct chat_conn *cc = conn_find(cw, m->conn);
    if (!cc || !cc->in_room || cc->local || cc->join_gen != m->gen)
        return; /* closing: its leave is on the way */
    cc->local = chat_local_add(&cw->local, m->room, &cc->link);
    if (!cc->local)
        putf(cc, "ERR out of memory\n");
    else if (!m->flag)
        putf(cc, "OK join %s\n", m->room);
    if (!m->flag) /* the greeting's join held nothing */
        answer_arrived(cc);
}

static void on_leave(struct chat_worker *cw, struct chat_msg *m)
{
    struct chat_home_room *r = chat_home_find(&cw->home, m->room);
    bool was = r && chat_home_leave(&cw->home, &r, m->conn);
    /* The answer goes before the notice, on the same link: the leaver's
     * worker unlists it before any line numbered after its leave. */
    if (m->flag) {
        struct chat_msg *a = msg_new(cw, OP_LEAVE_ACK, NULL, 0);
        if (a) {
            a->conn = m->conn;
            memcpy(a->room, m->room, sizeof a->room);
        }
        msg_send(cw, m->worker, a);
    }
    if (was && r)
        fanout(cw, r, m->text, m->len);
}

static void on_leave_ack(struct chat_worker *cw, struct chat_msg *m)
{
    struct chat_conn *cc = conn_find(cw, m->conn);
    if (!cc || !cc->in_room || strcmp(cc->room, m->room) != 0)
        return;
    unlist(cc);
    if (cc->next_room[0]) { /* a /join: the answer is its OK join */
        join_room(cc, cc->next_room, false);
        cc->next_room[0] = '\0';
        return;
    }
    putf(cc, "OK part %s\n", cc->room);
    answer_arrived(cc);
}

static void on_say(struct chat_worker *cw, struct chat_msg *m)
{
    struct chat_home_room *r = chat_home_find(&cw->home, m->room);
    if (r) /* always: the sender's join came first on the same link */
        fanout(cw, r, m->text, m->len);
}

static void on_rename(struct chat_worker *cw, struct chat_msg *m)
{
    struct chat_home_room *r = chat_home_find(&cw->home, m->room);
    struct chat_member *mb = r ? chat_home_member(r, m->conn) : NULL;
    if (!mb)
        return;
    memcpy(mb->nick, m->nick, sizeof mb->nick);
    char notice[2 * CHAT_NICK_MAX + 40];
    int n = snprintf(notice, sizeof notice, "*** %s is now known as %s\n",
                     m->other, m->nick);
    fanout(cw, r, notice, (size_t)n);
}

static void on_private(struct chat_worker *cw, struct chat_msg *m)
{
    struct chat_nick *o =
        chat_map_get(&cw->nicks, chat_hash_str(m->other), m->other, nick_eq);
    char answer[CHAT_NICK_MAX + 32];
    int n;
    if (!o) {
        n = snprintf(answer, sizeof answer, "ERR no such nick %s\n", m->other);
    } else {
        reply(cw, o->worker, o->conn, m->text, m->len, false);
        n = snprintf(answer, sizeof answer, "OK msg %s\n", m->other);
    }
    reply(cw, m->worker, m->conn, answer, (size_t)n, true);
}

static void on_reply(struct chat_worker *cw, struct chat_msg *m)
{
    struct chat_conn *cc = conn_find(cw, m->conn);
    if (!cc)
        return;
    put(cc, m->text, m->len);
    if (m->flag)
        answer_arrived(cc);
}

static void on_who(struct chat_worker *cw, struct chat_msg *m)
{
    struct chat_home_room *r = chat_home_find(&cw->home, m->room);
    char *text = r ? chat_home_who(r) : NULL;
    if (text)
        reply(cw, m->worker, m->conn, text, strlen(text), true);
    else
        reply(cw, m->worker, m->conn, "ERR out of memory\n", 18, true);
    free(text);
}

static void on_rooms_ask(struct chat_worker *cw, struct chat_msg *m)
{
    char *list = chat_home_list(&cw->home);
    struct chat_msg *a =
        msg_new(cw, OP_ROOMS_ANSWER, list ? list : "", list ? strlen(list) : 0);
    free(list);
    if (a)
        a->conn = m->conn;
    msg_send(cw, m->worker, a);
}

static void on_rooms_answer(struct chat_worker *cw, struct chat_msg *m)
{
    struct chat_conn *cc = conn_find(cw, m->conn);
    if (!cc || !cc->rooms)
        return;
    struct chat_rooms_query *q = cc->rooms;
    char *grown = realloc(q->text, q->len + m->len + 1);
    if (grown) {
        memcpy(grown + q->len, m->text, m->len + 1);
        q->text = grown;
        q->len += m->len;
    }
    if (--q->pending == 0)
        rooms_finish(cc);
}

static void handle(struct chat_worker *cw, struct chat_msg *m)
{
    switch ((enum chat_op)m->op) {
    case OP_CLAIM: on_claim(cw, m); break;
    case OP_CLAIM_RESULT: on_claim_result(cw, m); break;
    case OP_RELEASE: on_release(cw, m); break;
    case OP_JOIN: on_join(cw, m); break;
    case OP_JOIN_ACK: on_join_ack(cw, m); break;
    case OP_LEAVE: on_leave(cw, m); break;
    case OP_LEAVE_ACK: on_leave_ack(cw, m); break;
    case OP_SAY: on_say(cw, m); break;
    case OP_RENAME: on_rename(cw, m); break;
    case OP_FANOUT: deliver_local(cw, m->room, m->text, m->len); break;
    case OP_PRIVATE: on_private(cw, m); break;
    case OP_REPLY: on_reply(cw, m); break;
    case OP_WHO: on_who(cw, m); break;
    case OP_ROOMS_ASK: on_rooms_ask(cw, m); break;
    case OP_ROOMS_ANSWER: on_rooms_answer(cw, m); break;
    }
}

static void chat_on_message(struct pc_worker *w, void *wstate,
                            struct pc_msg *m)
{
    (void)w;
    handle(wstate, (struct chat_msg *)m);
}

/* ---- connection callbacks ------------------------------------------- */

static void flood_resume(struct pc_timer *t)
{
    struct chat_conn *cc = t->data;
    cc->flood_wait = false;
    if (!cc->answer_due)
        pc_conn_resume_input(cc->c);
}

static void chat_on_open(struct pc_conn *c)
{
    struct chat_conn *cc = pc_conn_state(c);
    struct chat_worker *cw = pc_conn_wstate(c);
    cc->c = c;
    cc->cw = cw;
    cc->id = pc_conn_id(c);
    if (chat_map_put(&cw->conns, chat_hash_u64(cc->id), cc) < 0) {
        cc->id = 0; /* not registered: on_close must not look it up */
        pc_conn_abort(c, PC_CLOSE_ERROR);
        return;
    }
    pc_timer_init(&cc->flood_timer, flood_resume, cc);
    chat_bucket_init(&cc->bucket, pc_worker_now(cw->w), cw->opt.flood_burst);
    /* Unique without asking anyone: the number encodes the worker. */
    snprintf(cc->nick, sizeof cc->nick, "guest%llu",
             (unsigned long long)(++cw->guests * cw->nworkers + cw->id));
    struct chat_msg *m = msg_new(cw, OP_CLAIM, NULL, 0);
    if (m) {
        m->conn = cc->id;
        m->flag = 1;
        memcpy(m->nick, cc->nick, sizeof m->nick);
    }
    msg_send(cw, chat_home_of(cc->nick, cw->nworkers), m);
    putf(cc, "*** welcome to percore chat, %s; /help lists the commands\n",
         cc->nick);
    if (cw->opt.default_room[0])
        join_room(cc, cw->opt.default_room, true);
}

static size_t chat_on_data(struct pc_conn *c, const char *data, size_t len)
{
    struct chat_conn *cc = pc_conn_state(c);
    struct chat_worker *cw = cc->cw;
    size_t used = 0;
    while (used < len) {
        const char *line = data + used;
        const char *nl = memchr(line, '\n', len - used);
        if (!nl) {
            /* +1: a line of exactly max_line may still get its "\r". */
            if (!cc->discarding && len - used > cw->opt.max_line + 1) {
                putf(cc, "ERR line too long (max %zu bytes)\n",
                     cw->opt.max_line);
                cc->discarding = true;
            }
            return cc->discarding ? len : used;
        }
        size_t n = (size_t)(nl - line), next = used + n + 1;
        if (cc->discarding) { /* the end of a line already refused */
            cc->discarding = false;
            used = next;
            continue;
        }
        if (n && line[n - 1] == '\r')
            n--;
        if (n > cw->opt.max_line) {
            putf(cc, "ERR line too long (max %zu bytes)\n", cw->opt.max_line);
            used = next;
            continue;
        }
        if (n) {
            double wait = chat_bucket_take(&cc->bucket, pc_worker_now(cw->w),
                                           cw->opt.flood_rate,
                                           cw->opt.flood_burst);
            if (wait > 0) { /* this line waits, with all that follows */
                cc->flood_wait = true;
                pc_conn_hold_input(c);
                pc_timer_start(cw->w, &cc->flood_timer, wait);
                return used;
            }
            handle_line(cc, line, n);
            if (cc->quitting)
                return len;
            if (cc->answer_due)
                return next;
        }
        used = next;
    }
    return used;
}

static const char *close_text(struct chat_conn *cc, enum pc_close_reason why)
{
    switch (why) {
    case PC_CLOSE_PEER: return "connection closed";
    case PC_CLOSE_ERROR: return "connection error";
    case PC_CLOSE_MODULE: return cc->quit_reason ? cc->quit_reason : "quit";
    case PC_CLOSE_IDLE: return "idle timeout";
    case PC_CLOSE_INPUT_LIMIT: return "input limit exceeded";
    case PC_CLOSE_OUTPUT_LIMIT: return "sendq exceeded";
    case PC_CLOSE_SHUTDOWN: return "server shutting down";
    case PC_CLOSE_REASONS: break;
    }
    return "closed";
}

static void chat_on_close(struct pc_conn *c, enum pc_close_reason why)
{
    struct chat_conn *cc = pc_conn_state(c);
    struct chat_worker *cw = cc->cw;
    if (!cc->id)
        return;
    pc_timer_stop(cw->w, &cc->flood_timer);
    leave_room(cc, "*** %s quit (%s)\n", close_text(cc, why), false);
    release_nick(cw, cc->nick, cc->id);
    chat_map_del(&cw->conns, chat_hash_u64(cc->id), &cc->id, conn_eq);
    free(cc->quit_reason);
    if (cc->rooms) {
        free(cc->rooms->text);
        free(cc->rooms);
    }
}

/* ---- the module ----------------------------------------------------- */

static void read_options(struct chat_options *o, const struct pc_section *s)
{
    o->max_line = (size_t)pc_section_int(s, "max_line");
    o->sendq = (size_t)pc_section_int(s, "sendq");
    o->flood_rate = (double)pc_section_int(s, "flood_rate");
    o->flood_burst = (double)pc_section_int(s, "flood_burst");
    const char *room = pc_section_string(s, "default_room");
    snprintf(o->default_room, sizeof o->default_room, "%s", room ? room : "");
}

/* Values that each parse but do not fit together, refused with the config
 * (at start, by -t, and before a reload is accepted). */
static int chat_check(const struct pc_section *cfg, char *err, size_t errlen)
{
    const char *room = pc_section_string(cfg, "default_room");
    if (room && *room && !chat_room_valid(room, strlen(room))) {
        snprintf(err, errlen, "default_room '%s' is not a room name (1-%d "
                 "of A-Z a-z 0-9 _ - . #)", room, CHAT_ROOM_MAX);
        return -1;
    }
    /* A line up to max_line, with its "\r\n", must fit in what the
     * framework holds unconsumed, or it would close the connection. */
    int64_t line = pc_section_int(cfg, "max_line");
    int64_t input = pc_section_int(cfg, "max_input");
    if (line + 2 > input) {
        snprintf(err, errlen, "max_line (%lld) must be at least 2 bytes "
                 "below max_input (%lld)", (long long)line, (long long)input);
        return -1;
    }
    return 0;
}

static int chat_worker_init(struct pc_worker *w, const struct pc_section *cfg,
                            void **wstate)
{
    struct chat_worker *cw = calloc(1, sizeof *cw);
    if (!cw)
        return -1;
    cw->w = w;
    cw->id = pc_worker_id(w);
    cw->nworkers = pc_worker_count(w);
    cw->service = pc_section_service(cfg);
    read_options(&cw->opt, cfg);
    chat_home_init(&cw->home, cw->nworkers);
    *wstate = cw;
    return 0;
}

static void chat_worker_fini(struct pc_worker *w, void *wstate)
{
    (void)w;
    struct chat_worker *cw = wstate;
    for (size_t i = 0; i < cw->nicks.cap; i++)
        free(cw->nicks.slots[i].value);
    chat_map_free(&cw->nicks);
    chat_map_free(&cw->conns);
    chat_home_fini(&cw->home);
    chat_local_fini(&cw->local);
    free(cw);
}

/* chat_check has passed on the new values before the reload reached us. */
static void chat_reload(struct pc_worker *w, void *wstate,
                        const struct pc_section *cfg)
{
    (void)w;
    read_options(&((struct chat_worker *)wstate)->opt, cfg);
}

static const struct pc_option chat_options[] = {
    {"max_line", PC_OPT_SIZE, "4K", 16, 1 << 20,
     "longest accepted line in bytes; longer ones are refused"},
    {"sendq", PC_OPT_SIZE, "1M", 4096, 1ll << 32,
     "unsent output after which a member is disconnected"},
    {"flood_rate", PC_OPT_INT, "20", 0, 1e9,
     "lines per second a connection may send on average; 0 = unlimited"},
    {"flood_burst", PC_OPT_INT, "40", 1, 1e9,
     "lines a connection may send at once"},
    {"default_room", PC_OPT_STRING, "lobby", 0, 0,
     "room new connections join; empty = none"},
    {NULL, 0, NULL, 0, 0, NULL},
};

const struct pc_proto pc_chat_proto = {
    .abi = PC_PROTO_ABI,
    .name = "chat",
    .conn_size = sizeof(struct chat_conn),
    .options = chat_options,
    .worker_init = chat_worker_init,
    .worker_fini = chat_worker_fini,
    .on_open = chat_on_open,
    .on_data = chat_on_data,
    .on_close = chat_on_close,
    .on_message = chat_on_message,
    .reload = chat_reload,
    .check = chat_check,
    .refuse_text = "ERR server full, try again later\n",
};
