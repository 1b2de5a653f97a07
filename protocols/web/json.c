/* The browser's JSON requests (docs/protocols/web.md): one flat object a
 * message, {"type": "...", ...}, decoded by jansson (libjansson-dev) and
 * checked here, then handed to the room core. Refusals are answered with
 * {"type":"error","for":TYPE,"code":...,"text":...}. */
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocols/web/web.h"

void web_json_error(struct web_conn *wc, const char *what, const char *room,
                    const char *code, const char *fmt, ...)
{
    char text[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    web_json_send(wc, json_pack("{s:s, s:s, s:s, s:s, s:s*}", "type", "error",
                                "for", what, "code", code, "text", text,
                                "room", room));
}

/* A string member, or NULL (absent, or not a string). */
static const char *str(const json_t *o, const char *key, size_t *len)
{
    const json_t *v = json_object_get(o, key);
    if (!json_is_string(v))
        return NULL;
    *len = json_string_length(v);
    return json_string_value(v);
}

/* Text that reaches every face's screens: no C0 control but tab, no DEL
 * or C1 (terminal escapes for the chat face's users). UTF-8 it is: wslay
 * checked the frame, jansson the escapes. */
static bool text_ok(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return false;
        if (c == 0xc2 && i + 1 < n && (unsigned char)s[i + 1] < 0xa0)
            return false; /* U+0080..U+009F */
    }
    return true;
}

/* 1-32 of A-Z a-z 0-9 _ - [ ] { } \ ^ | `, not starting with a digit or
 * '-': what IRC and chat accept too. */
static bool nick_ok(const char *s, size_t n)
{
    if (n == 0 || n > ROOM_NICK_MAX || (s[0] >= '0' && s[0] <= '9') ||
        s[0] == '-')
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || strchr("_-[]{}\\^|`", c)))
            return false;
    }
    return true;
}

/* The "room" member, valid, or NULL with the error sent. */
static const char *room_of(struct web_conn *wc, const json_t *o,
                           const char *what)
{
    size_t n = 0;
    const char *room = str(o, "room", &n);
    if (!room || !room_name_valid(room, n)) {
        web_json_error(wc, what, NULL, "bad_room", "room: 1-%d of A-Z a-z "
                       "0-9 _ - . #", ROOM_NAME_MAX);
        return NULL;
    }
    return room;
}

/* The "text" member, valid and not empty, or NULL with the error sent. */
static const char *text_of(struct web_conn *wc, const json_t *o,
                           const char *what, const char *key, size_t *n)
{
    const char *text = str(o, key, n);
    if (!text || !*n) {
        web_json_error(wc, what, NULL, "bad_text", "%s is missing", key);
        return NULL;
    }
    if (*n > web_worker_of(wc)->opt.max_text) {
        web_json_error(wc, what, NULL, "too_long", "%s is over %zu bytes",
                       key, web_worker_of(wc)->opt.max_text);
        return NULL;
    }
    if (!text_ok(text, *n)) {
        web_json_error(wc, what, NULL, "bad_text",
                       "control characters are not allowed");
        return NULL;
    }
    return text;
}

static void req_nick(struct web_conn *wc, const json_t *o)
{
    size_t n = 0;
    const char *nick = str(o, "nick", &n);
    if (!nick || !nick_ok(nick, n)) {
        web_json_error(wc, "nick", NULL, "bad_nick", "nick: 1-%d of A-Z a-z "
                       "0-9 _ - [ ] { } \\ ^ | `, not starting with a digit "
                       "or -", ROOM_NICK_MAX);
    } else if (room_nick_reserved(nick, n)) {
        web_json_error(wc, "nick", NULL, "nick_reserved",
                       "nick %s is reserved for generated nicks", nick);
    } else if (strcmp(nick, wc->u.nick) == 0) {
        web_json_send(wc, json_pack("{s:s, s:s, s:s}", "type", "ok", "for",
                                    "nick", "nick", nick));
    } else {
        room_nick(&wc->u, nick);
    }
}

static void req_join(struct web_conn *wc, const json_t *o)
{
    const char *room = room_of(wc, o, "join");
    size_t kn = 0;
    const char *key = str(o, "key", &kn);
    if (!room)
        return;
    if (key && (kn > ROOM_KEY_MAX || strchr(key, ' '))) {
        web_json_error(wc, "join", room, "bad_key", "key: at most %d bytes, "
                       "no spaces", ROOM_KEY_MAX);
        return;
    }
    char names[WEB_ROOMS_MAX][ROOM_NAME_MAX + 1];
    if (room_user_rooms(&wc->u, names, WEB_ROOMS_MAX) == WEB_ROOMS_MAX) {
        web_json_error(wc, "join", room, "too_many_rooms",
                       "you are in %d rooms already", WEB_ROOMS_MAX);
        return;
    }
    room_join(&wc->u, room, key ? key : "", true);
}

static void req_say(struct web_conn *wc, const json_t *o, const char *what,
                    enum room_event_kind kind)
{
    const char *room = room_of(wc, o, what);
    size_t n = 0;
    const char *text = room ? text_of(wc, o, what, "text", &n) : NULL;
    if (text)
        room_say(&wc->u, room, kind, text, n);
}

static void req_msg(struct web_conn *wc, const json_t *o)
{
    size_t n = 0, tn = 0;
    const char *to = str(o, "to", &n);
    if (!to || !n || n > ROOM_NICK_MAX) {
        web_json_error(wc, "msg", NULL, "no_such_nick", "no such nick");
        return;
    }
    const char *text = text_of(wc, o, "msg", "text", &tn);
    const json_t *action = json_object_get(o, "action");
    if (text)
        room_tell(&wc->u, to,
                  json_is_true(action) ? ROOM_EV_ACTION : ROOM_EV_SAY, text,
                  tn);
}

static void req_topic(struct web_conn *wc, const json_t *o)
{
    const char *room = room_of(wc, o, "topic");
    size_t n = 0;
    const char *topic = str(o, "topic", &n);
    if (!room)
        return;
    if (topic && (n > ROOM_TOPIC_MAX || !text_ok(topic, n))) {
        web_json_error(wc, "topic", room, "bad_text", "topic: at most %d "
                       "bytes, no control characters", ROOM_TOPIC_MAX);
        return;
    }
    room_topic(&wc->u, room, topic);
}

static void req_quit(struct web_conn *wc, const json_t *o)
{
    size_t n = 0;
    const char *reason = str(o, "reason", &n);
    if (reason && n && text_ok(reason, n)) {
        free(wc->quit_reason);
        wc->quit_reason = strndup(reason, n < 200 ? n : 200);
    }
    web_ws_close(wc, 1000, "bye");
}

void web_json_request(struct web_conn *wc, const char *msg, size_t len)
{
    json_error_t err;
    json_t *o = json_loadb(msg, len, JSON_REJECT_DUPLICATES, &err);
    size_t tn = 0;
    const char *type = json_is_object(o) ? str(o, "type", &tn) : NULL;
    if (!type) {
        web_json_error(wc, "?", NULL, "bad_json", "expected a JSON object "
                       "with a \"type\"%s%s", o ? "" : ": ", o ? "" : err.text);
        json_decref(o);
        return;
    }
    if (strcmp(type, "nick") == 0) {
        req_nick(wc, o);
    } else if (strcmp(type, "join") == 0) {
        req_join(wc, o);
    } else if (strcmp(type, "part") == 0) {
        const char *room = room_of(wc, o, "part");
        size_t n = 0;
        const char *reason = str(o, "reason", &n);
        if (room)
            room_part(&wc->u, room,
                      reason && text_ok(reason, n) ? reason : NULL);
    } else if (strcmp(type, "say") == 0) {
        req_say(wc, o, "say", ROOM_EV_SAY);
    } else if (strcmp(type, "me") == 0) {
        req_say(wc, o, "me", ROOM_EV_ACTION);
    } else if (strcmp(type, "msg") == 0) {
        req_msg(wc, o);
    } else if (strcmp(type, "names") == 0) {
        const char *room = room_of(wc, o, "names");
        if (room)
            room_names(&wc->u, room);
    } else if (strcmp(type, "rooms") == 0) {
        room_list(&wc->u);
    } else if (strcmp(type, "topic") == 0) {
        req_topic(wc, o);
    } else if (strcmp(type, "away") == 0) {
        size_t n = 0;
        const char *text = str(o, "text", &n);
        room_away(&wc->u, text && n && text_ok(text, n) ? text : NULL);
    } else if (strcmp(type, "quit") == 0) {
        req_quit(wc, o);
    } else {
        web_json_error(wc, tn <= 32 ? type : "?", NULL, "unknown_type",
                       "unknown type");
    }
    json_decref(o);
}
