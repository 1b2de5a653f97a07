/* The irc face: the client side of RFC 1459 / 2812 as modern clients use
 * it (docs/protocols/irc.md), over the room core. This file is the
 * module: options, connections, the 512-byte line discipline, the
 * command table (one row per command: who may send it, how many
 * parameters it needs; errors decided here, before any handler), and the
 * registration and ping timers. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "percore/percore.h"
#include "protocols/chat/line.h"
#include "protocols/irc/irc.h"

/* ---- writing ------------------------------------------------------------- */

size_t irc_line_end(char *buf, size_t n)
{
    if (n > IRC_LINE_MAX - 2) /* cut at a character, keep CR LF */
        n = chat_utf8_cut(buf, n, IRC_LINE_MAX - 2);
    buf[n++] = '\r';
    buf[n++] = '\n';
    return n;
}

static void send_line(struct irc_conn *ic, char *buf, int n)
{
    if (n >= 0)
        room_write(&ic->u, buf, irc_line_end(buf, (size_t)n));
}

void irc_send(struct irc_conn *ic, const char *fmt, ...)
{
    char buf[IRC_LINE_MAX * 2 + 2];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf - 2, fmt, ap);
    va_end(ap);
    if (n > (int)sizeof buf - 3)
        n = (int)sizeof buf - 3;
    send_line(ic, buf, n);
}

void irc_numeric(struct irc_conn *ic, const char *num, const char *fmt, ...)
{
    char buf[IRC_LINE_MAX * 2 + 2];
    int head = snprintf(buf, sizeof buf, ":%s %s %s ", irc_server(ic), num,
                        irc_me(ic));
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf + head, sizeof buf - 2 - (size_t)head, fmt, ap);
    va_end(ap);
    n = n < 0 ? head : head + n;
    if (n > (int)sizeof buf - 3)
        n = (int)sizeof buf - 3;
    send_line(ic, buf, n);
}

void irc_close_link(struct irc_conn *ic, const char *why)
{
    irc_send(ic, "ERROR :Closing Link: %s (%s)", ic->u.host, why);
    free(ic->quit_reason);
    ic->quit_reason = strdup(why);
    ic->quitting = true;
    pc_conn_close(ic->u.c);
}

/* ---- the command table ------------------------------------------------------ */

struct irc_command {
    const char *name;
    irc_handler *handler;
    unsigned min_params;
    bool before_registration; /* allowed while registering */
};

static const struct irc_command commands[] = {
    {"CAP", irc_cmd_cap, 1, true},
    {"PASS", irc_cmd_pass, 1, true},
    {"NICK", irc_cmd_nick, 0, true},
    {"USER", irc_cmd_user, 4, true},
    {"PING", irc_cmd_ping, 1, true},
    {"PONG", irc_cmd_pong, 0, true},
    {"QUIT", irc_cmd_quit, 0, true},
    {"JOIN", irc_cmd_join, 1, false},
    {"PART", irc_cmd_part, 1, false},
    {"TOPIC", irc_cmd_topic, 1, false},
    {"NAMES", irc_cmd_names, 0, false},
    {"LIST", irc_cmd_list, 0, false},
    {"MODE", irc_cmd_mode, 1, false},
    {"KICK", irc_cmd_kick, 2, false},
    {"INVITE", irc_cmd_invite, 2, false},
    {"PRIVMSG", irc_cmd_privmsg, 0, false},
    {"NOTICE", irc_cmd_notice, 0, false},
    {"WHO", irc_cmd_who, 0, false},
    {"WHOIS", irc_cmd_whois, 1, false},
    {"AWAY", irc_cmd_away, 0, false},
    {"ISON", irc_cmd_ison, 1, false},
    {"USERHOST", irc_cmd_userhost, 1, false},
    {"LUSERS", irc_cmd_lusers, 0, false},
    {"MOTD", irc_cmd_motd, 0, false},
    {NULL, NULL, 0, false},
};

static void handle_line(struct irc_conn *ic, char *line, size_t n)
{
    /* A NUL would end the line early for C peers, a bare CR ends it for
     * some clients and servers: either could smuggle a forged line. */
    if (memchr(line, '\0', n) || memchr(line, '\r', n)) {
        irc_send(ic, "FAIL * INVALID_TEXT :NUL and CR are not allowed in a "
                 "line");
        return;
    }
    if (chat_text_scan(line, n, true) != CHAT_TEXT_OK) {
        irc_send(ic, "FAIL * INVALID_UTF8 :Lines must be valid UTF-8");
        return;
    }
    struct irc_message m;
    if (irc_message_parse(line, n, &m) != 0)
        return; /* an empty line, or tags alone */
    const struct irc_command *c = commands;
    while (c->name && strcmp(c->name, m.command) != 0)
        c++;
    if (!c->name) {
        if (ic->registered)
            irc_numeric(ic, "421", "%.32s :Unknown command", m.command);
        else
            irc_numeric(ic, "451", ":You have not registered");
        return;
    }
    if (!ic->registered && !c->before_registration) {
        irc_numeric(ic, "451", ":You have not registered");
        return;
    }
    if (m.nparams < c->min_params) {
        irc_numeric(ic, "461", "%s :Not enough parameters", c->name);
        return;
    }
    c->handler(ic, m.params, m.nparams);
}

/* ---- connections ------------------------------------------------------------ */

static void timer_cb(struct pc_timer *t)
{
    struct irc_conn *ic = t->data;
    struct irc_worker *iw = irc_worker_of(ic);
    struct pc_worker *w = pc_conn_worker(ic->u.c);
    if (ic->quitting)
        return;
    if (!ic->registered) {
        irc_close_link(ic, "Registration timed out");
        return;
    }
    double idle = pc_worker_now(w) - ic->last_input;
    if (ic->ping_sent) {
        irc_close_link(ic, "Ping timeout");
        return;
    }
    if (idle + 0.001 >= iw->opt.ping_interval) {
        irc_send(ic, "PING :%s", irc_server(ic));
        ic->ping_sent = true;
        pc_timer_start(w, t, iw->opt.ping_timeout);
        return;
    }
    pc_timer_start(w, t, iw->opt.ping_interval - idle);
}

static void irc_on_open(struct pc_conn *c)
{
    struct irc_conn *ic = pc_conn_state(c);
    struct irc_worker *iw = pc_conn_wstate(c);
    if (room_user_open(&ic->u, iw->face.core, c, &irc_face, &iw->opt.limits,
                       &iw->face.counters) < 0) {
        pc_conn_abort(c, PC_CLOSE_ERROR);
        return;
    }
    ic->pass_ok = iw->opt.password[0] == '\0';
    struct pc_worker *w = pc_conn_worker(c);
    ic->last_input = pc_worker_now(w);
    pc_timer_init(&ic->timer, timer_cb, ic);
    pc_timer_start(w, &ic->timer, iw->opt.registration_timeout);
}

static size_t irc_on_data(struct pc_conn *c, const char *data, size_t len)
{
    struct irc_conn *ic = pc_conn_state(c);
    ic->last_input = pc_worker_now(pc_conn_worker(c));
    ic->ping_sent = false;
    size_t used = 0;
    while (used < len && !ic->quitting) {
        const char *line = data + used;
        const char *nl = memchr(line, '\n', len - used);
        if (!nl) {
            if (!ic->discarding && len - used > IRC_LINE_MAX) {
                irc_numeric(ic, "417", ":Input line was too long");
                ic->discarding = true;
            }
            return ic->discarding ? len : used;
        }
        size_t n = (size_t)(nl - line), next = used + n + 1;
        if (ic->discarding) { /* the end of a line already refused */
            ic->discarding = false;
            used = next;
            continue;
        }
        if (n + 1 > IRC_LINE_MAX) {
            irc_numeric(ic, "417", ":Input line was too long");
            used = next;
            continue;
        }
        if (n && line[n - 1] == '\r')
            n--;
        if (n) {
            if (!room_user_admit(&ic->u))
                return used; /* this line waits */
            char buf[IRC_LINE_MAX + 1];
            memcpy(buf, line, n);
            buf[n] = '\0';
            handle_line(ic, buf, n);
            if (room_user_waiting(&ic->u))
                return next;
        }
        used = next;
    }
    return ic->quitting ? len : used;
}

static void irc_on_close(struct pc_conn *c, enum pc_close_reason why)
{
    struct irc_conn *ic = pc_conn_state(c);
    struct irc_worker *iw = pc_conn_wstate(c);
    pc_timer_stop(pc_conn_worker(c), &ic->timer);
    const char *reason = ic->quit_reason;
    if (!reason)
        reason = why == PC_CLOSE_OUTPUT_LIMIT ? "SendQ exceeded"
                 : why == PC_CLOSE_PEER      ? "Connection closed"
                                             : pc_close_reason_name(why);
    room_user_close(&ic->u, reason);
    free(ic->quit_reason);
    ic->quit_reason = NULL;
    (void)iw;
}

static size_t irc_goodbye(struct pc_conn *c, enum pc_close_reason why,
                          char *buf, size_t size)
{
    struct irc_conn *ic = pc_conn_state(c);
    const char *text = why == PC_CLOSE_OUTPUT_LIMIT ? "SendQ exceeded"
                       : why == PC_CLOSE_SHUTDOWN   ? "Server shutting down"
                                                    : pc_close_reason_name(why);
    int n = snprintf(buf, size, "ERROR :Closing Link: %s (%s)\r\n",
                     ic->u.host, text);
    return n > 0 ? (size_t)n : 0;
}

/* ---- the module -------------------------------------------------------------- */

static void read_options(struct irc_options *o, const struct pc_section *s)
{
    o->limits.sendq = (size_t)pc_section_int(s, "sendq");
    o->limits.flood_rate = (double)pc_section_int(s, "flood_rate");
    o->limits.flood_burst = (double)pc_section_int(s, "flood_burst");
    snprintf(o->server_name, sizeof o->server_name, "%s",
             pc_section_string(s, "server_name"));
    snprintf(o->network, sizeof o->network, "%s",
             pc_section_string(s, "network"));
    snprintf(o->password, sizeof o->password, "%s",
             pc_section_string(s, "password"));
    snprintf(o->motd, sizeof o->motd, "%s", pc_section_string(s, "motd"));
    o->registration_timeout = pc_section_seconds(s, "registration_timeout");
    o->ping_interval = pc_section_seconds(s, "ping_interval");
    o->ping_timeout = pc_section_seconds(s, "ping_timeout");
}

static int irc_check(const struct pc_section *cfg, char *err, size_t errlen)
{
    const char *name = pc_section_string(cfg, "server_name");
    if (!name || !*name || strchr(name, ' ') || strchr(name, ':') ||
        strlen(name) >= 64) {
        snprintf(err, errlen, "server_name: '%s' must be 1-63 characters "
                 "without spaces or ':'", name ? name : "");
        return -1;
    }
    const char *net = pc_section_string(cfg, "network");
    if (!net || !*net || strchr(net, ' ') || strlen(net) >= 32) {
        snprintf(err, errlen, "network: must be 1-31 characters without "
                 "spaces");
        return -1;
    }
    if (pc_section_int(cfg, "max_input") < IRC_LINE_MAX + 2) {
        snprintf(err, errlen, "max_input: must be at least %d bytes for "
                 "irc's %d-byte lines", IRC_LINE_MAX + 2, IRC_LINE_MAX);
        return -1;
    }
    return 0;
}

static int irc_worker_init(struct pc_worker *w, const struct pc_section *cfg,
                           void **wstate)
{
    struct irc_worker *iw = room_face_worker_new(w, cfg, sizeof *iw);
    if (!iw)
        return -1;
    read_options(&iw->opt, cfg);
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(iw->created, sizeof iw->created, "%Y-%m-%d %H:%M:%S UTC", &tm);
    *wstate = iw;
    return 0;
}

static void irc_reload(struct pc_worker *w, void *wstate,
                       const struct pc_section *cfg)
{
    (void)w;
    read_options(&((struct irc_worker *)wstate)->opt, cfg);
}

static const struct pc_option irc_options[] = {
    {"server_name", PC_OPT_STRING, "percore", 0, 0,
     "the server's name in replies (001, numerics' source)"},
    {"network", PC_OPT_STRING, "percore", 0, 0, "NETWORK= in 005"},
    {"password", PC_OPT_STRING, "", 0, 0,
     "server password clients must send with PASS; empty = none"},
    {"motd", PC_OPT_STRING, "", 0, 0,
     "file with the message of the day; empty = none (422)"},
    {"registration_timeout", PC_OPT_SECONDS, "30", 0.1, 3600,
     "seconds a connection may take to register"},
    {"ping_interval", PC_OPT_SECONDS, "120", 0.1, 86400,
     "seconds of silence after which the server sends PING"},
    {"ping_timeout", PC_OPT_SECONDS, "60", 0.1, 86400,
     "seconds to answer the server's PING"},
    {"sendq", PC_OPT_SIZE, "1M", 4096, 1LL << 32,
     "unsent output after which a client is disconnected"},
    {"flood_rate", PC_OPT_INT, "20", 0, 1e9,
     "lines per second a connection may send on average; 0 = unlimited"},
    {"flood_burst", PC_OPT_INT, "40", 1, 1e9,
     "lines a connection may send at once"},
    {NULL, 0, NULL, 0, 0, NULL},
};

const struct room_face irc_face = {
    .name = "irc",
    .deliver = irc_deliver,
    .answer = irc_answer,
};

const struct pc_proto pc_irc_proto = {
    .abi = PC_PROTO_ABI,
    .name = "irc",
    .conn_size = sizeof(struct irc_conn),
    .options = irc_options,
    .worker_init = irc_worker_init,
    .worker_fini = room_face_worker_fini,
    .on_open = irc_on_open,
    .on_data = irc_on_data,
    .on_close = irc_on_close,
    .reload = irc_reload,
    .check = irc_check,
    .refuse_text = "ERROR :Closing Link: server full, try again later\r\n",
    .goodbye = irc_goodbye,
    .on_stop = room_face_on_stop,
};
