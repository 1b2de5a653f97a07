/* The room core's events and answers as the web face's JSON messages
 * (docs/protocols/web.md). An event said in a room is encoded once per
 * worker, into one frame shared by every web member there. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "protocols/web/web.h"

void web_json_send(struct web_conn *wc, json_t *o)
{
    if (!o)
        return;
    char *s = json_dumps(o, JSON_COMPACT);
    if (s)
        web_ws_send(wc, s, strlen(s));
    free(s);
    json_decref(o);
}

/* Text from other faces is not always UTF-8 (an IRC client may send
 * Latin-1): each byte that does not start a well-formed character
 * becomes U+FFFD, so that the frame stays valid for the browser. */
static json_t *text_json(const char *s, size_t n)
{
    json_t *j = json_stringn(s, n);
    if (j)
        return j;
    char *out = malloc(n * 3 + 1);
    size_t k = 0;
    if (!out)
        return NULL;
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        size_t len = c < 0x80 ? 1 : c >= 0xc2 && c <= 0xdf ? 2
                   : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4
                   : 0;
        bool valid = len && c != 0 && i + len <= n;
        for (size_t m = 1; valid && m < len; m++)
            valid = ((unsigned char)s[i + m] & 0xc0) == 0x80;
        /* Let jansson judge overlong forms and surrogates. */
        json_t *one = valid ? json_stringn(s + i, len) : NULL;
        if (one) {
            memcpy(out + k, s + i, len);
            k += len;
            i += len;
            json_decref(one);
        } else {
            memcpy(out + k, "\xef\xbf\xbd", 3);
            k += 3;
            i++;
        }
    }
    j = json_stringn(out, k);
    free(out);
    return j;
}

static const char *kind_name(enum room_event_kind k)
{
    switch (k) {
    case ROOM_EV_SAY: return "say";
    case ROOM_EV_ACTION: return "me";
    case ROOM_EV_NOTICE: return "notice";
    case ROOM_EV_CTCP: return NULL; /* requests for IRC clients' software */
    case ROOM_EV_JOIN: return "join";
    case ROOM_EV_PART: return "part";
    case ROOM_EV_QUIT: return "quit";
    case ROOM_EV_NICK: return "nick";
    case ROOM_EV_TOPIC: return "topic";
    case ROOM_EV_MODE: return "mode";
    case ROOM_EV_KICK: return "kick";
    case ROOM_EV_INVITE: return "invite";
    case ROOM_EV_MISSED: return "missed"; /* the cluster: docs/scaling.md */
    }
    return NULL;
}

static json_t *event_json(const struct room_event *ev, const char *me)
{
    const char *type = kind_name(ev->kind);
    if (!type)
        return NULL;
    json_t *o = json_pack("{s:s, s:s, s:I}", "type", type, "nick",
                          ev->nick ? ev->nick : "", "time",
                          (json_int_t)ev->time_ms);
    if (!o)
        return NULL;
    if (ev->room)
        json_object_set_new(o, "room", json_string(ev->room));
    else
        json_object_set_new(o, "to", json_string(me));
    if (ev->target && ev->target[0])
        json_object_set_new(o, "target", json_string(ev->target));
    if (ev->text && ev->kind != ROOM_EV_JOIN && ev->kind != ROOM_EV_NICK &&
        ev->kind != ROOM_EV_INVITE)
        json_object_set_new(o, "text", text_json(ev->text, ev->len));
    return o;
}

static void web_deliver(struct room_user *u, const struct room_event *ev,
                        struct pc_sbuf **cache)
{
    struct web_conn *wc = (struct web_conn *)u;
    if (wc->closing)
        return;
    if (!ev->room || ev->kind == ROOM_EV_INVITE) { /* to one user */
        web_json_send(wc, event_json(ev, u->nick));
        return;
    }
    if (!cache[0]) {
        json_t *o = event_json(ev, u->nick);
        char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
        if (s)
            cache[0] = web_ws_frame(s, strlen(s));
        free(s);
        json_decref(o);
        if (!cache[0])
            return;
    }
    room_write_shared(u, cache[0]);
}

/* ---- answers --------------------------------------------------------- */

static const char *status_code(enum room_status st)
{
    switch (st) {
    case ROOM_OK: return "ok";
    case ROOM_NO_SUCH_NICK: return "no_such_nick";
    case ROOM_NO_SUCH_ROOM: return "no_such_room";
    case ROOM_NOT_MEMBER: return "not_member";
    case ROOM_NOT_OP: return "not_op";
    case ROOM_TARGET_NOT_MEMBER: return "target_not_member";
    case ROOM_ALREADY_MEMBER: return "already_member";
    case ROOM_NICK_TAKEN: return "nick_taken";
    case ROOM_NICK_RESERVED: return "nick_reserved";
    case ROOM_BANNED: return "banned";
    case ROOM_INVITE_ONLY: return "invite_only";
    case ROOM_BAD_KEY: return "bad_key";
    case ROOM_FULL: return "full";
    case ROOM_CANNOT_SPEAK: return "cannot_speak";
    case ROOM_BAN_LIST_FULL: return "ban_list_full";
    case ROOM_NO_MEMORY: return "no_memory";
    case ROOM_NOT_DELIVERED: return "not_delivered";
    }
    return "error";
}

static json_t *members_json(const struct room_answer *a)
{
    json_t *list = json_array();
    for (unsigned i = 0; list && i < a->nmembers; i++) {
        const struct room_listed *m = &a->members[i];
        json_array_append_new(list, json_pack(
            "{s:s, s:b, s:b, s:b}", "nick", m->nick, "op",
            (m->prefix & ROOM_OP) != 0, "voice", (m->prefix & ROOM_VOICE) != 0,
            "away", m->away));
    }
    return list;
}

/* "name members topic\n" per room, from every worker. */
static json_t *rooms_json(const struct room_answer *a)
{
    json_t *list = json_array();
    const char *s = a->text, *end = a->text + a->len;
    while (list && s < end) {
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        const char *e = nl ? nl : end;
        char name[ROOM_NAME_MAX + 1];
        unsigned members = 0;
        int used = 0;
        char *line = strndup(s, (size_t)(e - s));
        /* NOLINTNEXTLINE(cert-err34-c): the home's own "name count " */
        if (line && sscanf(line, "%32s %u %n", name, &members, &used) >= 2)
            json_array_append_new(list, json_pack(
                "{s:s, s:i, s:o}", "name", name, "members", (int)members,
                "topic", text_json(line + used, strlen(line + used))));
        free(line);
        s = e + 1;
    }
    return list;
}

/* {"type":"ok","for":what, fields...}: the type first, for readers. */
static void ok(struct web_conn *wc, const char *what, json_t *fields)
{
    json_t *o = json_pack("{s:s, s:s}", "type", "ok", "for", what);
    if (o && fields)
        json_object_update(o, fields);
    json_decref(fields);
    web_json_send(wc, o);
}

static void web_answer(struct room_user *u, const struct room_answer *a)
{
    struct web_conn *wc = (struct web_conn *)u;
    const char *code = status_code(a->status);
    switch (a->kind) {
    case ROOM_ANS_NICK:
        if (a->status != ROOM_OK)
            web_json_error(wc, "nick", NULL, code, "nick %s is %s", a->nick,
                           a->status == ROOM_NICK_TAKEN ? "taken"
                                                        : "not available");
        else
            ok(wc, "nick", json_pack("{s:s}", "nick", a->nick));
        return;
    case ROOM_ANS_JOIN:
        if (a->status != ROOM_OK)
            web_json_error(wc, "join", a->room, code, "cannot join %s (%s)",
                           a->room, code);
        else
            ok(wc, "join", json_pack(
                "{s:s, s:o, s:s, s:o}", "room", a->room, "topic",
                text_json(a->topic ? a->topic : "",
                          a->topic ? strlen(a->topic) : 0),
                "topic_by", a->topic_by ? a->topic_by : "", "members",
                members_json(a)));
        return;
    case ROOM_ANS_PART:
        if (a->status != ROOM_OK)
            web_json_error(wc, "part", a->room, code, "you are not in %s",
                           a->room);
        else
            ok(wc, "part", json_pack("{s:s}", "room", a->room));
        return;
    case ROOM_ANS_SAID:
        if (a->status != ROOM_OK)
            web_json_error(wc, "msg", NULL, code, "no such nick %s", a->nick);
        else
            ok(wc, "msg", json_pack("{s:s, s:s*}", "to", a->nick, "away",
                                    a->text));
        return;
    case ROOM_ANS_NAMES:
        if (a->status != ROOM_OK)
            web_json_error(wc, "names", a->room, code, "you are not in %s",
                           a->room);
        else
            ok(wc, "names", json_pack("{s:s, s:o}", "room", a->room,
                                      "members", members_json(a)));
        return;
    case ROOM_ANS_TOPIC:
        if (a->status != ROOM_OK)
            web_json_error(wc, "topic", a->room, code, "cannot set the topic "
                           "of %s (%s)", a->room, code);
        else
            ok(wc, "topic", json_pack(
                "{s:s, s:o, s:s}", "room", a->room, "topic",
                text_json(a->topic ? a->topic : "",
                          a->topic ? strlen(a->topic) : 0),
                "topic_by", a->topic_by ? a->topic_by : ""));
        return;
    case ROOM_ANS_ROOMS:
        ok(wc, "rooms", json_pack("{s:o}", "rooms", rooms_json(a)));
        return;
    case ROOM_ANS_CANNOT_SPEAK:
        if (a->status == ROOM_NOT_DELIVERED)
            web_json_error(wc, "say", a->room, "not_delivered",
                           "not delivered to %s: the cluster is unreachable",
                           a->room);
        else
            web_json_error(wc, "say", a->room, "cannot_speak",
                           "you cannot speak in %s now", a->room);
        return;
    default:
        return; /* the web face asks nothing else */
    }
}

void web_welcome(struct web_conn *wc)
{
    web_json_send(wc, json_pack("{s:s, s:s, s:s, s:s}", "type", "welcome",
                                "nick", wc->u.nick, "server", "percore",
                                "version", PC_VERSION));
}

const struct room_face web_face = {
    .name = "web",
    .deliver = web_deliver,
    .answer = web_answer,
};
