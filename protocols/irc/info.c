/* PRIVMSG and NOTICE, and the questions: WHO, WHOIS, ISON, USERHOST,
 * AWAY; with the numerics of their answers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocols/chat/line.h"
#include "protocols/irc/irc.h"

/* PRIVMSG or NOTICE to each target (channels and nicks). */
static void message(struct irc_conn *ic, char **p, unsigned n, bool notice)
{
    const char *cmd = notice ? "NOTICE" : "PRIVMSG";
    if (n == 0) {
        if (!notice)
            irc_numeric(ic, "411", ":No recipient given (%s)", cmd);
        return;
    }
    if (n < 2 || !p[1][0]) {
        if (!notice)
            irc_numeric(ic, "412", ":No text to send");
        return;
    }
    const char *text = p[1]; /* valid UTF-8: irc.c checked the line */
    size_t len = strlen(text);
    enum room_event_kind kind = notice ? ROOM_EV_NOTICE : ROOM_EV_SAY;
    const char *ccmd, *arg;
    size_t ccmdlen, arglen;
    if (irc_ctcp_split(text, len, &ccmd, &ccmdlen, &arg, &arglen)) {
        if (ccmdlen == 6 && memcmp(ccmd, "ACTION", 6) == 0) {
            kind = ROOM_EV_ACTION;
            text = arg;
            len = arglen;
        } else { /* the body as it was, for IRC clients only */
            kind = ROOM_EV_CTCP;
            text = ccmd;
            len = strnlen(ccmd, len - 1);
            if (len && ccmd[len - 1] == '\x01')
                len--;
        }
    }
    char targets[IRC_LINE_MAX];
    snprintf(targets, sizeof targets, "%s", p[0]);
    unsigned count = 0;
    for (char *s = NULL, *t = strtok_r(targets, ",", &s); t;
         t = strtok_r(NULL, ",", &s)) {
        if (++count > 8) {
            irc_numeric(ic, "407", "%.64s :Too many targets", t);
            break;
        }
        if (t[0] == '#') {
            const char *room = irc_room_of(ic, t);
            if (room)
                room_say(&ic->u, room, kind, text, len);
        } else if (!irc_nick_valid(t, strlen(t), ROOM_NICK_MAX)) {
            if (!notice)
                irc_numeric(ic, "401", "%.64s :No such nick/channel", t);
        } else {
            if (ic->cap_echo) /* echo-message: our own line, as sent */
                irc_send(ic, ":%s!%s@%s %s %s :%s", ic->u.nick, ic->u.user,
                         ic->u.host, cmd, t, p[1]);
            room_tell(&ic->u, t, kind, text, len);
        }
    }
}

void irc_cmd_privmsg(struct irc_conn *ic, char **p, unsigned n)
{
    message(ic, p, n, false);
}

void irc_cmd_notice(struct irc_conn *ic, char **p, unsigned n)
{
    message(ic, p, n, true);
}

void irc_cmd_who(struct irc_conn *ic, char **p, unsigned n)
{
    snprintf(ic->asked_arg, sizeof ic->asked_arg, "%s", n ? p[0] : "*");
    ic->asked = ASKED_WHO;
    if (n && p[0][0] == '#') {
        const char *room = irc_room_of(ic, p[0]);
        if (room)
            room_names(&ic->u, room);
        else
            irc_numeric(ic, "315", "%.64s :End of /WHO list.", p[0]);
        return;
    }
    if (!n || !irc_nick_valid(p[0], strlen(p[0]), ROOM_NICK_MAX)) {
        irc_numeric(ic, "315", "%.64s :End of /WHO list.", ic->asked_arg);
        return;
    }
    room_whois(&ic->u, p[0]);
}

/* "a,b" or "a b c": the core wants nicks separated by spaces. */
static void ask_nicks(struct irc_conn *ic, enum irc_asked what, char **p,
                      unsigned n)
{
    char nicks[IRC_LINE_MAX] = "";
    size_t len = 0;
    for (unsigned i = 0; i < n; i++)
        len += (size_t)snprintf(nicks + len, sizeof nicks - len, "%s%s",
                                len ? " " : "", p[i]);
    for (char *c = nicks; *c; c++)
        if (*c == ',')
            *c = ' ';
    snprintf(ic->asked_arg, sizeof ic->asked_arg, "%s", nicks);
    ic->asked = (uint8_t)what;
    room_whois(&ic->u, nicks);
}

void irc_cmd_whois(struct irc_conn *ic, char **p, unsigned n)
{
    /* WHOIS server nick: the last parameter is the nick. */
    ask_nicks(ic, ASKED_WHOIS, p + n - 1, 1);
}

void irc_cmd_ison(struct irc_conn *ic, char **p, unsigned n)
{
    ask_nicks(ic, ASKED_ISON, p, n);
}

void irc_cmd_userhost(struct irc_conn *ic, char **p, unsigned n)
{
    ask_nicks(ic, ASKED_USERHOST, p, n > 5 ? 5 : n);
}

void irc_cmd_away(struct irc_conn *ic, char **p, unsigned n)
{
    if (n && p[0][0]) {
        room_away(&ic->u, p[0]);
        irc_numeric(ic, "306", ":You have been marked as being away");
    } else {
        room_away(&ic->u, NULL);
        irc_numeric(ic, "305", ":You are no longer marked as being away");
    }
}

/* ---- answers --------------------------------------------------------------- */

struct found {
    char *nick, *user, *host, *rooms, *secure, *realname, *away;
};

/* One line of ROOM_ANS_WHOIS, split in place. */
static bool split_found(char *line, struct found *f)
{
    char *fields[7];
    for (int i = 0; i < 7; i++) {
        fields[i] = line;
        char *tab = line && i < 6 ? strchr(line, '\t') : NULL;
        if (i < 6 && !tab)
            return false;
        if (tab)
            *tab = '\0', line = tab + 1;
    }
    *f = (struct found){fields[0], fields[1], fields[2], fields[3],
                        fields[4], fields[5], fields[6]};
    return true;
}

static void who_line(struct irc_conn *ic, const char *channel,
                     const char *nick, const char *user, const char *host,
                     bool away, uint8_t prefix, const char *realname)
{
    char flags[4], *p = flags;
    *p++ = away ? 'G' : 'H';
    if (prefix & ROOM_OP)
        *p++ = '@';
    if ((prefix & ROOM_VOICE) && (p == flags + 1 || ic->cap_multi_prefix))
        *p++ = '+';
    *p = '\0';
    irc_numeric(ic, "352", "%s %s %s %s %s %s :0 %s", channel, user, host,
                irc_server(ic), nick, flags, realname);
}

static void answer_found(struct irc_conn *ic, const struct room_answer *a)
{
    char *copy = strndup(a->text, a->len), reply[IRC_LINE_MAX] = "";
    size_t len = 0;
    unsigned found = 0;
    for (char *s = NULL, *l = copy ? strtok_r(copy, "\n", &s) : NULL; l;
         l = strtok_r(NULL, "\n", &s)) {
        struct found f;
        if (!split_found(l, &f))
            continue;
        found++;
        switch (ic->asked) {
        case ASKED_WHOIS: {
            irc_numeric(ic, "311", "%s %s %s * :%s", f.nick, f.user, f.host,
                        f.realname);
            if (f.rooms[0]) {
                char rooms[IRC_LINE_MAX] = "";
                size_t rl = 0;
                for (char *s2 = NULL, *r = strtok_r(f.rooms, " ", &s2); r;
                     r = strtok_r(NULL, " ", &s2)) {
                    size_t pre = strspn(r, "@+");
                    rl += (size_t)snprintf(rooms + rl, sizeof rooms - rl,
                                           "%s%.*s#%s", rl ? " " : "",
                                           (int)pre, r, r + pre);
                    if (rl >= sizeof rooms)
                        break;
                }
                irc_numeric(ic, "319", "%s :%s", f.nick, rooms);
            }
            irc_numeric(ic, "312", "%s %s :percore", f.nick, irc_server(ic));
            if (f.secure[0]) /* RPL_WHOISSECURE, as most networks send */
                irc_numeric(ic, "671", "%s :is using a secure connection",
                            f.nick);
            if (f.away[0])
                irc_numeric(ic, "301", "%s :%s", f.nick, f.away);
            break;
        }
        case ASKED_WHO:
            who_line(ic, "*", f.nick, f.user, f.host, f.away[0] != '\0', 0,
                     f.realname);
            break;
        case ASKED_ISON:
            len += (size_t)snprintf(reply + len, sizeof reply - len, "%s%s",
                                    len ? " " : "", f.nick);
            break;
        case ASKED_USERHOST:
            len += (size_t)snprintf(reply + len, sizeof reply - len,
                                    "%s%s=%c%s@%s", len ? " " : "", f.nick,
                                    f.away[0] ? '-' : '+', f.user, f.host);
            break;
        }
        if (len >= sizeof reply)
            len = sizeof reply - 1;
    }
    free(copy);
    switch (ic->asked) {
    case ASKED_WHOIS:
        if (!found)
            irc_numeric(ic, "401", "%s :No such nick/channel", ic->asked_arg);
        irc_numeric(ic, "318", "%s :End of /WHOIS list.", ic->asked_arg);
        break;
    case ASKED_WHO:
        irc_numeric(ic, "315", "%s :End of /WHO list.", ic->asked_arg);
        break;
    case ASKED_ISON:
        irc_numeric(ic, "303", ":%s", reply);
        break;
    case ASKED_USERHOST:
        irc_numeric(ic, "302", ":%s", reply);
        break;
    }
}

void irc_answer_info(struct irc_conn *ic, const struct room_answer *a)
{
    switch (a->kind) {
    case ROOM_ANS_SAID:
        if (a->status == ROOM_NO_SUCH_NICK)
            irc_numeric(ic, "401", "%s :No such nick/channel", a->nick);
        else if (a->status == ROOM_OK && a->text && a->text[0])
            irc_numeric(ic, "301", "%s :%s", a->nick, a->text);
        break;
    case ROOM_ANS_NAMES:
        if (ic->asked == ASKED_WHO) {
            for (unsigned i = 0; a->status == ROOM_OK && i < a->nmembers; i++) {
                const struct room_listed *m = &a->members[i];
                who_line(ic, ic->asked_arg, m->nick, m->user, m->host,
                         m->away, m->prefix, m->realname);
            }
            irc_numeric(ic, "315", "%s :End of /WHO list.", ic->asked_arg);
        } else if (a->status == ROOM_OK) {
            irc_send_names(ic, a->room, a);
        } else {
            irc_numeric(ic, "366", "#%s :End of /NAMES list.", a->room);
        }
        break;
    case ROOM_ANS_WHOIS:
        answer_found(ic, a);
        break;
    case ROOM_ANS_USERS:
        irc_answer_lusers(ic, a);
        break;
    case ROOM_ANS_CANNOT_SPEAK:
        if (a->status == ROOM_NO_SUCH_ROOM)
            irc_numeric(ic, "403", "#%s :No such channel", a->room);
        else if (a->status == ROOM_NOT_DELIVERED)
            irc_numeric(ic, "404", "#%s :Cannot send to channel (not "
                        "delivered: the cluster is unreachable)", a->room);
        else
            irc_numeric(ic, "404", "#%s :Cannot send to channel", a->room);
        break;
    default:
        break;
    }
    if (a->kind != ROOM_ANS_SAID && a->kind != ROOM_ANS_CANNOT_SPEAK)
        ic->asked = ASKED_NONE; /* those two come while nothing is asked */
}
