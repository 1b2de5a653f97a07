/* The irc face's insides, shared by its files: irc.c (the module, lines,
 * the command table, timers), login.c (registration, CAP, PING),
 * channel.c (JOIN, PART, TOPIC, MODE, KICK, INVITE, NAMES, LIST),
 * info.c (PRIVMSG, WHO, WHOIS, AWAY, ISON, USERHOST, LUSERS, MOTD),
 * render.c (the core's events and answers as IRC lines). The rooms and
 * nicks are the room core's (protocols/room/room.h); a channel "#x" is
 * the core's room "x", the chat face's room "x". Worker thread only. */
#ifndef PC_IRC_IRC_H
#define PC_IRC_IRC_H

#include "protocols/irc/text.h"
#include "protocols/room/room.h"

#define IRC_LINE_MAX 512 /* bytes of a line with its CR LF (RFC 1459) */
#define IRC_CHANNEL_MAX (ROOM_NAME_MAX + 1)
#define IRC_CHANNELS_MAX 64 /* channels one user may be in (CHANLIMIT) */

struct irc_options {
    struct room_limits limits;
    char server_name[64];
    char network[32];
    char password[64];
    char motd[256];              /* a file's path, "" = none */
    double registration_timeout, ping_interval, ping_timeout;
};

struct irc_worker {
    struct room_face_worker face; /* first: room_face_worker_new */
    struct irc_options opt;
    char created[64];            /* for 003 */
};

/* What a held request's answer is for, when the core's answer kind does
 * not tell (WHO and NAMES both ask for members). */
enum irc_asked { ASKED_NONE, ASKED_NAMES, ASKED_WHO, ASKED_WHOIS,
                 ASKED_ISON, ASKED_USERHOST, ASKED_LUSERS, ASKED_TOPIC };

struct irc_conn {
    struct room_user u;          /* first: the core's part */
    struct pc_timer timer;       /* registration, then ping */
    double last_input;
    bool registered, got_user, cap_open, pass_ok, ping_sent;
    bool cap_multi_prefix, cap_server_time, cap_echo;
    bool discarding, quitting, welcomed_nick;
    uint8_t asked;
    char asked_arg[IRC_LINE_MAX];
    char *quit_reason;
};

static inline struct irc_worker *irc_worker_of(struct irc_conn *ic)
{
    return pc_conn_wstate(ic->u.c);
}

static inline const char *irc_server(struct irc_conn *ic)
{
    return irc_worker_of(ic)->opt.server_name;
}

/* The nick for numerics: "*" before one is granted. */
static inline const char *irc_me(struct irc_conn *ic)
{
    return ic->u.nick[0] ? ic->u.nick : "*";
}

/* Ends the line text in buf[0..n): cut to 510 bytes at a character,
 * then CR LF. buf holds at least IRC_LINE_MAX bytes. Returns the line's
 * length. */
size_t irc_line_end(char *buf, size_t n);
/* One line to ic, CR LF added, cut to 512 bytes at a character. */
void irc_send(struct irc_conn *ic, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* ":server NNN nick " then the rest. */
void irc_numeric(struct irc_conn *ic, const char *num, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* ERROR :Closing Link: ... then close. */
void irc_close_link(struct irc_conn *ic, const char *why);

/* Command handlers: params as parsed (n of them). */
typedef void irc_handler(struct irc_conn *ic, char **params, unsigned n);
irc_handler irc_cmd_cap, irc_cmd_pass, irc_cmd_nick, irc_cmd_user,
    irc_cmd_ping, irc_cmd_pong, irc_cmd_quit, irc_cmd_join, irc_cmd_part,
    irc_cmd_topic, irc_cmd_names, irc_cmd_list, irc_cmd_mode, irc_cmd_kick,
    irc_cmd_invite, irc_cmd_privmsg, irc_cmd_notice, irc_cmd_who,
    irc_cmd_whois, irc_cmd_away, irc_cmd_ison, irc_cmd_userhost,
    irc_cmd_lusers, irc_cmd_motd;

/* Registration completes once NICK is granted, USER given and CAP ended. */
void irc_try_register(struct irc_conn *ic);
/* The reply to a request or a refusal, by the core. */
void irc_answer(struct room_user *u, const struct room_answer *a);
void irc_answer_channel(struct irc_conn *ic, const struct room_answer *a);
void irc_answer_info(struct irc_conn *ic, const struct room_answer *a);
void irc_deliver(struct room_user *u, const struct room_event *ev,
                 struct pc_sbuf **cache);
/* 353/366 for a channel's members. */
void irc_answer_lusers(struct irc_conn *ic, const struct room_answer *a);
void irc_send_names(struct irc_conn *ic, const char *room,
                    const struct room_answer *a);
/* A channel name ("#x") to the core's room ("x"), or NULL with 403 sent. */
const char *irc_room_of(struct irc_conn *ic, const char *channel);

extern const struct room_face irc_face;

#endif
