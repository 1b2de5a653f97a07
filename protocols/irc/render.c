/* The core's events as IRC lines, and its answers routed to the numerics
 * of each command family. An event is rendered once per variant (with or
 * without the server-time tag) into a shared buffer for every IRC member
 * of a room on this worker. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "protocols/irc/irc.h"

/* "@time=2026-12-01T09:00:00.000Z " for server-time. */
static int time_tag(int64_t ms, char *out, size_t size)
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    char date[32];
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm);
    return snprintf(out, size, "@time=%s.%03dZ ", date, (int)(ms % 1000));
}

/* The line for ev without its tag; 0 when this event shows nothing. */
static int render(const struct room_event *ev, const char *me, char *buf,
                  size_t size)
{
    char target[IRC_CHANNEL_MAX + 2];
    if (ev->room)
        snprintf(target, sizeof target, "#%s", ev->room);
    else
        snprintf(target, sizeof target, "%s", me);
    int head = snprintf(buf, size, ":%s!%s@%s ", ev->nick, ev->user,
                        ev->host);
    char *p = buf + head;
    size_t left = size - (size_t)head;
    int t = (int)ev->len;
    int n = 0;
    switch (ev->kind) {
    case ROOM_EV_SAY:
        n = snprintf(p, left, "PRIVMSG %s :%.*s", target, t, ev->text);
        break;
    case ROOM_EV_NOTICE:
        n = snprintf(p, left, "NOTICE %s :%.*s", target, t, ev->text);
        break;
    case ROOM_EV_ACTION:
        n = snprintf(p, left, "PRIVMSG %s :\x01" "ACTION %.*s\x01", target,
                     t, ev->text);
        break;
    case ROOM_EV_CTCP:
        n = snprintf(p, left, "PRIVMSG %s :\x01%.*s\x01", target, t,
                     ev->text);
        break;
    case ROOM_EV_JOIN:
        n = snprintf(p, left, "JOIN %s", target);
        break;
    case ROOM_EV_PART:
        n = t ? snprintf(p, left, "PART %s :%.*s", target, t, ev->text)
              : snprintf(p, left, "PART %s", target);
        break;
    case ROOM_EV_QUIT:
        n = snprintf(p, left, "QUIT :%.*s", t, ev->text);
        break;
    case ROOM_EV_NICK:
        n = snprintf(p, left, "NICK :%s", ev->target);
        break;
    case ROOM_EV_TOPIC:
        n = snprintf(p, left, "TOPIC %s :%.*s", target, t, ev->text);
        break;
    case ROOM_EV_MODE:
        n = snprintf(p, left, "MODE %s %.*s", target, t, ev->text);
        break;
    case ROOM_EV_KICK:
        n = snprintf(p, left, "KICK %s %s :%.*s", target, ev->target, t,
                     ev->text);
        break;
    case ROOM_EV_INVITE:
        n = snprintf(p, left, "INVITE %s #%s", me, ev->room);
        break;
    case ROOM_EV_MISSED: /* from the server: see irc_deliver */
        break;
    }
    if (n < 0)
        return 0;
    return (int)irc_line_end(buf, (size_t)n + (size_t)head);
}

/* The cluster's notice that lines of a room may be lost, from the
 * server like any notice of its own. */
static int missed(struct irc_conn *ic, const struct room_event *ev, char *buf,
                  size_t size)
{
    int n = snprintf(buf, size, ":%s NOTICE #%s :*** some lines of #%s may "
                     "have been missed", irc_server(ic), ev->room, ev->room);
    return n < 0 ? 0 : (int)irc_line_end(buf, (size_t)n);
}

void irc_deliver(struct room_user *u, const struct room_event *ev,
                 struct pc_sbuf **cache)
{
    struct irc_conn *ic = (struct irc_conn *)u;
    bool own = ev->from == u->id;
    /* Our own lines come back only with echo-message; our own NICK was
     * answered directly. */
    if (own && ev->kind == ROOM_EV_NICK)
        return;
    if (own && ev->room && !ic->cap_echo &&
        (ev->kind == ROOM_EV_SAY || ev->kind == ROOM_EV_NOTICE ||
         ev->kind == ROOM_EV_ACTION || ev->kind == ROOM_EV_CTCP))
        return;
    unsigned v = ic->cap_server_time ? 1 : 0;
    struct pc_sbuf *own_buf = NULL, **slot = ev->room ? &cache[v] : &own_buf;
    if (!*slot) {
        char line[IRC_LINE_MAX + 64];
        int tag = v ? time_tag(ev->time_ms, line, sizeof line) : 0;
        int n = ev->kind == ROOM_EV_MISSED
                    ? missed(ic, ev, line + tag, sizeof line - (size_t)tag)
                    : render(ev, u->nick, line + tag, sizeof line - (size_t)tag);
        if (n <= 0 || !(*slot = pc_sbuf_new((size_t)tag + (size_t)n)))
            return;
        memcpy((*slot)->data, line, (size_t)tag + (size_t)n);
    }
    room_write_shared(u, *slot);
    if (own_buf)
        pc_sbuf_unref(own_buf);
}

/* ---- answers ------------------------------------------------------------- */

void irc_answer(struct room_user *u, const struct room_answer *a)
{
    struct irc_conn *ic = (struct irc_conn *)u;
    switch (a->kind) {
    case ROOM_ANS_NICK:
        if (a->status == ROOM_NICK_RESERVED) {
            irc_numeric(ic, "432", "%s :Erroneous nickname (reserved for "
                        "generated nicks)", a->nick);
        } else if (a->status != ROOM_OK) {
            irc_numeric(ic, "433", "%s :Nickname is already in use",
                        a->nick);
        } else if (ic->registered && a->text && a->text[0]) {
            irc_send(ic, ":%s!%s@%s NICK :%s", a->text, u->user, u->host,
                     u->nick);
        } else {
            irc_try_register(ic);
        }
        break;
    case ROOM_ANS_JOIN:
    case ROOM_ANS_PART:
    case ROOM_ANS_TOPIC:
    case ROOM_ANS_MODE:
    case ROOM_ANS_BANS:
    case ROOM_ANS_KICK:
    case ROOM_ANS_INVITE:
    case ROOM_ANS_ROOMS:
        if (a->kind == ROOM_ANS_PART && a->status == ROOM_OK)
            break; /* the PART line said it */
        if (a->kind == ROOM_ANS_KICK && a->status == ROOM_OK)
            break; /* the KICK line said it */
        irc_answer_channel(ic, a);
        break;
    default:
        irc_answer_info(ic, a);
        break;
    }
}
