/* ws mode: chat mode's rooms, senders and measurements (chat.c) over
 * WebSocket (RFC 6455). These are its two dialects:
 *  web        percored's web face (docs/protocols/web.md): after the
 *             upgrade, {"type":"nick"} and {"type":"join"}; joined at the
 *             "ok" for the join; a line is {"type":"say","room","text"}
 *             and arrives as a "say" event carrying the same text
 *  broadcast  a server that sends every text message to every client
 *             (bench/baselines/ws_broadcast.js): joined once upgraded; a
 *             line is the text itself, and arrives as is
 *
 * The client side of the protocol, as a browser does it: a random
 * Sec-WebSocket-Key per connection and its Sec-WebSocket-Accept checked,
 * every frame masked with a fresh key, server frames required unmasked,
 * pings answered. The server's messages here are small and unfragmented
 * (percored frames each event whole; ws sends each message in one frame),
 * so a fragment is counted a protocol error rather than reassembled. */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include <openssl/evp.h>

#include "chat.h"

#define WS_GUID     "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define WS_PATH     "/chat"
#define WS_MAX_HEAD 8192
/* The largest frame sent: a line's text (at most 4000 bytes, args.c) in
 * its JSON, and the frame header. */
#define WS_MAX_FRAME 4400

/* Mask keys: RFC 6455 wants them unpredictable to scripts in a browser,
 * to defeat cache poisoning through proxies; a load generator on loopback
 * has no such attacker, and getrandom() per frame would be a syscall per
 * line. xorshift64, seeded from getrandom() once per thread. */
static _Thread_local uint64_t mask_state;

static uint32_t next_mask(void)
{
    if (!mask_state) {
        if (getrandom(&mask_state, sizeof mask_state, 0) !=
                sizeof mask_state ||
            !mask_state)
            mask_state = pcb_now_ns() | 1;
    }
    mask_state ^= mask_state << 13;
    mask_state ^= mask_state >> 7;
    mask_state ^= mask_state << 17;
    return (uint32_t)(mask_state >> 16);
}

static struct pcb_thread *thread_of(const struct chat_conn *c)
{
    return c->m->st->t;
}

/* The first refusal or error a server sent, once per load thread: the
 * counters do not say why, and a thousand members would say it a
 * thousand times. */
static void note(const char *what, const char *s, size_t n)
{
    static _Thread_local bool noted;
    if (noted)
        return;
    noted = true;
    fprintf(stderr, "percore-bench: ws: the server %s: %.*s\n", what,
            (int)(n > 300 ? 300 : n), s);
}

/* One masked client frame of `opcode` holding payload (n bytes). */
static void send_frame(struct chat_conn *c, unsigned opcode,
                       const char *payload, size_t n)
{
    unsigned char buf[WS_MAX_FRAME + 14];
    size_t h = 0;
    if (n > WS_MAX_FRAME)
        return; /* args.c keeps lines below this */
    buf[h++] = (unsigned char)(0x80 | opcode); /* FIN: never fragmented */
    if (n < 126) {
        buf[h++] = (unsigned char)(0x80 | n);
    } else {
        buf[h++] = 0x80 | 126;
        buf[h++] = (unsigned char)(n >> 8);
        buf[h++] = (unsigned char)n;
    }
    uint32_t key = next_mask();
    unsigned char mask[4] = {(unsigned char)(key >> 24),
                             (unsigned char)(key >> 16),
                             (unsigned char)(key >> 8), (unsigned char)key};
    memcpy(buf + h, mask, 4);
    h += 4;
    for (size_t i = 0; i < n; i++)
        buf[h + i] = (unsigned char)payload[i] ^ mask[i & 3];
    pcb_chat_send(c, (const char *)buf, h + n);
}

/* ---- the opening handshake ---- */

/* base64(SHA-1(key GUID)): what the server must answer to `key`. */
static int accept_of(const char *key, char *out, size_t size)
{
    char in[64];
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    int n = snprintf(in, sizeof in, "%s%s", key, WS_GUID);
    if (n < 0 || (size_t)n >= sizeof in ||
        !EVP_Digest(in, (size_t)n, md, &mdlen, EVP_sha1(), NULL) ||
        size < 4 * ((mdlen + 2) / 3) + 1)
        return -1;
    EVP_EncodeBlock((unsigned char *)out, md, (int)mdlen);
    return 0;
}

static void ws_handshake(struct chat_conn *c, const char *room)
{
    (void)room; /* joined after the upgrade */
    const struct pcb_config *cfg = thread_of(c)->cfg;
    unsigned char raw[16];
    char key[32], req[512];
    if (getrandom(raw, sizeof raw, 0) != sizeof raw) {
        pcb_chat_fail(c, PCB_ERR_CONNECT);
        return;
    }
    EVP_EncodeBlock((unsigned char *)key, raw, sizeof raw);
    if (accept_of(key, c->ws_accept, sizeof c->ws_accept) < 0) {
        pcb_chat_fail(c, PCB_ERR_CONNECT);
        return;
    }
    const struct pcb_addr *a = &cfg->addr[0]; /* the name, not the route */
    bool v6 = strchr(a->host, ':') != NULL;
    int n = snprintf(req, sizeof req,
                     "GET " WS_PATH " HTTP/1.1\r\n"
                     "Host: %s%s%s:%s\r\n"
                     "Upgrade: websocket\r\n"
                     "Connection: Upgrade\r\n"
                     "Sec-WebSocket-Key: %s\r\n"
                     "Sec-WebSocket-Version: 13\r\n\r\n",
                     v6 ? "[" : "", a->host, v6 ? "]" : "", a->port, key);
    c->step = 0;
    pcb_chat_send(c, req, (size_t)n);
}

/* A header's value in a response head (names ignore case), or NULL. */
static const char *header(const char *head, size_t len, const char *name,
                          size_t *vlen)
{
    size_t nl = strlen(name);
    const char *p = memchr(head, '\n', len);
    while (p && (size_t)(p + 1 - head) + nl + 1 < len) {
        const char *line = p + 1;
        const char *end = memchr(line, '\n', len - (size_t)(line - head));
        if (!end)
            return NULL;
        if (strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
            const char *v = line + nl + 1;
            while (v < end && (*v == ' ' || *v == '\t'))
                v++;
            const char *e = end;
            while (e > v && (e[-1] == '\r' || e[-1] == ' '))
                e--;
            *vlen = (size_t)(e - v);
            return v;
        }
        p = end;
    }
    return NULL;
}

static void upgraded(struct chat_conn *c)
{
    c->step = 1;
    if (c->m->st->dialect != pcb_ws_dialect(PCB_TARGET_WEB)) {
        pcb_chat_joined(c); /* the broadcast room is everyone */
        return;
    }
    /* Answered in order (docs/protocols/web.md), so both go at once and
     * the join's "ok" says both worked. */
    char nick[24], msg[128];
    pcb_chat_nick(c, nick, sizeof nick);
    int n = snprintf(msg, sizeof msg, "{\"type\":\"nick\",\"nick\":\"%s\"}",
                     nick);
    send_frame(c, 1, msg, (size_t)n);
    n = snprintf(msg, sizeof msg, "{\"type\":\"join\",\"room\":\"%s\"}",
                 c->m->st->room_names[c->m->room]);
    send_frame(c, 1, msg, (size_t)n);
}

/* The server's 101: bytes used, 0 for more, or the connection failed. */
static size_t response_head(struct chat_conn *c, const char *buf, size_t len)
{
    const char *end = memmem(buf, len, "\r\n\r\n", 4);
    if (!end) {
        if (len > WS_MAX_HEAD)
            pcb_chat_fail(c, PCB_ERR_PROTOCOL);
        return 0;
    }
    size_t head = (size_t)(end - buf) + 4, vlen = 0;
    const char *accept = header(buf, head, "Sec-WebSocket-Accept", &vlen);
    if (head < 12 || memcmp(buf, "HTTP/1.1 101", 12) != 0 || !accept ||
        vlen != strlen(c->ws_accept) ||
        memcmp(accept, c->ws_accept, vlen) != 0) {
        const char *cr = memchr(buf, '\r', head);
        note("refused the upgrade", buf, (size_t)(cr - buf));
        pcb_chat_fail(c, PCB_ERR_PROTOCOL);
        return head;
    }
    upgraded(c);
    return head;
}

/* ---- messages ---- */

/* The string value of "name":"..." in a flat JSON object, unescaped as it
 * stands: the values read here (types, our own lines) have no escapes. */
static const char *json_string(const char *s, size_t n, const char *name,
                               size_t *vlen)
{
    char key[32];
    int kl = snprintf(key, sizeof key, "\"%s\":\"", name);
    const char *v = memmem(s, n, key, (size_t)kl);
    if (!v)
        return NULL;
    v += kl;
    const char *e = memchr(v, '"', n - (size_t)(v - s));
    if (!e)
        return NULL;
    *vlen = (size_t)(e - v);
    return v;
}

static bool is(const char *s, size_t n, const char *what)
{
    return s && n == strlen(what) && memcmp(s, what, n) == 0;
}

static void web_message(struct chat_conn *c, const char *s, size_t n)
{
    size_t tl = 0, vl = 0;
    const char *type = json_string(s, n, "type", &tl);
    if (is(type, tl, "say")) {
        const char *text = json_string(s, n, "text", &vl);
        if (!text || c->state != CHAT_JOINED)
            pcb_error(thread_of(c), PCB_ERR_PROTOCOL);
        else
            pcb_chat_deliver(c, text, vl);
    } else if (is(type, tl, "ok")) {
        const char *what = json_string(s, n, "for", &vl);
        if (is(what, vl, "join") && c->state == CHAT_HANDSHAKE)
            pcb_chat_joined(c);
    } else if (is(type, tl, "error")) {
        note("said", s, n);
        if (c->state == CHAT_HANDSHAKE)
            pcb_chat_fail(c, PCB_ERR_PROTOCOL);
        else
            pcb_error(thread_of(c), PCB_ERR_PROTOCOL);
    }
    /* welcome, and the room's join, part, quit...: nothing to do */
}

static void broadcast_message(struct chat_conn *c, const char *s, size_t n)
{
    pcb_chat_deliver(c, s, n);
}

/* Every complete frame in buf, after the 101; returns the bytes used. */
static size_t frames(struct chat_conn *c, const char *buf, size_t len,
                     void (*message)(struct chat_conn *, const char *, size_t))
{
    const unsigned char *b = (const unsigned char *)buf;
    size_t used = 0;
    while (c->state != CHAT_DEAD && len - used >= 2) {
        const unsigned char *f = b + used;
        size_t avail = len - used, h = 2;
        uint64_t n = f[1] & 0x7f;
        if (n == 126) {
            if (avail < 4)
                break;
            n = (uint64_t)f[2] << 8 | f[3];
            h = 4;
        } else if (n == 127) {
            if (avail < 10)
                break;
            n = 0;
            for (int i = 0; i < 8; i++)
                n = n << 8 | f[2 + i];
            h = 10;
        }
        /* A server must not mask, nor set reserved bits without an
         * extension (none was offered); chat.c's 1 MiB bound on a frame
         * cut in two holds it. */
        if ((f[1] & 0x80) || (f[0] & 0x70) || n > (1u << 20)) {
            pcb_chat_fail(c, PCB_ERR_PROTOCOL);
            break;
        }
        if (avail - h < n)
            break;
        const char *payload = buf + used + h;
        used += h + (size_t)n;
        unsigned opcode = f[0] & 0x0f;
        bool fin = f[0] & 0x80;
        if (opcode == 1 && fin) {
            message(c, payload, (size_t)n);
        } else if (opcode == 9) {
            send_frame(c, 10, payload, (size_t)n); /* ping: its pong */
        } else if (opcode == 8) {
            pcb_chat_fail(c, PCB_ERR_CLOSED); /* the server closes */
        } else if (opcode != 10) {
            pcb_chat_fail(c, PCB_ERR_PROTOCOL); /* binary, fragments */
        }
    }
    return used;
}

static size_t ws_parse(struct chat_conn *c, const char *buf, size_t len,
                       void (*message)(struct chat_conn *, const char *,
                                       size_t))
{
    size_t used = 0;
    if (c->step == 0) {
        used = response_head(c, buf, len);
        if (c->step == 0 || c->state == CHAT_DEAD)
            return used;
    }
    return used + frames(c, buf + used, len - used, message);
}

static size_t web_parse(struct chat_conn *c, const char *buf, size_t len)
{
    return ws_parse(c, buf, len, web_message);
}

static size_t broadcast_parse(struct chat_conn *c, const char *buf,
                              size_t len)
{
    return ws_parse(c, buf, len, broadcast_message);
}

static void web_publish(struct chat_conn *c, const char *room,
                        const char *text, size_t len)
{
    char msg[WS_MAX_FRAME];
    int n = snprintf(msg, sizeof msg,
                     "{\"type\":\"say\",\"room\":\"%s\",\"text\":\"%.*s\"}",
                     room, (int)len, text);
    if (n > 0 && (size_t)n < sizeof msg)
        send_frame(c, 1, msg, (size_t)n);
}

static void broadcast_publish(struct chat_conn *c, const char *room,
                              const char *text, size_t len)
{
    (void)room; /* one room: every client */
    send_frame(c, 1, text, len);
}

static const struct chat_dialect web = {"web", ws_handshake, web_parse,
                                        web_publish};
static const struct chat_dialect broadcast = {
    "broadcast", ws_handshake, broadcast_parse, broadcast_publish};

const struct chat_dialect *pcb_ws_dialect(enum pcb_target target)
{
    return target == PCB_TARGET_WEB ? &web : &broadcast;
}
