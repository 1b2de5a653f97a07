/* The web face's input path through the real framework, as
 * fuzz_conn_input does for chat and irc: a percored started in this
 * process (two workers, the acceptor, a web listener and a chat listener
 * sharing the room core), and per input one or two TCP clients that send
 * HTTP heads and WebSocket frames with the input's split points, pauses,
 * half-closes and resets. Nothing is faked: http_parser, wslay, jansson,
 * the room core's messages between workers and the output queue's cuts
 * all run.
 *
 * Input: byte 0 picks the clients (bit 0: A speaks WebSocket, the
 * harness doing its handshake first; bit 1: B exists; bit 2: B speaks
 * WebSocket). Then the records of fuzz_conn.h (server, clients and record
 * loop shared with fuzz_conn_input), operations 0-3 these:
 *   0-1  write L raw bytes that follow, L = (op << 8) + the next byte, in
 *        pieces of k + 1 bytes when k < 15, else whole (fuzz_raw_write)
 *   2-3  a frame: the next byte is its first byte (FIN, RSV, opcode), the
 *        one after its payload length n (times 64 if k & 8), then the
 *        payload from the input (padded with 'x'); masked unless k & 4;
 *        written whole if (k & 3) == 3, else in pieces of (k & 3) * 5 + 1
 *
 * Checked: every connection is closed in the end and the server's gauge
 * comes back to zero; an HTTP client's output starts with "HTTP/1.1 ";
 * a WebSocket client receives whole server frames only (FIN, unmasked,
 * no RSV, opcode text, close, ping or pong), each text a JSON object in
 * valid UTF-8, nothing after a close frame, and no partial frame unless
 * the connection was reset. Sanitizers watch the server's threads too. */
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "tests/fuzz/fuzz.h"
#include "tests/fuzz/fuzz_conn.h"

#define OUT_CAP (1 << 20)

static struct sockaddr_in web_addr;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    /* Small sendq, socket buffer and message size, so that short inputs
     * reach cuts (1008) and 1009; no flood control (it only delays). */
    static struct pc_config_overrides ov = {
        .listen = {"web=web@127.0.0.1:0", "chat=chat@127.0.0.1:0"},
        .nlisten = 2,
        .set = {"server.workers=2", "server.distribution=acceptor",
                "server.log_level=err", "web.flood_rate=0", "web.sendq=8K",
                "web.sndbuf=4096", "web.max_message=2K", "web.max_head=1K",
                "web.max_uri=256", "web.max_body=1K"},
        .nset = 10,
    };
    fuzz_server_start("fuzz_web_input", &ov);
    fuzz_listener_addr(0, &web_addr);
    return 0;
}

/* ---- a client -------------------------------------------------------- */

struct client {
    struct fuzz_client base; /* first: take() casts back */
    bool ws;                 /* upgraded: output is frames */
    bool closed_frame;
    bool status_seen;   /* the first response's status line checked */
    unsigned char *out; /* output not yet checked */
    size_t len, total;
};

static bool utf8_valid(const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        unsigned c = s[i], len, cp, min;
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf)
            len = 2, cp = c & 0x1f, min = 0x80;
        else if (c >= 0xe0 && c <= 0xef)
            len = 3, cp = c & 0x0f, min = 0x800;
        else if (c >= 0xf0 && c <= 0xf4)
            len = 4, cp = c & 0x07, min = 0x10000;
        else
            return false;
        if (n - i < len)
            return false;
        for (unsigned k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (s[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += len;
    }
    return true;
}

/* Checks the whole frames at the front of c->out and drops them. */
static void check_frames(struct client *c)
{
    size_t off = 0;
    while (c->len - off >= 2) {
        const unsigned char *f = c->out + off;
        CHECK(!c->closed_frame); /* nothing after a close */
        CHECK((f[0] & 0xf0) == 0x80); /* FIN, no RSV */
        unsigned op = f[0] & 0x0f;
        CHECK(op == 1 || op == 8 || op == 9 || op == 10);
        CHECK(!(f[1] & 0x80)); /* never masked */
        size_t head = 2, n = f[1] & 0x7f;
        if (n == 126) {
            if (c->len - off < 4)
                break;
            n = (size_t)f[2] << 8 | f[3];
            head = 4;
        } else if (n == 127) {
            if (c->len - off < 10)
                break;
            n = 0;
            for (int i = 0; i < 8; i++)
                n = n << 8 | f[2 + i];
            head = 10;
        }
        CHECK(n < OUT_CAP);
        if (c->len - off < head + n)
            break;
        if (op == 1) {
            CHECK(n >= 2 && f[head] == '{' && f[head + n - 1] == '}');
            CHECK(utf8_valid(f + head, n));
        } else {
            CHECK(n <= 125);
        }
        if (op == 8)
            c->closed_frame = true;
        off += head + n;
    }
    memmove(c->out, c->out + off, c->len - off);
    c->len -= off;
}

static void take(struct fuzz_client *base, const char *data, size_t n)
{
    struct client *c = (struct client *)base;
    c->total += n;
    if (!c->ws && c->status_seen)
        return; /* responses after the first are not followed */
    CHECK(c->len + n <= OUT_CAP);
    memcpy(c->out + c->len, data, n);
    c->len += n;
    if (!c->ws && c->len >= 9) {
        CHECK(memcmp(c->out, "HTTP/1.1 ", 9) == 0);
        c->status_seen = true;
        c->len = 0;
    }
    if (c->ws)
        check_frames(c);
}

/* The harness's own handshake, so that inputs start inside WebSocket. */
static void handshake(struct client *c)
{
    static const char req[] =
        "GET /chat HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n";
    CHECK(send(c->base.fd, req, sizeof req - 1, MSG_NOSIGNAL) ==
          (ssize_t)(sizeof req - 1));
    char head[512];
    size_t got = 0;
    double deadline = fuzz_now() + FUZZ_DEADLINE;
    while (got < 4 || memcmp(head + got - 4, "\r\n\r\n", 4) != 0) {
        CHECK(fuzz_now() < deadline && got < sizeof head);
        struct pollfd p = {.fd = c->base.fd, .events = POLLIN};
        (void)poll(&p, 1, 50);
        ssize_t r = recv(c->base.fd, head + got, 1, MSG_DONTWAIT);
        if (r == 1)
            got++;
        else
            CHECK(r < 0 && (errno == EAGAIN || errno == EINTR));
    }
    CHECK(memcmp(head, "HTTP/1.1 101 ", 13) == 0);
    c->ws = true;
}

static void client_open(struct client *c, bool ws)
{
    memset(c, 0, sizeof *c);
    c->out = malloc(OUT_CAP);
    CHECK(c->out);
    c->base.take = take;
    fuzz_client_connect(&c->base, &web_addr);
    if (ws)
        handshake(c);
}

/* Operations 0-3: raw bytes, or a frame built from the input. */
static size_t write_op(struct fuzz_session *s, struct fuzz_client *c,
                       unsigned op, unsigned k, const uint8_t *data,
                       size_t size, size_t i)
{
    if (op <= 1)
        return fuzz_raw_write(s, c, op, k, data, size, i);
    static uint8_t frame[14 + 255 * 64]; /* head, mask, longest payload */
    uint8_t b0 = i < size ? data[i++] : 0x81;
    size_t plen = i < size ? data[i++] : 0;
    if (k & 8)
        plen *= 64;
    bool mask = !(k & 4);
    size_t hl = plen < 126 ? 2 : plen < 65536 ? 4 : 10;
    frame[0] = b0;
    frame[1] = (uint8_t)((mask ? 0x80 : 0) |
                         (hl == 2 ? plen : hl == 4 ? 126 : 127));
    if (hl == 4) {
        frame[2] = (uint8_t)(plen >> 8);
        frame[3] = (uint8_t)plen;
    }
    static const uint8_t key[4] = {0x37, 0xfa, 0x21, 0x3d};
    if (mask)
        memcpy(frame + hl, key, 4);
    size_t at = hl + (mask ? 4 : 0);
    for (size_t j = 0; j < plen; j++) {
        uint8_t b = i < size ? data[i++] : 'x';
        frame[at + j] = mask ? b ^ key[j & 3] : b;
    }
    size_t piece = (k & 3) == 3 ? at + plen + 1 : (k & 3) * 5 + 1;
    fuzz_send_pieces(s, c, frame, at + plen, piece);
    return i;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 16384)
        return 0;
    struct client cl[2];
    struct fuzz_session s = {.clients = {&cl[0].base, &cl[1].base},
                             .n = data[0] & 2 ? 2 : 1};
    client_open(&cl[0], data[0] & 1);
    if (s.n == 2)
        client_open(&cl[1], data[0] & 4);
    fuzz_run_records(&s, data, size, 1, write_op);
    fuzz_finish(&s);
    for (unsigned i = 0; i < s.n; i++) {
        struct client *c = &cl[i];
        if (c->base.fd >= 0 && c->ws && !c->base.aborted)
            CHECK(c->len == 0); /* whole frames only */
        fuzz_client_close(&c->base);
        free(c->out);
    }
    fuzz_wait_no_connections();
    return 0;
}
