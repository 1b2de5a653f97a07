/* How chat mode speaks to each server:
 *  percore  "/join ROOM" then "OK join ROOM"; a line is "NICK: TEXT"
 *           (docs/protocols/chat.md)
 *  redis    SUBSCRIBE ROOM / PUBLISH ROOM TEXT in RESP2; a line arrives as
 *           the push ["message", ROOM, TEXT]
 *  nats     SUB ROOM 1 (a PING/PONG round trip confirms it) and
 *           PUB ROOM N; a line arrives as "MSG ROOM 1 N" and N bytes
 *  irc      NICK and USER, 001, JOIN #ROOM and its echo (or 366); a line
 *           is "PRIVMSG #ROOM :TEXT" and arrives, at every member but its
 *           sender, as ":nick!user@host PRIVMSG #ROOM :TEXT" (RFC 2812) */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "chat.h"

static const char *room_of(const struct chat_conn *c)
{
    return c->m->st->room_names[c->m->room];
}

static bool starts(const char *s, size_t n, const char *prefix)
{
    size_t p = strlen(prefix);
    return n >= p && memcmp(s, prefix, p) == 0;
}

/* Lines ending in "\n" (a "\r" before it dropped), one at a time. */
static size_t each_line(struct chat_conn *c, const char *buf, size_t len,
                        void (*line)(struct chat_conn *, const char *, size_t))
{
    size_t used = 0;
    while (used < len && c->state != CHAT_DEAD) {
        const char *nl = memchr(buf + used, '\n', len - used);
        if (!nl)
            break;
        const char *s = buf + used;
        size_t n = (size_t)(nl - s);
        used += n + 1;
        if (n && s[n - 1] == '\r')
            n--;
        line(c, s, n);
    }
    return used;
}

/* ---- percore ---- */

static void percore_handshake(struct chat_conn *c, const char *room)
{
    char buf[64];
    int n = snprintf(buf, sizeof buf, "/join %s\n", room);
    pcb_chat_send(c, buf, (size_t)n);
}

static void percore_line(struct chat_conn *c, const char *s, size_t n)
{
    struct pcb_thread *t = c->m->st->t;
    if (c->state == CHAT_HANDSHAKE) {
        const char *room = room_of(c);
        size_t rl = strlen(room);
        if (n == 8 + rl && starts(s, n, "OK join ") &&
            memcmp(s + 8, room, rl) == 0)
            pcb_chat_joined(c);
        else if (starts(s, n, "ERR"))
            pcb_chat_fail(c, PCB_ERR_PROTOCOL);
        return; /* the greeting and notices */
    }
    if (starts(s, n, "*** ") || starts(s, n, "OK "))
        return;
    const char *colon = n ? memmem(s, n, ": ", 2) : NULL;
    if (!colon || starts(s, n, "ERR")) {
        pcb_error(t, PCB_ERR_PROTOCOL);
        return;
    }
    pcb_chat_deliver(c, colon + 2, n - (size_t)(colon + 2 - s));
}

static size_t percore_parse(struct chat_conn *c, const char *buf, size_t len)
{
    return each_line(c, buf, len, percore_line);
}

static void percore_publish(struct chat_conn *c, const char *room,
                            const char *text, size_t len)
{
    char buf[4200];
    memcpy(buf, text, len);
    buf[len] = '\n';
    pcb_chat_send(c, buf, len + 1);
}

/* ---- redis ---- */

struct resp_item {
    char type; /* + - : $ (bulk) or 0 for a null bulk */
    const char *s;
    size_t len;
    long long n;
};

/* One RESP item at *pos. 1 = complete, 0 = needs more bytes, -1 = bad. */
static int resp_item(const char *buf, size_t len, size_t *pos,
                     struct resp_item *it)
{
    const char *s = buf + *pos;
    const char *end = memmem(s, len - *pos, "\r\n", 2);
    if (!end)
        return 0;
    size_t n = (size_t)(end - s);
    if (n < 1)
        return -1;
    it->type = s[0];
    it->s = s + 1;
    it->len = n - 1;
    it->n = 0;
    size_t next = *pos + n + 2;
    if (s[0] == ':' || s[0] == '$' || s[0] == '*') {
        bool neg = n > 1 && s[1] == '-';
        for (size_t i = 1 + neg; i < n; i++) {
            if (s[i] < '0' || s[i] > '9' || it->n > (1LL << 40))
                return -1;
            it->n = it->n * 10 + (s[i] - '0');
        }
        if (neg)
            it->n = -it->n;
    } else if (s[0] != '+' && s[0] != '-') {
        return -1;
    }
    if (s[0] == '$') {
        if (it->n < 0) {
            it->type = 0;
        } else {
            if (len - next < (size_t)it->n + 2)
                return 0;
            it->s = buf + next;
            it->len = (size_t)it->n;
            next += (size_t)it->n + 2;
        }
    }
    *pos = next;
    return 1;
}

static bool bulk_is(const struct resp_item *it, const char *s)
{
    return it->type == '$' && it->len == strlen(s) &&
           memcmp(it->s, s, it->len) == 0;
}

static void redis_reply(struct chat_conn *c, struct resp_item *items,
                        long long count)
{
    struct pcb_thread *t = c->m->st->t;
    if (items[0].type == '-') {
        pcb_chat_fail(c, PCB_ERR_PROTOCOL);
        return;
    }
    if (c->publisher) { /* +PONG to the handshake, :N to each PUBLISH */
        if (items[0].type == '+' && c->state == CHAT_HANDSHAKE)
            pcb_chat_joined(c);
        else if (items[0].type != ':')
            pcb_error(t, PCB_ERR_PROTOCOL);
        return;
    }
    if (count == 3 && bulk_is(&items[1], "message"))
        pcb_chat_deliver(c, items[3].s, items[3].len);
    else if (count == 3 && bulk_is(&items[1], "subscribe"))
        pcb_chat_joined(c);
    else
        pcb_error(t, PCB_ERR_PROTOCOL);
}

static size_t redis_parse(struct chat_conn *c, const char *buf, size_t len)
{
    size_t used = 0;
    while (used < len && c->state != CHAT_DEAD) {
        struct resp_item items[4]; /* the array header and 3 elements */
        size_t pos = used;
        int r = resp_item(buf, len, &pos, &items[0]);
        long long count = 0;
        if (r == 1 && items[0].type == '*') {
            count = items[0].n;
            if (count < 0 || count > 3) {
                r = -1;
            } else {
                for (long long i = 1; i <= count && r == 1; i++)
                    r = resp_item(buf, len, &pos, &items[i]);
            }
        }
        if (r == 0)
            break;
        if (r < 0) {
            pcb_chat_fail(c, PCB_ERR_PROTOCOL);
            break;
        }
        used = pos;
        redis_reply(c, items, count);
    }
    return used;
}

static void redis_handshake(struct chat_conn *c, const char *room)
{
    char buf[128];
    int n = c->publisher ? snprintf(buf, sizeof buf, "*1\r\n$4\r\nPING\r\n")
                         : snprintf(buf, sizeof buf,
                                    "*2\r\n$9\r\nSUBSCRIBE\r\n$%zu\r\n%s\r\n",
                                    strlen(room), room);
    pcb_chat_send(c, buf, (size_t)n);
}

static void redis_publish(struct chat_conn *c, const char *room,
                          const char *text, size_t len)
{
    char buf[4200];
    int n = snprintf(buf, sizeof buf,
                     "*3\r\n$7\r\nPUBLISH\r\n$%zu\r\n%s\r\n$%zu\r\n",
                     strlen(room), room, len);
    memcpy(buf + n, text, len);
    memcpy(buf + (size_t)n + len, "\r\n", 2);
    pcb_chat_send(c, buf, (size_t)n + len + 2);
}

/* ---- nats ---- */

static void nats_handshake(struct chat_conn *c, const char *room)
{
    char buf[256];
    int n = snprintf(buf, sizeof buf,
                     "CONNECT {\"verbose\":false,\"pedantic\":false,"
                     "\"echo\":true,\"name\":\"percore-bench\"}\r\n"
                     "SUB %s 1\r\nPING\r\n",
                     room);
    pcb_chat_send(c, buf, (size_t)n);
}

/* The payload size: the last field of "MSG subject sid [reply] size". */
static bool nats_msg_size(const char *s, size_t n, size_t *size)
{
    size_t i = n, v = 0, mul = 1;
    while (i > 4 && s[i - 1] >= '0' && s[i - 1] <= '9' && n - i < 10) {
        v += (size_t)(s[i - 1] - '0') * mul;
        mul *= 10;
        i--;
    }
    if (i == n || s[i - 1] != ' ')
        return false;
    *size = v;
    return true;
}

static size_t nats_parse(struct chat_conn *c, const char *buf, size_t len)
{
    struct pcb_thread *t = c->m->st->t;
    size_t used = 0;
    while (used < len && c->state != CHAT_DEAD) {
        const char *s = buf + used;
        const char *end = memmem(s, len - used, "\r\n", 2);
        if (!end)
            break;
        size_t n = (size_t)(end - s), size;
        if (starts(s, n, "MSG ")) {
            if (!nats_msg_size(s, n, &size)) {
                pcb_chat_fail(c, PCB_ERR_PROTOCOL);
                break;
            }
            if (len - used - n - 2 < size + 2)
                break; /* the payload is still on its way */
            pcb_chat_deliver(c, s + n + 2, size);
            used += n + 2 + size + 2;
            continue;
        }
        used += n + 2;
        if (starts(s, n, "PING"))
            pcb_chat_send(c, "PONG\r\n", 6);
        else if (starts(s, n, "PONG"))
            pcb_chat_joined(c);
        else if (starts(s, n, "-ERR"))
            pcb_chat_fail(c, PCB_ERR_PROTOCOL);
        else if (!starts(s, n, "INFO") && !starts(s, n, "+OK"))
            pcb_error(t, PCB_ERR_PROTOCOL);
    }
    return used;
}

static void nats_publish(struct chat_conn *c, const char *room,
                         const char *text, size_t len)
{
    char buf[4200];
    int n = snprintf(buf, sizeof buf, "PUB %s %zu\r\n", room, len);
    memcpy(buf + n, text, len);
    memcpy(buf + (size_t)n + len, "\r\n", 2);
    pcb_chat_send(c, buf, (size_t)n + len + 2);
}

/* ---- irc ---- */

/* A member's nick: "b", this process's id in base 36 (three digits, so
 * that runs one after another against one server do not collide) and the
 * member's number: 9 characters, RFC 2812's limit, up to 100,000 members. */
void pcb_chat_nick(const struct chat_conn *c, char *buf, size_t size)
{
    static const char b36[] = "0123456789abcdefghijklmnopqrstuvwxyz";
    const struct chat_member *m = c->m;
    unsigned index = m->st->t->first + (unsigned)(m - m->st->members);
    unsigned p = (unsigned)getpid() % (36 * 36 * 36);
    snprintf(buf, size, "b%c%c%c%u", b36[p / 1296], b36[p / 36 % 36],
             b36[p % 36], index);
}

/* The first thing a server said that made a member fail or count an
 * error, once per load thread, on stderr: the counters do not say why. */
static void irc_note(struct chat_conn *c, const char *s, size_t n)
{
    static _Thread_local bool noted;
    if (noted)
        return;
    noted = true;
    char nick[24];
    pcb_chat_nick(c, nick, sizeof nick);
    fprintf(stderr, "percore-bench: irc: %s: the server said: %.*s\n", nick,
            (int)(n > 300 ? 300 : n), s);
}

/* The next space-separated word of *s (n bytes left); *s and *n move past
 * it and the spaces after it. */
static size_t irc_word(const char **s, size_t *n, const char **word)
{
    const char *sp = memchr(*s, ' ', *n);
    size_t len = sp ? (size_t)(sp - *s) : *n;
    *word = *s;
    *s += len;
    *n -= len;
    while (*n && **s == ' ') {
        (*s)++;
        (*n)--;
    }
    return len;
}

static bool irc_is(const char *s, size_t n, const char *what)
{
    return n == strlen(what) && memcmp(s, what, n) == 0;
}

/* A channel parameter (":#x" or "#x") against the member's "#ROOM";
 * channel names ignore case. */
static bool irc_our_channel(struct chat_conn *c, const char *s, size_t n)
{
    const char *room = room_of(c);
    size_t rl = strlen(room);
    if (n && s[0] == ':') {
        s++;
        n--;
    }
    return n == rl + 1 && s[0] == '#' && strncasecmp(s + 1, room, rl) == 0;
}

static void irc_numeric(struct chat_conn *c, int code, const char *line,
                        size_t len, const char *s, size_t n)
{
    if (c->state == CHAT_HANDSHAKE && c->step == 0 && code == 1) {
        char buf[64];
        int k = snprintf(buf, sizeof buf, "JOIN #%s\r\n", room_of(c));
        pcb_chat_send(c, buf, (size_t)k);
        c->step = 1;
    } else if (c->state == CHAT_HANDSHAKE && c->step == 1 && code == 366) {
        const char *word;
        irc_word(&s, &n, &word); /* our nick */
        size_t wl = irc_word(&s, &n, &word);
        if (irc_our_channel(c, word, wl))
            pcb_chat_joined(c);
    } else if (code >= 400 && code < 600 && code != 422 /* no MOTD */) {
        irc_note(c, line, len);
        if (c->state == CHAT_HANDSHAKE)
            pcb_chat_fail(c, PCB_ERR_PROTOCOL);
        else
            pcb_error(c->m->st->t, PCB_ERR_PROTOCOL);
    }
}

static void irc_line(struct chat_conn *c, const char *line, size_t len)
{
    const char *s = line, *prefix = NULL, *cmd, *word;
    size_t n = len, plen = 0;
    if (n && s[0] == ':') {
        plen = irc_word(&s, &n, &prefix);
        prefix++;
        plen--;
    }
    size_t cl = irc_word(&s, &n, &cmd);
    if (irc_is(cmd, cl, "PRIVMSG")) {
        size_t wl = irc_word(&s, &n, &word);
        if (!irc_our_channel(c, word, wl) || c->state != CHAT_JOINED) {
            irc_note(c, line, len);
            pcb_error(c->m->st->t, PCB_ERR_PROTOCOL);
            return;
        }
        if (n && s[0] == ':') {
            s++;
            n--;
        }
        pcb_chat_deliver(c, s, n);
    } else if (irc_is(cmd, cl, "PING")) {
        char buf[600];
        if (n > sizeof buf - 7)
            n = sizeof buf - 7;
        memcpy(buf, "PONG ", 5);
        memcpy(buf + 5, s, n);
        memcpy(buf + 5 + n, "\r\n", 2);
        pcb_chat_send(c, buf, n + 7);
    } else if (cl == 3 && cmd[0] >= '0' && cmd[0] <= '9' && cmd[1] >= '0' &&
               cmd[1] <= '9' && cmd[2] >= '0' && cmd[2] <= '9') {
        int code = (cmd[0] - '0') * 100 + (cmd[1] - '0') * 10 + cmd[2] - '0';
        irc_numeric(c, code, line, len, s, n);
    } else if (irc_is(cmd, cl, "JOIN") && c->state == CHAT_HANDSHAKE &&
               c->step == 1) {
        /* the echo of our own (other members' JOINs name their nicks) */
        char nick[24];
        pcb_chat_nick(c, nick, sizeof nick);
        size_t nl = strlen(nick);
        size_t wl = irc_word(&s, &n, &word);
        if (plen > nl && strncasecmp(prefix, nick, nl) == 0 &&
            prefix[nl] == '!' && irc_our_channel(c, word, wl))
            pcb_chat_joined(c);
    } else if (irc_is(cmd, cl, "ERROR")) {
        irc_note(c, line, len); /* the server closes next */
    }
    /* NOTICE, MODE, other members' JOIN, QUIT...: nothing to do */
}

static size_t irc_parse(struct chat_conn *c, const char *buf, size_t len)
{
    return each_line(c, buf, len, irc_line);
}

static void irc_handshake(struct chat_conn *c, const char *room)
{
    char nick[24], buf[96];
    pcb_chat_nick(c, nick, sizeof nick);
    int n = snprintf(buf, sizeof buf, "NICK %s\r\nUSER %s 0 * :bench\r\n", nick,
                     nick);
    c->step = 0;
    pcb_chat_send(c, buf, (size_t)n);
}

static void irc_publish(struct chat_conn *c, const char *room, const char *text,
                        size_t len)
{
    char buf[512];
    int n = snprintf(buf, sizeof buf, "PRIVMSG #%s :", room);
    if ((size_t)n + len + 2 > sizeof buf)
        return; /* the command line keeps --size below this */
    memcpy(buf + n, text, len);
    memcpy(buf + (size_t)n + len, "\r\n", 2);
    pcb_chat_send(c, buf, (size_t)n + len + 2);
}

static const struct chat_dialect dialects[] = {
    [PCB_TARGET_PERCORE] = {"percore", percore_handshake, percore_parse,
                            percore_publish},
    [PCB_TARGET_REDIS] = {"redis", redis_handshake, redis_parse, redis_publish},
    [PCB_TARGET_NATS] = {"nats", nats_handshake, nats_parse, nats_publish},
    [PCB_TARGET_IRC] = {"irc", irc_handshake, irc_parse, irc_publish},
};

const struct chat_dialect *pcb_chat_dialect(enum pcb_target target)
{
    if (target == PCB_TARGET_WEB || target == PCB_TARGET_BROADCAST)
        return pcb_ws_dialect(target);
    return &dialects[target];
}
