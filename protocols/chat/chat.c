/* The chat face: percore's line protocol (docs/protocols/chat.md) over
 * the room core. It parses lines into requests and renders the core's
 * events and answers as lines; rooms, nicks, order, sendq and flood rules
 * are the core's (protocols/room/room.h), shared with the irc face. A
 * chat member is in one room at a time. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "percore/percore.h"
#include "protocols/chat/chat.h"
#include "protocols/chat/line.h"

/* ---- commands ------------------------------------------------------------- */

static void say(struct chat_conn *cc, enum room_event_kind kind,
                const char *text, size_t len)
{
    if (!cc->room[0]) {
        chat_putf(cc, "ERR you are not in a room (/join ROOM)\n");
        return;
    }
    room_say(&cc->u, cc->room, kind, text, len);
}

static void cmd_nick(struct chat_conn *cc, const char *name, size_t n)
{
    if (!chat_nick_valid(name, n)) {
        chat_putf(cc, "ERR invalid nick: 1-%d of A-Z a-z 0-9 _ - [ ] { } ^ | `, "
                 "not starting with a digit or -\n", ROOM_NICK_MAX);
        return;
    }
    char nick[ROOM_NICK_MAX + 1];
    snprintf(nick, sizeof nick, "%.*s", (int)n, name);
    if (room_nick_reserved(name, n)) {
        chat_putf(cc, "ERR nick %.*s is reserved for generated nicks\n", (int)n,
             name);
        return;
    }
    if (strcmp(nick, cc->u.nick) == 0) {
        chat_putf(cc, "OK nick %s\n", nick);
        return;
    }
    room_nick(&cc->u, nick);
}

/* "/join ROOM [KEY]" */
static void cmd_join(struct chat_conn *cc, const char *arg, size_t n)
{
    size_t w = 0; /* arg is not NUL-terminated */
    while (w < n && arg[w] != ' ' && arg[w] != '\t')
        w++;
    const char *key = arg + w;
    size_t klen = n - w;
    while (klen && (*key == ' ' || *key == '\t'))
        key++, klen--;
    if (!room_name_valid(arg, w) || klen > ROOM_KEY_MAX ||
        memchr(key, ' ', klen)) {
        chat_putf(cc, "ERR invalid room: 1-%d of A-Z a-z 0-9 _ - . #\n",
             ROOM_NAME_MAX);
        return;
    }
    char name[ROOM_NAME_MAX + 1], pass[ROOM_KEY_MAX + 1];
    snprintf(name, sizeof name, "%.*s", (int)w, arg);
    snprintf(pass, sizeof pass, "%.*s", (int)klen, key);
    if (cc->room[0] && room_casecmp(cc->room, name) == 0) {
        chat_putf(cc, "ERR you are already in %s\n", cc->room);
        return;
    }
    if (cc->room[0]) { /* the join follows the old room's answer */
        memcpy(cc->next_room, name, sizeof name);
        memcpy(cc->next_key, pass, sizeof pass);
        room_part(&cc->u, cc->room, NULL);
    } else {
        room_join(&cc->u, name, pass, false);
    }
}

static void cmd_msg(struct chat_conn *cc, const char *arg, size_t n)
{
    size_t nick = 0;
    while (nick < n && arg[nick] != ' ' && arg[nick] != '\t')
        nick++;
    const char *text = arg + nick;
    size_t len = n - nick;
    while (len && (*text == ' ' || *text == '\t'))
        text++, len--;
    if (!len) {
        chat_putf(cc, "ERR usage: /msg NICK TEXT\n");
        return;
    }
    if (nick > ROOM_NICK_MAX) {
        chat_putf(cc, "ERR no such nick %.*s\n",
             (int)chat_utf8_cut(arg, nick, 64), arg);
        return;
    }
    char to[ROOM_NICK_MAX + 1];
    snprintf(to, sizeof to, "%.*s", (int)nick, arg);
    room_tell(&cc->u, to, ROOM_EV_SAY, text, len);
}

static void cmd_help(struct chat_conn *cc)
{
    for (const struct chat_command *c = chat_commands; c->name; c++)
        chat_putf(cc, "*** %-16s %s\n", c->usage, c->help);
    chat_putf(cc, "*** any other line is said to your room\n");
    chat_putf(cc, "OK help\n");
}

static void cmd_quit(struct chat_conn *cc, const char *reason, size_t n)
{
    if (n) {
        free(cc->quit_reason);
        cc->quit_reason = strndup(reason, chat_utf8_cut(reason, n, 200));
    }
    chat_putf(cc, "OK bye\n");
    cc->quitting = true;
    pc_conn_close(cc->u.c);
}

static void handle_line(struct chat_conn *cc, const char *s, size_t n)
{
    switch (chat_text_check(s, n)) {
    case CHAT_TEXT_BAD_UTF8:
        chat_putf(cc, "ERR invalid UTF-8\n");
        return;
    case CHAT_TEXT_CONTROL:
        chat_putf(cc, "ERR control characters are not allowed\n");
        return;
    case CHAT_TEXT_OK:
        break;
    }
    struct chat_line l;
    chat_line_parse(s, n, &l);
    if (l.bad_arg) {
        chat_putf(cc, "ERR usage: %s\n", l.command->usage);
        return;
    }
    switch (l.cmd) {
    case CHAT_SAY: say(cc, ROOM_EV_SAY, l.arg, l.arg_len); break;
    case CHAT_ME: say(cc, ROOM_EV_ACTION, l.arg, l.arg_len); break;
    case CHAT_NICK: cmd_nick(cc, l.arg, l.arg_len); break;
    case CHAT_JOIN: cmd_join(cc, l.arg, l.arg_len); break;
    case CHAT_PART:
        if (!cc->room[0])
            chat_putf(cc, "ERR you are not in a room\n");
        else
            room_part(&cc->u, cc->room, NULL);
        break;
    case CHAT_ROOMS: room_list(&cc->u); break;
    case CHAT_WHO:
        if (!cc->room[0])
            chat_putf(cc, "ERR you are not in a room\n");
        else
            room_names(&cc->u, cc->room);
        break;
    case CHAT_MSG: cmd_msg(cc, l.arg, l.arg_len); break;
    case CHAT_QUIT: cmd_quit(cc, l.arg, l.arg_len); break;
    case CHAT_HELP: cmd_help(cc); break;
    case CHAT_UNKNOWN:
        chat_putf(cc, "ERR unknown command %.*s (/help lists them)\n",
             (int)chat_utf8_cut(l.word, l.word_len, 64), l.word);
        break;
    }
}

/* ---- connection callbacks -------------------------------------------------- */

static void chat_on_open(struct pc_conn *c)
{
    struct chat_conn *cc = pc_conn_state(c);
    struct chat_worker *cw = pc_conn_wstate(c);
    if (room_user_open(&cc->u, cw->face.core, c, &chat_face, &cw->opt.limits,
                       &cw->face.counters) < 0) {
        pc_conn_abort(c, PC_CLOSE_ERROR);
        return;
    }
    snprintf(cc->u.user, sizeof cc->u.user, "chat");
    room_user_guest(&cc->u);
    chat_putf(cc, "*** welcome to percore chat, %s; /help lists the commands\n",
         cc->u.nick);
    if (cw->opt.default_room[0]) {
        cc->greeting = true;
        room_join(&cc->u, cw->opt.default_room, "", false);
    }
}

static size_t chat_on_data(struct pc_conn *c, const char *data, size_t len)
{
    struct chat_conn *cc = pc_conn_state(c);
    struct chat_worker *cw = pc_conn_wstate(c);
    size_t used = 0;
    while (used < len) {
        const char *line = data + used;
        const char *nl = memchr(line, '\n', len - used);
        if (!nl) {
            /* +1: a line of exactly max_line may still get its "\r". */
            if (!cc->discarding && len - used > cw->opt.max_line + 1) {
                chat_putf(cc, "ERR line too long (max %zu bytes)\n",
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
            chat_putf(cc, "ERR line too long (max %zu bytes)\n", cw->opt.max_line);
            used = next;
            continue;
        }
        if (n) {
            if (!room_user_admit(&cc->u)) /* this line waits */
                return used;
            handle_line(cc, line, n);
            if (cc->quitting)
                return len;
            if (room_user_waiting(&cc->u))
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
    room_user_close(&cc->u, close_text(cc, why));
    free(cc->quit_reason);
    cc->quit_reason = NULL;
}

static size_t chat_goodbye(struct pc_conn *c, enum pc_close_reason why,
                           char *buf, size_t size)
{
    int n = why == PC_CLOSE_SHUTDOWN
                ? snprintf(buf, size, "*** server shutting down\n")
                : snprintf(buf, size, "*** disconnected: %s\n",
                           close_text(pc_conn_state(c), why));
    return n > 0 ? (size_t)n : 0;
}

/* ---- the module ------------------------------------------------------------ */

static void read_options(struct chat_options *o, const struct pc_section *s)
{
    o->max_line = (size_t)pc_section_int(s, "max_line");
    o->limits.sendq = (size_t)pc_section_int(s, "sendq");
    o->limits.flood_rate = (double)pc_section_int(s, "flood_rate");
    o->limits.flood_burst = (double)pc_section_int(s, "flood_burst");
    const char *room = pc_section_string(s, "default_room");
    snprintf(o->default_room, sizeof o->default_room, "%s", room ? room : "");
}

/* Values that each parse but do not fit together, refused with the config
 * (at start, by -t, and before a reload is accepted). */
static int chat_check(const struct pc_section *cfg, char *err, size_t errlen)
{
    const char *room = pc_section_string(cfg, "default_room");
    if (room && *room && !room_name_valid(room, strlen(room))) {
        snprintf(err, errlen, "default_room: '%s' is not a room name (1-%d "
                 "of A-Z a-z 0-9 _ - . #)", room, ROOM_NAME_MAX);
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
    struct chat_worker *cw = room_face_worker_new(w, cfg, sizeof *cw);
    if (!cw)
        return -1;
    read_options(&cw->opt, cfg);
    *wstate = cw;
    return 0;
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
    {"sendq", PC_OPT_SIZE, "1M", 4096, 1LL << 32,
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
    .worker_fini = room_face_worker_fini,
    .on_open = chat_on_open,
    .on_data = chat_on_data,
    .on_close = chat_on_close,
    .reload = chat_reload,
    .check = chat_check,
    .refuse_text = "ERR server full, try again later\n",
    .goodbye = chat_goodbye,
    .on_stop = room_face_on_stop,
};
