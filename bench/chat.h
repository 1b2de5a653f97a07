/* chat mode's pieces: members, their connections, and the dialects that
 * turn "join ROOM" and "say TEXT" into each server's protocol. */
#ifndef PCB_CHAT_H
#define PCB_CHAT_H

#include "bench.h"

enum chat_conn_state {
    CHAT_NEW,
    CHAT_CONNECTING,
    CHAT_HANDSHAKE,
    CHAT_JOINED,
    CHAT_DEAD
};

struct chat_member;

struct chat_conn {
    ev_io io;
    int events;
    enum chat_conn_state state;
    bool publisher;     /* redis: the sender's second connection */
    unsigned char step; /* irc: how far registration has come; ws: 0
                           until the server's 101 */
    char ws_accept[32]; /* ws: the Sec-WebSocket-Accept the server owes */
    struct chat_member *m;
    char *in; /* a frame cut in two by a read, until the rest comes */
    size_t in_len, in_cap;
    char *out; /* bytes not yet accepted by the kernel */
    size_t out_len, out_off, out_cap;
};

struct chat_member {
    struct chat_state *st;
    unsigned room;
    int64_t sender;        /* global sender number, or -1 */
    struct chat_conn sub;  /* receives; percore and nats also send on it */
    struct chat_conn *pub; /* redis senders: publishes */
    uint64_t *last_seq;    /* last line seen from each sender of the room */
    uint64_t seq;          /* lines sent */
    uint64_t t0;           /* open loop: when line 1 was due */
    ev_timer pace;
    /* Closed loop, where the server does not echo: the member of the room
     * on this thread whose receipt of a line lets the next go. */
    struct chat_member *witness;
    bool witnessing; /* some sender's witness */
    bool set_up;
    bool stalled; /* stops reading once measuring starts */
};

struct chat_dialect {
    const char *name;
    /* Queue what joins c's member to `room` (or readies a publisher). */
    void (*handshake)(struct chat_conn *c, const char *room);
    /* Handle every complete frame in buf; return the bytes used. Calls
     * pcb_chat_joined, pcb_chat_deliver, pcb_chat_fail or counts errors. */
    size_t (*parse)(struct chat_conn *c, const char *buf, size_t len);
    /* Queue one line of text for the room. */
    void (*publish)(struct chat_conn *c, const char *room, const char *text,
                    size_t len);
};

struct chat_state {
    struct pcb_thread *t;
    const struct chat_dialect *dialect;
    struct chat_member *members; /* t->count of them */
    struct chat_conn **conns;    /* every connection, in connect order */
    unsigned nconns, next;       /* next to connect */
    unsigned set_up;             /* members joined or failed */
    char **room_names;
    double interval; /* open loop: ns between a sender's lines */
    bool self_echo;  /* a sender receives its own lines */
};

const struct chat_dialect *pcb_chat_dialect(enum pcb_target target);
/* ws.c: the WebSocket dialects (web, broadcast). */
const struct chat_dialect *pcb_ws_dialect(enum pcb_target target);
/* A member's nick, unique on the server across runs that follow one
 * another (dialect.c). */
void pcb_chat_nick(const struct chat_conn *c, char *buf, size_t size);

/* For the dialects. */
void pcb_chat_send(struct chat_conn *c, const char *data, size_t len);
void pcb_chat_joined(struct chat_conn *c);
void pcb_chat_deliver(struct chat_conn *c, const char *text, size_t len);
void pcb_chat_fail(struct chat_conn *c, enum pcb_error e);

#endif
