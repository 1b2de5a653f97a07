/* Connection input through the real framework: a percored started in
 * this process (pc_config_load, pc_server_start: two worker threads, the
 * acceptor, a chat and an irc listener on loopback ports the kernel
 * picks), and, per input, one or two TCP clients that send the input's
 * bytes with its split points, pauses, half-closes and resets. Nothing of
 * percore is faked: the bytes go through accept, the worker's read
 * buffer, the face's on_data, the room core's messages between the
 * workers, the output queue and its cuts.
 *
 * Input: byte 0 picks the clients (bit 0: A is irc, else chat; bit 1: B
 * is irc; bit 2: B exists). Then records, each a header byte h: bit 7
 * picks the client (B if it exists), bits 4-6 the operation, bits 0-3 an
 * argument k:
 *   0-3  write L bytes that follow, L = (op << 8) + the next byte; in
 *        pieces of k + 1 bytes when k < 15 (one write each), else whole
 *   4    read what has come, after waiting up to k * 100 us for it
 *   5    half-close (shutdown SHUT_WR): the server must finish and close
 *   6    reset: SO_LINGER 0 and close, an RST for the server
 *   7    pause k * 100 us without reading
 * (the pauses and waits of one input add up to 10 ms at most).
 * At the end the clients read until the server is quiet for 1 ms, then
 * every client still open half-closes and reads to the end.
 *
 * Checked: the server closes every connection it was left with, within a
 * deadline, and its connection gauge comes back to zero (nothing held for
 * a gone client); what a chat client receives starts with the welcome and
 * is whole lines of valid UTF-8 without control characters or '\r'
 * (docs/protocols/chat.md); what an irc client receives is lines of at
 * most 512 bytes ending in CR LF, with no NUL, CR or LF inside
 * (docs/protocols/irc.md). Sanitizers watch the server's threads too. */
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
#include "protocols/chat/line.h"
#include "tests/fuzz/fuzz.h"

/* Sanitized threads on two shared cores are slow: generous, still far
 * below the fuzzer's -timeout. */
#define CLOSE_DEADLINE 10.0
#define LINE_CAP       (1 << 20)

static struct pc_server srv;
static struct sockaddr_in addr[2]; /* chat, irc */

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void port_of(unsigned listener, struct sockaddr_in *a)
{
    const char *bound = srv.listeners[listener].bound;
    const char *colon = strrchr(bound, ':');
    CHECK(colon);
    memset(a, 0, sizeof *a);
    a->sin_family = AF_INET;
    a->sin_port = htons((uint16_t)atoi(colon + 1));
    a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    pc_log_init();
    signal(SIGPIPE, SIG_IGN);
    /* Two workers, so rooms and nicks live on one and members on the
     * other; the acceptor deals the clients round-robin. No flood
     * control (it only delays), small line, sendq and socket buffers so
     * that short inputs reach the long-line and slow-reader paths. */
    static struct pc_config_overrides ov = {
        .listen = {"chat=chat@127.0.0.1:0", "irc=irc@127.0.0.1:0"},
        .nlisten = 2,
        .set = {"server.workers=2", "server.distribution=acceptor",
                "server.log_level=err", "chat.flood_rate=0", "irc.flood_rate=0",
                "chat.max_line=200", "chat.sendq=4096", "irc.sendq=4096",
                "chat.sndbuf=4096", "irc.sndbuf=4096"},
        .nset = 10,
    };
    struct pc_config *cfg = malloc(sizeof *cfg);
    char err[PC_ERR_MAX];
    CHECK(cfg);
    if (pc_config_load(cfg, NULL, &ov, err, sizeof err) < 0) {
        fprintf(stderr, "fuzz_conn_input: %s\n", err);
        abort();
    }
    CHECK(pc_server_start(&srv, cfg) == 0);
    port_of(0, &addr[0]);
    port_of(1, &addr[1]);
    /* The server runs until the process exits; its memory stays
     * reachable from srv, so the exit-time leak check is quiet about it
     * and loud about anything a connection lost. */
    return 0;
}

/* ---- one client ------------------------------------------------------ */

struct client {
    int fd;
    bool irc;
    bool write_closed; /* by us, or the server went away */
    bool reset;        /* we reset it: its output is not checked */
    bool eof;
    bool aborted;    /* the server reset it (closed with input unread) */
    size_t received; /* bytes */
    size_t lines;
    char *line; /* the unfinished line */
    size_t len;
    struct client *first; /* client A, for PC_FUZZ_VERBOSE */
};

static void check_line(struct client *c, const char *s, size_t n)
{
    /* PC_FUZZ_VERBOSE=1 shows the conversation when reproducing. */
    static int verbose = -1;
    if (verbose < 0)
        verbose = getenv("PC_FUZZ_VERBOSE") != NULL;
    if (verbose)
        fprintf(stderr, "%s %c| %.*s", c->irc ? "irc " : "chat",
                c == c->first ? 'A' : 'B', (int)n, s);
    if (c->irc) {
        /* n counts the '\n'. */
        CHECK(n >= 3 && n <= 512);
        CHECK(s[n - 2] == '\r' && s[n - 1] == '\n');
        CHECK(!memchr(s, '\0', n - 2) && !memchr(s, '\r', n - 2));
    } else {
        CHECK(!memchr(s, '\r', n - 1));
        enum chat_text_check t = chat_text_check(s, n - 1);
        if (t != CHAT_TEXT_OK) {
            fprintf(stderr, "chat line: %.*s\n", (int)n, s);
            CHECK(!"chat output is valid UTF-8 without controls");
        }
        if (c->lines == 0) {
            static const char welcome[] = "*** welcome to percore chat, ";
            CHECK(n > sizeof welcome - 1 &&
                  memcmp(s, welcome, sizeof welcome - 1) == 0);
        }
    }
    c->lines++;
}

static void take(struct client *c, const char *data, size_t n)
{
    c->received += n;
    while (n) {
        const char *nl = memchr(data, '\n', n);
        size_t part = nl ? (size_t)(nl - data) + 1 : n;
        CHECK(c->len + part <= LINE_CAP);
        if (c->len + part > 0) {
            char *grown = realloc(c->line, c->len + part);
            CHECK(grown);
            c->line = grown;
        }
        memcpy(c->line + c->len, data, part);
        c->len += part;
        if (nl) {
            check_line(c, c->line, c->len);
            c->len = 0;
        }
        data += part;
        n -= part;
    }
}

/* Reads what is there; false once the server has closed. */
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
            /* ECONNRESET: the server closed with our input unread (after
             * a quit), and the kernel sent an RST, which may drop output
             * still in flight: nothing to hold against the server. */
            c->aborted = r < 0;
            c->eof = true;
            return false;
        }
        return true;
    }
}

/* Pauses are counted in steps of 100 us: long enough for the server to
 * take what was sent in a read of its own, short enough to run hundreds
 * of inputs a second. */
#define STEP_NS 100000L

/* What one input may spend in pauses and waits, so that a long one of
 * random records still runs in milliseconds. */
#define WAIT_BUDGET 100
static unsigned budget;

static unsigned spend(unsigned steps)
{
    if (steps > budget)
        steps = budget;
    budget -= steps;
    return steps;
}

static void wait_readable(struct client *c, unsigned steps)
{
    if (c->fd < 0 || c->eof || (steps = spend(steps)) == 0)
        return;
    struct pollfd p = {.fd = c->fd, .events = POLLIN};
    struct timespec t = {0, (long)steps * STEP_NS};
    (void)ppoll(&p, 1, &t, NULL);
}

static void pause_steps(unsigned steps)
{
    if ((steps = spend(steps)) == 0)
        return;
    struct timespec t = {0, (long)steps * STEP_NS};
    nanosleep(&t, NULL);
}

static void send_bytes(struct client *all, unsigned nclients, struct client *c,
                       const uint8_t *d, size_t n)
{
    double deadline = now() + CLOSE_DEADLINE;
    while (n && !c->write_closed && c->fd >= 0) {
        ssize_t w = send(c->fd, d, n, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (w > 0) {
            d += w;
            n -= (size_t)w;
            continue;
        }
        if (w < 0 && errno != EAGAIN && errno != EINTR) {
            c->write_closed = true; /* the server closed: EPIPE, reset */
            return;
        }
        /* Full: the server stopped reading us (over its high watermark,
         * or it waits on another worker). Read everyone's output, as a
         * client would, so that it can go on. */
        CHECK(now() < deadline);
        for (unsigned i = 0; i < nclients; i++)
            drain(&all[i]);
        struct pollfd p = {.fd = c->fd, .events = POLLOUT};
        (void)poll(&p, 1, 5);
    }
}

static void client_open(struct client *c, bool irc)
{
    memset(c, 0, sizeof *c);
    c->irc = irc;
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(c->fd >= 0);
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    const struct sockaddr_in *a = &addr[irc ? 1 : 0];
    CHECK(connect(c->fd, (const struct sockaddr *)a, sizeof *a) == 0);
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

/* Reads until nothing has come for a quiet millisecond (or 20 ms have
 * passed), so that events still between the workers reach the clients
 * before they leave: an input replays the same conversation. */
static void settle(struct client *all, unsigned nclients)
{
    double end = now() + 0.020;
    for (;;) {
        struct pollfd p[2];
        nfds_t n = 0;
        for (unsigned i = 0; i < nclients; i++)
            if (drain(&all[i]))
                p[n++] = (struct pollfd){.fd = all[i].fd, .events = POLLIN};
        if (n == 0 || now() > end || poll(p, n, 1) == 0)
            return;
    }
}

/* Half-closes and reads to the server's close. */
static void client_finish(struct client *all, unsigned nclients)
{
    settle(all, nclients);
    for (unsigned i = 0; i < nclients; i++)
        if (all[i].fd >= 0 && !all[i].write_closed) {
            shutdown(all[i].fd, SHUT_WR);
            all[i].write_closed = true;
        }
    double deadline = now() + CLOSE_DEADLINE;
    for (;;) {
        struct pollfd p[2];
        nfds_t n = 0;
        for (unsigned i = 0; i < nclients; i++)
            if (drain(&all[i]))
                p[n++] = (struct pollfd){.fd = all[i].fd, .events = POLLIN};
        if (n == 0)
            break;
        (void)poll(p, n, 50);
        if (now() > deadline) {
            fprintf(stderr,
                    "the server did not close a half-closed "
                    "connection within %gs\n",
                    CLOSE_DEADLINE);
            abort();
        }
    }
    for (unsigned i = 0; i < nclients; i++) {
        struct client *c = &all[i];
        if (c->fd >= 0 && !c->aborted) {
            /* Output ends on a line end, a cut included (whole units). */
            CHECK(c->len == 0);
            if (!c->irc)
                CHECK(c->lines >= 1); /* the welcome, at least */
        }
        if (c->fd >= 0)
            close(c->fd);
        free(c->line);
    }
}

/* Every connection the server had is gone: closed, on_close run, its
 * slot released. */
static void wait_no_connections(void)
{
    double deadline = now() + CLOSE_DEADLINE;
    for (;;) {
        if (atomic_load(&srv.connections) == 0)
            return;
        if (now() > deadline) {
            fprintf(stderr,
                    "the server still counts %llu connections "
                    "after every client left\n",
                    (unsigned long long)atomic_load(&srv.connections));
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
    unsigned nclients = data[0] & 4 ? 2 : 1;
    budget = WAIT_BUDGET;
    struct client cl[2];
    client_open(&cl[0], data[0] & 1);
    if (nclients == 2)
        client_open(&cl[1], data[0] & 2);
    cl[0].first = cl[1].first = &cl[0];

    size_t i = 1;
    while (i < size) {
        uint8_t h = data[i++];
        struct client *c = &cl[(h & 0x80) && nclients == 2 ? 1 : 0];
        unsigned op = (h >> 4) & 7, k = h & 15;
        if (op <= 3) {
            size_t len = (size_t)op << 8;
            if (i < size)
                len += data[i++];
            if (len > size - i)
                len = size - i;
            size_t piece = k < 15 ? k + 1 : len;
            for (size_t off = 0; off < len; off += piece) {
                size_t n = len - off < piece ? len - off : piece;
                send_bytes(cl, nclients, c, data + i + off, n);
            }
            i += len;
        } else if (op == 4) {
            wait_readable(c, k);
            drain(c);
        } else if (op == 5) {
            if (c->fd >= 0 && !c->write_closed) {
                shutdown(c->fd, SHUT_WR);
                c->write_closed = true;
            }
        } else if (op == 6) {
            client_reset(c);
        } else {
            pause_steps(k);
        }
    }
    client_finish(cl, nclients);
    wait_no_connections();
    return 0;
}
