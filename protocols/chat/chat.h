/* The chat face's insides, shared by chat.c (lines, commands, the
 * module) and render.c (the room core's events and answers as chat
 * lines). Worker thread only. */
#ifndef PC_CHAT_CHAT_H
#define PC_CHAT_CHAT_H

#include "protocols/room/room.h"

struct chat_options {
    struct room_limits limits;
    size_t max_line;
    char default_room[ROOM_NAME_MAX + 1];
};

struct chat_worker {
    struct room_face_worker face; /* first: room_face_worker_new */
    struct chat_options opt;
};

struct chat_conn {
    struct room_user u; /* first: the core's part */
    char room[ROOM_NAME_MAX + 1];      /* "" when in no room */
    char next_room[ROOM_NAME_MAX + 1]; /* /join waiting for its part */
    char next_key[ROOM_KEY_MAX + 1];
    bool greeting;   /* the default room's join: no "OK join" */
    bool discarding; /* inside an over-long line */
    bool quitting;   /* /quit: ignore what follows */
    char *quit_reason;
};

/* One line (a unit) to cc, counted against its sendq. */
void chat_put(struct chat_conn *cc, const char *text, size_t len);
void chat_putf(struct chat_conn *cc, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

extern const struct room_face chat_face;

#endif
