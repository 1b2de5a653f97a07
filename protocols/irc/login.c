/* Registration (CAP, PASS, NICK, USER), the welcome burst (001-005,
 * LUSERS, MOTD), PING and QUIT. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocols/irc/irc.h"
#include "protocols/irc/mode.h"

static const char *const caps[] = {"multi-prefix", "server-time",
                                   "echo-message", NULL};

static bool *cap_flag(struct irc_conn *ic, const char *name)
{
    if (strcmp(name, "multi-prefix") == 0)
        return &ic->cap_multi_prefix;
    if (strcmp(name, "server-time") == 0)
        return &ic->cap_server_time;
    if (strcmp(name, "echo-message") == 0)
        return &ic->cap_echo;
    return NULL;
}

void irc_cmd_cap(struct irc_conn *ic, char **p, unsigned n)
{
    const char *sub = p[0];
    if (strcmp(sub, "LS") == 0 || strcmp(sub, "ls") == 0) {
        if (!ic->registered)
            ic->cap_open = true; /* registration waits for CAP END */
        irc_send(ic, ":%s CAP %s LS :multi-prefix server-time echo-message",
                 irc_server(ic), irc_me(ic));
    } else if (strcmp(sub, "LIST") == 0) {
        char list[64] = "";
        for (const char *const *c = caps; *c; c++)
            if (*cap_flag(ic, *c))
                snprintf(list + strlen(list), sizeof list - strlen(list),
                         "%s%s", list[0] ? " " : "", *c);
        irc_send(ic, ":%s CAP %s LIST :%s", irc_server(ic), irc_me(ic), list);
    } else if (strcmp(sub, "REQ") == 0 && n >= 2) {
        if (!ic->registered)
            ic->cap_open = true;
        /* All or nothing: one unknown capability refuses the request. */
        char copy[IRC_LINE_MAX];
        snprintf(copy, sizeof copy, "%s", p[1]);
        bool ok = true;
        for (char *s = NULL, *c = strtok_r(copy, " ", &s); c;
             c = strtok_r(NULL, " ", &s))
            ok &= cap_flag(ic, c[0] == '-' ? c + 1 : c) != NULL;
        if (ok) {
            snprintf(copy, sizeof copy, "%s", p[1]);
            for (char *s = NULL, *c = strtok_r(copy, " ", &s); c;
                 c = strtok_r(NULL, " ", &s))
                *cap_flag(ic, c[0] == '-' ? c + 1 : c) = c[0] != '-';
        }
        irc_send(ic, ":%s CAP %s %s :%s", irc_server(ic), irc_me(ic),
                 ok ? "ACK" : "NAK", p[1]);
    } else if (strcmp(sub, "END") == 0) {
        ic->cap_open = false;
        irc_try_register(ic);
    } else {
        irc_numeric(ic, "410", "%.32s :Invalid CAP command", sub);
    }
}

void irc_cmd_pass(struct irc_conn *ic, char **p, unsigned n)
{
    (void)n;
    if (ic->registered) {
        irc_numeric(ic, "462", ":You may not reregister");
        return;
    }
    const char *want = irc_worker_of(ic)->opt.password;
    ic->pass_ok = !want[0] || strcmp(want, p[0]) == 0;
}

void irc_cmd_nick(struct irc_conn *ic, char **p, unsigned n)
{
    if (n == 0 || !p[0][0]) {
        irc_numeric(ic, "431", ":No nickname given");
        return;
    }
    const char *nick = p[0];
    if (!irc_nick_valid(nick, strlen(nick), ROOM_NICK_MAX)) {
        irc_numeric(ic, "432", "%.64s :Erroneous nickname", nick);
        return;
    }
    if (strcmp(nick, ic->u.nick) == 0)
        return;
    if (ic->u.claiming)
        return; /* input is held while a claim is out: cannot happen */
    room_nick(&ic->u, nick);
}

void irc_cmd_user(struct irc_conn *ic, char **p, unsigned n)
{
    (void)n;
    if (ic->registered || ic->got_user) {
        irc_numeric(ic, "462", ":You may not reregister");
        return;
    }
    /* Not checked by identd: "~" says so, as ircds do. Only characters
     * that cannot break a nick!user@host prefix are kept. */
    char user[ROOM_USER_MAX + 1] = "~";
    size_t len = 1;
    for (const char *c = p[0]; *c && len < ROOM_USER_MAX; c++)
        if (irc_nick_valid(c, 1, 1) || (*c >= '0' && *c <= '9') ||
            *c == '-' || *c == '.')
            user[len++] = *c;
    user[len] = '\0';
    if (len == 1) {
        irc_numeric(ic, "461", "USER :Not enough parameters");
        return;
    }
    memcpy(ic->u.user, user, sizeof ic->u.user);
    free(ic->u.realname);
    ic->u.realname = strndup(p[3], ROOM_REAL_MAX);
    for (char *c = ic->u.realname; c && *c; c++)
        if ((unsigned char)*c < 0x20) /* tabs separate the core's fields */
            *c = ' ';
    ic->got_user = true;
    irc_try_register(ic);
}

static void send_motd(struct irc_conn *ic)
{
    const char *path = irc_worker_of(ic)->opt.motd;
    FILE *f = path[0] ? fopen(path, "r") : NULL;
    if (!f) {
        irc_numeric(ic, "422", ":MOTD File is missing");
        return;
    }
    irc_numeric(ic, "375", ":- %s Message of the day - ", irc_server(ic));
    char line[400];
    for (int i = 0; i < 200 && fgets(line, sizeof line, f); i++) {
        line[strcspn(line, "\r\n")] = '\0';
        irc_numeric(ic, "372", ":- %s", line);
    }
    fclose(f);
    irc_numeric(ic, "376", ":End of /MOTD command.");
}

void irc_cmd_motd(struct irc_conn *ic, char **p, unsigned n)
{
    (void)p, (void)n;
    send_motd(ic);
}

void irc_cmd_lusers(struct irc_conn *ic, char **p, unsigned n)
{
    (void)p, (void)n;
    ic->asked = ASKED_LUSERS;
    room_users(&ic->u);
}

/* The rest of the welcome comes with the user count (LUSERS), then the
 * MOTD: see irc_answer_info. */
static void welcome(struct irc_conn *ic)
{
    struct irc_worker *iw = irc_worker_of(ic);
    const char *s = irc_server(ic);
    irc_numeric(ic, "001", ":Welcome to the %s IRC Network %s!%s@%s",
                iw->opt.network, ic->u.nick, ic->u.user, ic->u.host);
    irc_numeric(ic, "002", ":Your host is %s, running version percore-%s", s,
                PC_VERSION);
    irc_numeric(ic, "003", ":This server was created %s", iw->created);
    irc_numeric(ic, "004", "%s percore-%s %s %s", s, PC_VERSION,
                IRC_MYINFO_USERMODES, IRC_MYINFO_CHANMODES);
    irc_numeric(ic, "005",
                "CASEMAPPING=rfc1459 CHANTYPES=# PREFIX=%s CHANMODES=%s "
                "CHANLIMIT=#:%d NICKLEN=%d CHANNELLEN=%d TOPICLEN=%d "
                "KICKLEN=%d "
                "AWAYLEN=300 MODES=8 MAXTARGETS=8 NETWORK=%s "
                ":are supported by this server",
                IRC_ISUPPORT_PREFIX, IRC_ISUPPORT_CHANMODES,
                IRC_CHANNELS_MAX, ROOM_NICK_MAX,
                IRC_CHANNEL_MAX, ROOM_TOPIC_MAX, 300, iw->opt.network);
    struct pc_tls_info tls;
    if (pc_conn_tls(ic->u.c, &tls)) {
        /* What the client negotiated, as IRC networks tell it. */
        irc_send(ic, ":%s NOTICE %s :*** You are connected to %s using "
                 "%s-%s", s, ic->u.nick, s, tls.version, tls.cipher);
        if (tls.peer_subject[0])
            irc_send(ic, ":%s NOTICE %s :*** Your client certificate: %s", s,
                     ic->u.nick, tls.peer_subject);
    }
    ic->welcomed_nick = true;
    ic->asked = ASKED_LUSERS;
    room_users(&ic->u);
}

void irc_try_register(struct irc_conn *ic)
{
    if (ic->registered || ic->cap_open || !ic->got_user || !ic->u.nick[0])
        return;
    if (!ic->pass_ok) {
        irc_numeric(ic, "464", ":Password incorrect");
        irc_close_link(ic, "Bad Password");
        return;
    }
    ic->registered = true;
    struct irc_worker *iw = irc_worker_of(ic);
    struct pc_worker *w = pc_conn_worker(ic->u.c);
    pc_timer_start(w, &ic->timer, iw->opt.ping_interval);
    welcome(ic);
}

void irc_answer_lusers(struct irc_conn *ic, const struct room_answer *a)
{
    irc_numeric(ic, "251", ":There are %llu users and 0 invisible on 1 "
                "servers", (unsigned long long)a->count);
    irc_numeric(ic, "252", "0 :operator(s) online");
    irc_numeric(ic, "253", "0 :unknown connection(s)");
    irc_numeric(ic, "254", "%llu :channels formed",
                (unsigned long long)a->rooms);
    irc_numeric(ic, "255", ":I have %llu clients and 0 servers",
                (unsigned long long)a->count);
    if (ic->welcomed_nick) { /* the welcome burst ends with the MOTD */
        ic->welcomed_nick = false;
        send_motd(ic);
    }
}

void irc_cmd_ping(struct irc_conn *ic, char **p, unsigned n)
{
    (void)n;
    irc_send(ic, ":%s PONG %s :%s", irc_server(ic), irc_server(ic), p[0]);
}

void irc_cmd_pong(struct irc_conn *ic, char **p, unsigned n)
{
    (void)ic, (void)p, (void)n; /* any input counts as an answer */
}

void irc_cmd_quit(struct irc_conn *ic, char **p, unsigned n)
{
    char reason[320];
    if (n && p[0][0])
        snprintf(reason, sizeof reason, "Quit: %.300s", p[0]);
    else
        snprintf(reason, sizeof reason, "Quit");
    irc_close_link(ic, reason);
}
