/* The server, clients and record loop of the connection-input targets
 * (fuzz_conn.h). */
#include "tests/fuzz/fuzz_conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "tests/fuzz/fuzz.h"

/* Pauses are counted in steps of 100 us: long enough for the server to
 * take what was sent in a read of its own, short enough to run hundreds
 * of inputs a second. WAIT_BUDGET: what one input may spend in pauses and
 * waits, so that a long one of random records still runs in
 * milliseconds. */
#define STEP_NS     100000L
#define WAIT_BUDGET 100

struct pc_server fuzz_srv;

double fuzz_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

void fuzz_server_start(const char *target, const struct pc_config_overrides *ov)
{
    pc_log_init();
    signal(SIGPIPE, SIG_IGN);
    struct pc_config *cfg = malloc(sizeof *cfg);
    char err[PC_ERR_MAX];
    CHECK(cfg);
    if (pc_config_load(cfg, NULL, ov, err, sizeof err) < 0) {
        fprintf(stderr, "%s: %s\n", target, err);
        abort();
    }
    CHECK(pc_server_start(&fuzz_srv, cfg) == 0);
}

void fuzz_listener_addr(unsigned listener, struct sockaddr_in *addr)
{
    const char *colon = strrchr(fuzz_srv.listeners[listener].bound, ':');
    CHECK(colon);
    memset(addr, 0, sizeof *addr);
    addr->sin_family = AF_INET;
    addr->sin_port = htons((uint16_t)atoi(colon + 1));
    addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
}

/* ---- a client -------------------------------------------------------- */

void fuzz_client_connect(struct fuzz_client *c, const struct sockaddr_in *addr)
{
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(c->fd >= 0);
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    CHECK(connect(c->fd, (const struct sockaddr *)addr, sizeof *addr) == 0);
}

bool fuzz_drain(struct fuzz_client *c)
{
    if (c->fd < 0 || c->eof)
        return false;
    char buf[16384];
    for (;;) {
        ssize_t r = recv(c->fd, buf, sizeof buf, MSG_DONTWAIT);
        if (r > 0) {
            c->take(c, buf, (size_t)r);
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

void fuzz_send(struct fuzz_session *s, struct fuzz_client *c, const uint8_t *d,
               size_t n)
{
    double deadline = fuzz_now() + FUZZ_DEADLINE;
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
         * or it waits on another worker). */
        CHECK(fuzz_now() < deadline);
        for (unsigned i = 0; i < s->n; i++)
            fuzz_drain(s->clients[i]);
        struct pollfd p = {.fd = c->fd, .events = POLLOUT};
        (void)poll(&p, 1, 5);
    }
}

void fuzz_send_pieces(struct fuzz_session *s, struct fuzz_client *c,
                      const uint8_t *d, size_t n, size_t piece)
{
    for (size_t off = 0; off < n; off += piece)
        fuzz_send(s, c, d + off, n - off < piece ? n - off : piece);
}

static void half_close(struct fuzz_client *c)
{
    if (c->fd >= 0 && !c->write_closed) {
        shutdown(c->fd, SHUT_WR);
        c->write_closed = true;
    }
}

static void reset(struct fuzz_client *c)
{
    if (c->fd < 0)
        return;
    struct linger l = {.l_onoff = 1, .l_linger = 0};
    setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    close(c->fd);
    c->fd = -1;
    c->reset = true;
}

void fuzz_client_close(struct fuzz_client *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
}

/* ---- the records ----------------------------------------------------- */

static unsigned spend(struct fuzz_session *s, unsigned steps)
{
    if (steps > s->budget)
        steps = s->budget;
    s->budget -= steps;
    return steps;
}

static void wait_readable(struct fuzz_session *s, struct fuzz_client *c,
                          unsigned steps)
{
    if (c->fd < 0 || c->eof || (steps = spend(s, steps)) == 0)
        return;
    struct pollfd p = {.fd = c->fd, .events = POLLIN};
    struct timespec t = {0, (long)steps * STEP_NS};
    (void)ppoll(&p, 1, &t, NULL);
}

static void pause_steps(struct fuzz_session *s, unsigned steps)
{
    if ((steps = spend(s, steps)) == 0)
        return;
    struct timespec t = {0, (long)steps * STEP_NS};
    nanosleep(&t, NULL);
}

size_t fuzz_raw_write(struct fuzz_session *s, struct fuzz_client *c,
                      unsigned op, unsigned k, const uint8_t *data, size_t size,
                      size_t i)
{
    size_t len = (size_t)op << 8;
    if (i < size)
        len += data[i++];
    if (len > size - i)
        len = size - i;
    fuzz_send_pieces(s, c, data + i, len, k < 15 ? k + 1 : len);
    return i + len;
}

void fuzz_run_records(struct fuzz_session *s, const uint8_t *data, size_t size,
                      size_t i, fuzz_write_op write_op)
{
    s->budget = WAIT_BUDGET;
    while (i < size) {
        uint8_t h = data[i++];
        struct fuzz_client *c = s->clients[(h & 0x80) && s->n == 2 ? 1 : 0];
        unsigned op = (h >> 4) & 7, k = h & 15;
        if (op <= 3) {
            i = write_op(s, c, op, k, data, size, i);
        } else if (op == 4) {
            wait_readable(s, c, k);
            fuzz_drain(c);
        } else if (op == 5) {
            half_close(c);
        } else if (op == 6) {
            reset(c);
        } else {
            pause_steps(s, k);
        }
    }
}

/* ---- the end of an input --------------------------------------------- */

/* Polls the clients still open for up to ms; false when none is. */
static bool poll_open(struct fuzz_session *s, int ms, bool *quiet)
{
    struct pollfd p[2];
    nfds_t n = 0;
    for (unsigned i = 0; i < s->n; i++)
        if (fuzz_drain(s->clients[i]))
            p[n++] = (struct pollfd){.fd = s->clients[i]->fd, .events = POLLIN};
    if (n == 0)
        return false;
    *quiet = poll(p, n, ms) == 0;
    return true;
}

void fuzz_settle(struct fuzz_session *s)
{
    double end = fuzz_now() + 0.020;
    bool quiet = false;
    while (poll_open(s, 1, &quiet) && !quiet && fuzz_now() <= end)
        ;
}

void fuzz_finish(struct fuzz_session *s)
{
    for (unsigned i = 0; i < s->n; i++)
        half_close(s->clients[i]);
    double deadline = fuzz_now() + FUZZ_DEADLINE;
    bool quiet;
    while (poll_open(s, 50, &quiet)) {
        if (fuzz_now() > deadline) {
            fprintf(stderr,
                    "the server did not close a half-closed connection "
                    "within %gs\n",
                    FUZZ_DEADLINE);
            abort();
        }
    }
}

void fuzz_wait_no_connections(void)
{
    double deadline = fuzz_now() + FUZZ_DEADLINE;
    while (atomic_load(&fuzz_srv.connections) != 0) {
        if (fuzz_now() > deadline) {
            fprintf(stderr,
                    "the server still counts %llu connections after every "
                    "client left\n",
                    (unsigned long long)atomic_load(&fuzz_srv.connections));
            abort();
        }
        struct timespec t = {0, 20000};
        nanosleep(&t, NULL);
    }
}
