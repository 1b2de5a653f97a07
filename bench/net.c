/* Sockets and the echo payload. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "tls.h"

int pcb_resolve(const struct pcb_config *cfg, struct pcb_run *run)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICSERV};
    for (unsigned i = 0; i < cfg->naddrs; i++) {
        const struct pcb_addr *a = &cfg->addr[i];
        struct addrinfo *res;
        int r = getaddrinfo(a->host, a->port, &hints, &res);
        if (r) {
            fprintf(stderr, "percore-bench: %s:%s: %s\n", a->host, a->port,
                    gai_strerror(r));
            return -1;
        }
        memcpy(&run->addr[i], res->ai_addr, res->ai_addrlen);
        run->addrlen[i] = res->ai_addrlen;
        freeaddrinfo(res);
    }
    return 0;
}

int pcb_connect_start(const struct pcb_run *run, unsigned index, int rcvbuf)
{
    unsigned k = index % run->cfg->naddrs;
    int fd = socket(run->addr[k].ss_family,
                    SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (rcvbuf > 0) /* before connect: it sets the window scale */
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    if (connect(fd, (const struct sockaddr *)&run->addr[k], run->addrlen[k]) <
            0 &&
        errno != EINPROGRESS) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

int pcb_connect_result(int fd)
{
    int e = 0;
    socklen_t len = sizeof e;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len) < 0)
        return -errno;
    return -e;
}

static unsigned char pattern[2 * PCB_PATTERN];
const unsigned char *pcb_pattern = pattern;

void pcb_pattern_init(void)
{
    /* xorshift64: fixed seed, so a capture of a run can be checked by
     * hand; printable bytes would hide a server that mangles the top bit,
     * so all 256 values occur. */
    uint64_t x = 0x9e3779b97f4a7c15u;
    for (unsigned i = 0; i < PCB_PATTERN; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        pattern[i] = (unsigned char)(x >> 24);
    }
    memcpy(pattern + PCB_PATTERN, pattern, PCB_PATTERN);
}

int pcb_stream_connect(struct pcb_thread *t, struct pcb_stream *s,
                       void (*cb)(struct ev_loop *, ev_io *, int), void *data,
                       unsigned conn)
{
    int fd = pcb_connect_start(t->run, conn, 0);
    if (fd < 0)
        return fd;
    s->shift = pcb_pattern_shift(conn);
    s->tx_target = s->tx_done = s->rx_done = 0;
    s->ssl = NULL;
    s->got_session = false;
    s->tls_retry = 0;
    s->events = EV_WRITE;
    ev_io_init(&s->io, cb, fd, EV_WRITE);
    s->io.data = data;
    ev_io_start(t->loop, &s->io);
    return 0;
}

void pcb_stream_watch(struct ev_loop *loop, struct pcb_stream *s, int events)
{
    if (s->events == events)
        return;
    ev_io_stop(loop, &s->io);
    ev_io_set(&s->io, s->io.fd, events);
    s->events = events;
    if (events)
        ev_io_start(loop, &s->io);
}

int pcb_stream_flush(struct ev_loop *loop, struct pcb_stream *s)
{
    if (s->ssl && pcb_tls_write(s) < 0)
        return -1;
    while (!s->ssl && s->tx_done < s->tx_target) {
        uint64_t left = s->tx_target - s->tx_done;
        size_t n = left < PCB_PATTERN ? (size_t)left : PCB_PATTERN;
        ssize_t w = write(s->io.fd, pcb_pattern_at(s->tx_done + s->shift), n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN)
                break;
            return -1;
        }
        s->tx_done += (uint64_t)w;
    }
    pcb_stream_watch(loop, s,
                     EV_READ | (s->tx_done < s->tx_target ? EV_WRITE : 0));
    return 0;
}

long pcb_stream_check(struct pcb_thread *t, struct pcb_stream *s, size_t n)
{
    if (s->rx_done + n > s->tx_done) /* more than was sent */
        return -(1 + PCB_ERR_MISMATCH);
    for (size_t i = 0; i < n;) {
        size_t len = n - i < PCB_PATTERN ? n - i : PCB_PATTERN;
        if (memcmp(t->scratch + i, pcb_pattern_at(s->rx_done + i + s->shift),
                   len) != 0)
            return -(1 + PCB_ERR_MISMATCH);
        i += len;
    }
    s->rx_done += n;
    return 0;
}

long pcb_stream_read(struct pcb_thread *t, struct pcb_stream *s)
{
    if (s->ssl)
        return pcb_tls_read(t, s);
    ssize_t n = read(s->io.fd, t->scratch, PCB_SCRATCH);
    if (n < 0)
        return errno == EAGAIN || errno == EINTR ? 0 : -(1 + PCB_ERR_CLOSED);
    if (n == 0)
        return -(1 + PCB_ERR_CLOSED);
    long r = pcb_stream_check(t, s, (size_t)n);
    return r < 0 ? r : n;
}

void pcb_stream_close(struct ev_loop *loop, struct pcb_stream *s)
{
    if (s->ssl)
        pcb_tls_end(s);
    ev_io_stop(loop, &s->io);
    s->events = 0;
    if (s->io.fd >= 0)
        close(s->io.fd);
    s->io.fd = -1;
}
