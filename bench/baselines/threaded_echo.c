/* bench-threaded-echo PORT [HOST]: one blocking thread per connection, the
 * classic design. Threads get 128 KiB stacks (the 8 MiB default would only
 * reserve address space, but 15,000 of them exceed some limits). Prints
 * "ready" once listening; SIGTERM/SIGINT end it. */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void *serve(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char buf[16384];
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n <= 0 && !(n < 0 && errno == EINTR))
            break;
        for (ssize_t off = 0; off < n;) {
            ssize_t w = write(fd, buf + off, (size_t)(n - off));
            if (w < 0) {
                if (errno == EINTR)
                    continue;
                goto out;
            }
            off += w;
        }
    }
out:
    close(fd);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bench-threaded-echo PORT [HOST]\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res;
    int r =
        getaddrinfo(argc > 2 ? argv[2] : "127.0.0.1", argv[1], &hints, &res);
    if (r) {
        fprintf(stderr, "threaded-echo: %s\n", gai_strerror(r));
        return 1;
    }
    int lfd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (lfd < 0 || bind(lfd, res->ai_addr, res->ai_addrlen) < 0 ||
        listen(lfd, 4096) < 0) {
        perror("threaded-echo: listen");
        return 1;
    }
    freeaddrinfo(res);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, (size_t)128 * 1024);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    printf("ready\n");
    fflush(stdout);
    for (;;) {
        /* cppcheck-suppress nullPointer ; accept4(2) takes NULL addr, len */
        int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE)
                usleep(10000);
            continue;
        }
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        pthread_t tid;
        /* NOLINTNEXTLINE(performance-no-int-to-ptr): the fd rides in arg */
        if (pthread_create(&tid, &attr, serve, (void *)(intptr_t)fd) != 0)
            close(fd);
    }
}
