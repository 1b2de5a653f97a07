/* bench-write-floor [CONNS [ROUNDS_PER_S [LINES_PER_WRITE [SECONDS
 *                    [WRITER_CPU [READER_CPU]]]]]]:
 * the kernel's price of one small write to a loopback TCP socket, which is
 * the floor under any server's CPU per delivery when each delivery is a
 * write of its own (a chat room at light load).
 *
 * It opens CONNS (1000) loopback connections; a reader thread pinned to
 * READER_CPU (1) reads them all through epoll, as a client would; the
 * writer, pinned to WRITER_CPU (0), writes LINES_PER_WRITE (1) 64-byte lines to every
 * connection ROUNDS_PER_S (100) times a second for SECONDS (5), then prints
 * its own CPU time (user + system, which includes the loopback receive path
 * the kernel runs in the sender's context) per write and per line. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define LINE 64

static int nconns, reader_cpu;
static int *readers;
static atomic_bool done;

static void pin(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu % CPU_SETSIZE, &set);
    pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

static void *read_all(void *arg)
{
    (void)arg;
    pin(reader_cpu);
    int ep = epoll_create1(0);
    for (int i = 0; i < nconns; i++) {
        struct epoll_event e = {.events = EPOLLIN, .data.fd = readers[i]};
        epoll_ctl(ep, EPOLL_CTL_ADD, readers[i], &e);
    }
    static char buf[1 << 16];
    struct epoll_event ev[256];
    while (!atomic_load(&done)) {
        int n = epoll_wait(ep, ev, 256, 100);
        for (int i = 0; i < n; i++)
            if (read(ev[i].data.fd, buf, sizeof buf) < 0)
                perror("read");
    }
    close(ep);
    return NULL;
}

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_THREAD, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

int main(int argc, char **argv)
{
    /* NOLINTBEGIN(cert-err34-c): a baseline's argv, range-checked below */
    nconns = argc > 1 ? atoi(argv[1]) : 1000;
    int rate = argc > 2 ? atoi(argv[2]) : 100;
    int lines = argc > 3 ? atoi(argv[3]) : 1;
    int seconds = argc > 4 ? atoi(argv[4]) : 5;
    int writer_cpu = argc > 5 ? atoi(argv[5]) : 0;
    reader_cpu = argc > 6 ? atoi(argv[6]) : 1;
    /* NOLINTEND(cert-err34-c) */
    if (nconns < 1 || nconns > 9000 || rate < 1 || rate > 100000 ||
        lines < 1 || lines > 256 || seconds < 1 || writer_cpu < 0 ||
        reader_cpu < 0) {
        fprintf(stderr, "usage: bench-write-floor [CONNS (1-9000) "
                        "[ROUNDS_PER_S [LINES_PER_WRITE (1-256) [SECONDS "
                        "[WRITER_CPU [READER_CPU]]]]]]\n");
        return 2;
    }
    int listener = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    if (listener < 0 || bind(listener, (struct sockaddr *)&sa, len) < 0 ||
        listen(listener, 4096) < 0 ||
        getsockname(listener, (struct sockaddr *)&sa, &len) < 0) {
        perror("bench-write-floor: listen");
        return 1;
    }
    int *writers = calloc((size_t)nconns, sizeof *writers);
    readers = calloc((size_t)nconns, sizeof *readers);
    if (!writers || !readers) {
        /* cppcheck-suppress resourceLeak ; main returns: the exit closes */
        return 1; /* NOLINT(clang-analyzer-unix.Malloc): main returns */
    }
    int one = 1;
    for (int i = 0; i < nconns; i++) {
        readers[i] = socket(AF_INET, SOCK_STREAM, 0);
        if (readers[i] < 0 ||
            connect(readers[i], (struct sockaddr *)&sa, sizeof sa) < 0 ||
            (writers[i] = accept(listener, NULL, NULL)) < 0) {
            perror("bench-write-floor: connect");
            return 1;
        }
        setsockopt(writers[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    pin(writer_cpu);
    pthread_t reader;
    if (pthread_create(&reader, NULL, read_all, NULL) != 0) {
        fprintf(stderr, "bench-write-floor: cannot start the reader\n");
        return 1;
    }
    char msg[LINE * 256];
    memset(msg, 'x', sizeof msg);
    long rounds = (long)rate * seconds, writes = 0;
    struct timespec next;
    clock_gettime(CLOCK_MONOTONIC, &next);
    double before = cpu_seconds();
    for (long r = 0; r < rounds; r++) {
        for (int i = 0; i < nconns; i++)
            if (write(writers[i], msg, (size_t)LINE * (size_t)lines) > 0)
                writes++;
        next.tv_nsec += 1000000000L / rate;
        while (next.tv_nsec >= 1000000000L) {
            next.tv_nsec -= 1000000000L;
            next.tv_sec++;
        }
        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL);
    }
    double cpu = cpu_seconds() - before;
    atomic_store(&done, true);
    pthread_join(reader, NULL);
    printf("%ld writes of %d line%s (%d B) to %d loopback connections: "
           "%.2f us of CPU per write, %.2f us per line\n",
           writes, lines, lines > 1 ? "s" : "", LINE * lines, nconns,
           1e6 * cpu / (double)writes, 1e6 * cpu / (double)writes / lines);
    return 0;
}
