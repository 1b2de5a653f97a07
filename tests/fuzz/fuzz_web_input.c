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
 * WebSocket). Then records, each a header byte h: bit 7 picks the client
 * (B if it exists), bits 4-6 the operation, bits 0-3 an argument k:
 *   0-1  write L raw bytes that follow, L = (op << 8) + the next byte, in
 *        pieces of k + 1 bytes when k < 15, else whole
 *   2-3  a frame: the next byte is its first byte (FIN, RSV, opcode), the
 *        one after its payload length n (times 64 if k & 8), then the
 *        payload from the input (padded with 'x'); masked unless k & 4;
 *        written whole if (k & 3) == 3, else in pieces of (k & 3) * 5 + 1
 *   4    read what has come, after waiting up to k * 100 us for it
 *   5    half-close (shutdown SHUT_WR)
 *   6    reset (SO_LINGER 0 and close)
 *   7    pause k * 100 us without reading
 *
 * Checked: every connection is closed in the end and the server's gauge
 * comes back to zero; an HTTP client's output starts with "HTTP/1.1 ";
 * a WebSocket client receives whole server frames only (FIN, unmasked,
 * no RSV, opcode text, close, ping or pong), each text a JSON object in
 * valid UTF-8, nothing after a close frame, and no partial frame unless
 * the connection was reset. Sanitizers watch the server's threads too. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/config.h"
#include "core/log.h"
#include "core/server.h"
#include "tests/fuzz/fuzz.h"

#define DEADLINE 10.0
#define OUT_CAP (1 << 20)
#define STEP_NS 100000L
#define WAIT_BUDGET 100

static struct pc_server srv;
static struct sockaddr_in web_addr;
static unsigned budget;

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    pc_log_init();
    signal(SIGPIPE, SIG_IGN);
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
    struct pc_config *cfg = malloc(sizeof *cfg);
    char err[PC_ERR_MAX];
    CHECK(cfg);
    if (pc_config_load(cfg, NULL, &ov, err, sizeof err) < 0) {
        fprintf(stderr, "fuzz_web_input: %s\n", err);
        abort();
    }
    CHECK(pc_server_start(&srv, cfg) == 0);
    const char *colon = strrchr(srv.listeners[0].bound, ':');
    CHECK(colon);
    web_addr.sin_family = AF_INET;
    web_addr.sin_port = htons((uint16_t)atoi(colon + 1));
    web_addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return 0;
}

/* ---- a client -------------------------------------------------------- */

struct client {
    int fd;
    bool ws;           /* upgraded: output is frames */
    bool write_closed, reset, eof, aborted, closed_frame;
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

static void take(struct client *c, const char *data, size_t n)
{
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

static bool drain(struct client *c)
{
    if (c->fd < 0 || c->eof)
        return false;
    char buf[16384];
    for (;;) {
        ssize_t r = recv(c->fd, buf, sizeof buf, MSG_DONTWAIT);
        if (r > 0) {
            take(c, buf, (size_t)r);
            continue;
        }
        if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
            c->aborted = r < 0;
            c->eof = true;
            return false;
        }
        return true;
    }
}

static unsigned spend(unsigned steps)
{
    if (steps > budget)
        steps = budget;
    budget -= steps;
    return steps;
}

static void send_bytes(struct client *all, unsigned n, struct client *c,
                       const uint8_t *d, size_t len)
{
    double deadline = now() + DEADLINE;
    while (len && !c->write_closed && c->fd >= 0) {
        ssize_t w = send(c->fd, d, len, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (w > 0) {
            d += w;
            len -= (size_t)w;
            continue;
        }
        if (w < 0 && errno != EAGAIN && errno != EINTR) {
            c->write_closed = true;
            return;
        }
        CHECK(now() < deadline);
        for (unsigned i = 0; i < n; i++)
            drain(&all[i]);
        struct pollfd p = {.fd = c->fd, .events = POLLOUT};
        (void)poll(&p, 1, 5);
    }
}

static void send_pieces(struct client *all, unsigned n, struct client *c,
                        const uint8_t *d, size_t len, size_t piece)
{
    for (size_t off = 0; off < len; off += piece)
        send_bytes(all, n, c, d + off, len - off < piece ? len - off : piece);
}

/* The harness's own handshake, so that inputs start inside WebSocket. */
static void handshake(struct client *c)
{
    static const char req[] =
        "GET /chat HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n";
    CHECK(send(c->fd, req, sizeof req - 1, MSG_NOSIGNAL) ==
          (ssize_t)(sizeof req - 1));
    char head[512];
    size_t got = 0;
    double deadline = now() + DEADLINE;
    while (got < 4 || memcmp(head + got - 4, "\r\n\r\n", 4) != 0) {
        CHECK(now() < deadline && got < sizeof head);
        struct pollfd p = {.fd = c->fd, .events = POLLIN};
        (void)poll(&p, 1, 50);
        ssize_t r = recv(c->fd, head + got, 1, MSG_DONTWAIT);
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
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(c->fd >= 0);
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    CHECK(connect(c->fd, (const struct sockaddr *)&web_addr,
                  sizeof web_addr) == 0);
    if (ws)
        handshake(c);
}

static void client_reset(struct client *c)
{
    if (c->fd < 0)
        return;
    struct linger l = {.l_onoff = 1, .l_linger = 0};
    setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    close(c->fd);
    c->fd = -1;
    c->reset = true;
}

static void finish(struct client *all, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        if (all[i].fd >= 0 && !all[i].write_closed) {
            shutdown(all[i].fd, SHUT_WR);
            all[i].write_closed = true;
        }
    double deadline = now() + DEADLINE;
    for (;;) {
        struct pollfd p[2];
        nfds_t k = 0;
        for (unsigned i = 0; i < n; i++)
            if (drain(&all[i]))
                p[k++] = (struct pollfd){.fd = all[i].fd, .events = POLLIN};
        if (k == 0)
            break;
        (void)poll(p, k, 50);
        if (now() > deadline) {
            fprintf(stderr, "a half-closed connection was not closed\n");
            abort();
        }
    }
    for (unsigned i = 0; i < n; i++) {
        struct client *c = &all[i];
        if (c->fd >= 0 && c->ws && !c->aborted)
            CHECK(c->len == 0); /* whole frames only */
        if (c->fd >= 0)
            close(c->fd);
        free(c->out);
    }
    deadline = now() + DEADLINE;
    while (atomic_load(&srv.connections) != 0) {
        if (now() > deadline) {
            fprintf(stderr, "connections left after every client went\n");
            abort();
        }
        struct timespec t = {0, 20000};
        nanosleep(&t, NULL);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 16384)
        return 0;
    unsigned n = data[0] & 2 ? 2 : 1;
    budget = WAIT_BUDGET;
    struct client cl[2];
    client_open(&cl[0], data[0] & 1);
    if (n == 2)
        client_open(&cl[1], data[0] & 4);
    uint8_t *frame = malloc(16384 + 14);
    CHECK(frame);
    size_t i = 1;
    while (i < size) {
        uint8_t h = data[i++];
        struct client *c = &cl[(h & 0x80) && n == 2 ? 1 : 0];
        unsigned op = (h >> 4) & 7, k = h & 15;
        if (op <= 1) {
            size_t len = (size_t)op << 8;
            if (i < size)
                len += data[i++];
            if (len > size - i)
                len = size - i;
            send_pieces(cl, n, c, data + i, len, k < 15 ? k + 1 : len + 1);
            i += len;
        } else if (op == 2 || op == 3) {
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
            send_pieces(cl, n, c, frame, at + plen, piece);
        } else if (op == 4) {
            unsigned steps = spend(k);
            if (steps && c->fd >= 0 && !c->eof) {
                struct pollfd p = {.fd = c->fd, .events = POLLIN};
                struct timespec t = {0, (long)steps * STEP_NS};
                (void)ppoll(&p, 1, &t, NULL);
            }
            drain(c);
        } else if (op == 5) {
            if (c->fd >= 0 && !c->write_closed) {
                shutdown(c->fd, SHUT_WR);
                c->write_closed = true;
            }
        } else if (op == 6) {
            client_reset(c);
        } else {
            unsigned steps = spend(k);
            struct timespec t = {0, (long)steps * STEP_NS};
            if (steps)
                nanosleep(&t, NULL);
        }
    }
    free(frame);
    finish(cl, n);
    return 0;
}
