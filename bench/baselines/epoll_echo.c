/* bench-epoll-echo PORT [HOST]: the framework-free floor. One thread, one
 * level-triggered epoll set, a 64 KiB read buffer shared by all
 * connections; a connection whose echo the kernel would not take keeps the
 * rest and stops being read until it drains (back-pressure). Per
 * connection: 16 bytes in an fd-indexed table, plus the unsent rest if any.
 * Prints "ready" once listening; SIGTERM/SIGINT end it. */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

struct conn {
    char *rest; /* echo the kernel did not take yet */
    uint32_t len, off;
};

static struct conn *conns;
static size_t nconns;
static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static int listen_on(const char *host, const char *port)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res;
    int r = getaddrinfo(host, port, &hints, &res);
    if (r) {
        fprintf(stderr, "epoll-echo: %s: %s\n", host, gai_strerror(r));
        return -1;
    }
    int fd =
        socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (fd < 0 || bind(fd, res->ai_addr, res->ai_addrlen) < 0 ||
        listen(fd, 4096) < 0) {
        perror("epoll-echo: listen");
        return -1;
    }
    freeaddrinfo(res);
    return fd;
}

static void drop(int ep, int fd)
{
    epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
    close(fd);
    free(conns[fd].rest);
    conns[fd] = (struct conn){0};
}

static void accept_all(int ep, int lfd)
{
    for (;;) {
        /* cppcheck-suppress nullPointer ; accept4(2) takes NULL addr, len */
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE) {
                fprintf(stderr, "epoll-echo: accept: %s\n", strerror(errno));
                usleep(10000);
            }
            return;
        }
        if ((size_t)fd >= nconns) {
            size_t n = nconns ? nconns : 1024;
            while (n <= (size_t)fd)
                n *= 2;
            struct conn *c = realloc(conns, n * sizeof *c);
            if (!c) {
                close(fd);
                continue;
            }
            memset(c + nconns, 0, (n - nconns) * sizeof *c);
            conns = c;
            nconns = n;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    }
}

/* Writes what is left; returns 1 when all of it is out. */
static int write_rest(int fd, struct conn *c)
{
    while (c->off < c->len) {
        ssize_t w = write(fd, c->rest + c->off, c->len - c->off);
        if (w < 0)
            return errno == EAGAIN ? 0 : -1;
        c->off += (uint32_t)w;
    }
    free(c->rest);
    *c = (struct conn){0};
    return 1;
}

static void serve(int ep, int fd, uint32_t events, char *buf, size_t size)
{
    struct conn *c = &conns[fd];
    if (c->rest) {
        int r = write_rest(fd, c);
        if (r < 0)
            drop(ep, fd);
        if (r == 1) {
            struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
            epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
        }
        return;
    }
    ssize_t n = read(fd, buf, size);
    if (n <= 0) {
        if (n == 0 || errno != EAGAIN)
            drop(ep, fd);
        return;
    }
    ssize_t w = write(fd, buf, (size_t)n);
    if (w < 0 && errno != EAGAIN) {
        drop(ep, fd);
        return;
    }
    if (w < 0)
        w = 0;
    if (w < n) {
        c->len = (uint32_t)(n - w);
        c->off = 0;
        c->rest = malloc(c->len);
        if (!c->rest) {
            drop(ep, fd);
            return;
        }
        memcpy(c->rest, buf + w, c->len);
        struct epoll_event ev = {.events = EPOLLOUT, .data.fd = fd};
        epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
    }
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bench-epoll-echo PORT [HOST]\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    int lfd = listen_on(argc > 2 ? argv[2] : "127.0.0.1", argv[1]);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (lfd < 0 || ep < 0)
        return 1;
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = lfd};
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
    printf("ready\n");
    fflush(stdout);
    static char buf[65536];
    struct epoll_event events[256];
    while (!stop) {
        int n = epoll_wait(ep, events, 256, -1);
        for (int i = 0; i < n; i++) {
            if (events[i].data.fd == lfd)
                accept_all(ep, lfd);
            else
                serve(ep, events[i].data.fd, events[i].events, buf, sizeof buf);
        }
    }
    for (size_t fd = 0; fd < nconns; fd++)
        free(conns[fd].rest);
    free(conns);
    return 0;
}
