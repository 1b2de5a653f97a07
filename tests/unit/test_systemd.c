/* systemd integration: socket activation (LISTEN_FDS) against real
 * sockets, the watchdog decision, and the sd_notify messages as a test
 * notification socket receives them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "core/server.h"
#include "core/systemd.h"

/* ---- helpers ---------------------------------------------------------- */

static int tcp_socket(bool listening)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    if (listening)
        assert_int_equal(listen(fd, 16), 0);
    return fd;
}

/* Puts fd at `target` (3, 4, ... as systemd passes them). */
static void place(int fd, int target)
{
    if (fd == target)
        return;
    assert_int_equal(dup2(fd, target), target);
    close(fd);
}

static void set_listen_env(pid_t pid, int n, const char *names)
{
    char v[32];
    snprintf(v, sizeof v, "%d", (int)pid);
    setenv("LISTEN_PID", v, 1);
    snprintf(v, sizeof v, "%d", n);
    setenv("LISTEN_FDS", v, 1);
    if (names)
        setenv("LISTEN_FDNAMES", names, 1);
    else
        unsetenv("LISTEN_FDNAMES");
}

static bool fd_open(int fd)
{
    return fcntl(fd, F_GETFD) >= 0;
}

static unsigned local_port(int fd)
{
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    return ntohs(a.sin_port);
}

/* ---- socket activation ------------------------------------------------ */

static void test_activation_matches_sockets_to_listener_names(void **state)
{
    (void)state;
    place(tcp_socket(true), 3);
    place(tcp_socket(true), 4);
    set_listen_env(getpid(), 2, "echo:metrics");
    struct pc_activation a;
    char err[PC_ERR_MAX] = "";
    assert_int_equal(pc_activation_collect(&a, err, sizeof err), 2);
    /* Gone from the environment, so nothing we start inherits them. */
    assert_null(getenv("LISTEN_FDS"));
    assert_null(getenv("LISTEN_PID"));
    assert_null(getenv("LISTEN_FDNAMES"));
    assert_int_equal(pc_activation_take(&a, "metrics"), 4);
    assert_int_equal(pc_activation_take(&a, "echo"), 3);
    assert_int_equal(pc_activation_take(&a, "echo"), -1);
    assert_int_equal(pc_activation_take(&a, "chat"), -1);
    assert_int_equal(pc_activation_finish(&a, err, sizeof err), 0);
    /* Taken sockets are the caller's, made non-blocking for accept4. */
    assert_true(fd_open(3) && fd_open(4));
    assert_true(fcntl(3, F_GETFL) & O_NONBLOCK);
    close(3);
    close(4);
}

static void
test_activation_ignores_sockets_meant_for_another_process(void **state)
{
    (void)state;
    place(tcp_socket(true), 3);
    set_listen_env(getpid() + 1, 1, "echo");
    struct pc_activation a;
    char err[PC_ERR_MAX] = "";
    assert_int_equal(pc_activation_collect(&a, err, sizeof err), 0);
    assert_int_equal(pc_activation_take(&a, "echo"), -1);
    assert_true(fd_open(3)); /* not ours: left alone */
    close(3);
}

static void test_activation_without_systemd_finds_nothing(void **state)
{
    (void)state;
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
    struct pc_activation a;
    char err[PC_ERR_MAX] = "";
    assert_int_equal(pc_activation_collect(&a, err, sizeof err), 0);
    assert_int_equal(pc_activation_finish(&a, err, sizeof err), 0);
}

static void test_activation_refuses_a_socket_that_is_not_listening(void **state)
{
    (void)state;
    place(tcp_socket(false), 3);
    set_listen_env(getpid(), 1, "echo");
    struct pc_activation a;
    char err[PC_ERR_MAX] = "";
    assert_true(pc_activation_collect(&a, err, sizeof err) < 0);
    assert_non_null(strstr(err, "'echo'"));
    assert_non_null(strstr(err, "not a listening stream socket"));
    assert_false(fd_open(3));
}

static void test_activation_refuses_a_socket_no_listener_takes(void **state)
{
    (void)state;
    place(tcp_socket(true), 3);
    place(tcp_socket(true), 4);
    set_listen_env(getpid(), 2, "echo:gopher");
    struct pc_activation a;
    char err[PC_ERR_MAX] = "";
    assert_int_equal(pc_activation_collect(&a, err, sizeof err), 2);
    assert_int_equal(pc_activation_take(&a, "echo"), 3);
    assert_int_equal(pc_activation_finish(&a, err, sizeof err), -ENOENT);
    assert_non_null(strstr(err, "'gopher'"));
    assert_non_null(strstr(err, "[listener gopher]"));
    assert_false(fd_open(4)); /* closed: systemd keeps its own copy */
    assert_true(fd_open(3));
    close(3);
}

static void
test_activation_asks_for_a_name_when_the_socket_has_none(void **state)
{
    (void)state;
    place(tcp_socket(true), 3);
    set_listen_env(getpid(), 1, NULL); /* no FileDescriptorName= */
    struct pc_activation a;
    char err[PC_ERR_MAX] = "";
    assert_int_equal(pc_activation_collect(&a, err, sizeof err), 1);
    assert_int_equal(pc_activation_finish(&a, err, sizeof err), -ENOENT);
    assert_non_null(strstr(err, "FileDescriptorName="));
    assert_false(fd_open(3));
}

static void test_adopted_socket_is_served_by_the_acceptor(void **state)
{
    (void)state;
    int fd = tcp_socket(true);
    unsigned port = local_port(fd);
    place(fd, 3);
    set_listen_env(getpid(), 1, "echo");
    struct pc_activation a;
    char err[PC_ERR_MAX] = "";
    assert_int_equal(pc_activation_collect(&a, err, sizeof err), 1);
    struct pc_listener_config lc = {.name = "echo",
                                    .listen = "127.0.0.1:1",
                                    .distribution = PC_DIST_REUSEPORT};
    struct pc_listener *l = calloc(1, sizeof *l);
    assert_non_null(l);
    struct pc_listener_config other = {.name = "chat", .listen = "127.0.0.1:2"};
    assert_int_equal(pc_systemd_adopt(&a, &other, l), 0);
    assert_int_equal(l->nfds, 0);
    assert_int_equal(pc_systemd_adopt(&a, &lc, l), 1);
    assert_int_equal(l->nfds, 1);
    assert_int_equal(l->fds[0], 3);
    assert_true(l->inherited);
    assert_int_equal(lc.distribution, PC_DIST_ACCEPTOR);
    /* The address is systemd's, whatever the config said. */
    char want[64];
    snprintf(want, sizeof want, "127.0.0.1:%u", port);
    assert_string_equal(l->bound, want);
    assert_int_equal(pc_activation_finish(&a, err, sizeof err), 0);
    close(3);
    free(l);
}

/* ---- watchdog decision ------------------------------------------------ */

static void test_watchdog_names_the_worker_whose_loop_stopped(void **state)
{
    (void)state;
    struct pc_watchdog wd;
    assert_int_equal(pc_watchdog_init(&wd, 3, 500, 1000), 0);
    uint64_t loops[3] = {0, 0, 0};
    /* Not moved yet, but not stale either. */
    assert_int_equal(pc_watchdog_check(&wd, loops, 1400), -1);
    loops[0] = 5;
    loops[2] = 7;
    assert_int_equal(pc_watchdog_check(&wd, loops, 1600), 1);
    loops[1] = 1;
    assert_int_equal(pc_watchdog_check(&wd, loops, 1700), -1);
    /* Worker 2 has not moved since 1600. */
    loops[0] = 6;
    loops[1] = 2;
    assert_int_equal(pc_watchdog_check(&wd, loops, 2000), -1);
    assert_int_equal(pc_watchdog_check(&wd, loops, 2101), 2);
    pc_watchdog_free(&wd);
}

/* ---- notifications ---------------------------------------------------- */

struct fake {
    struct pc_server srv;
    struct pc_config cfg;
    struct pc_worker workers[2];
    struct pc_service svcs[2][PC_MAX_SLOTS]; /* one listener (slot 0) each */
    bool frozen[2];
    int notify_fd;
    char dir[64];
    char path[96];
};

/* The fake worker's loop: a doorbell that counts its wake-ups as loop
 * passes, as a real worker's loop counter does. */
static void fake_doorbell_cb(struct ev_loop *loop, ev_async *a, int revents)
{
    (void)loop;
    (void)revents;
    struct pc_worker *w = a->data;
    PC_STAT_ADD(w, loops, 1);
}

static struct fake *fake_new(void)
{
    /* Aligned as the server allocates workers: counters own whole
     * cache lines. */
    struct fake *f = aligned_alloc(PC_CACHE_LINE, sizeof *f);
    assert_non_null(f);
    memset(f, 0, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/pc-notify-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof f->path, "%s/notify", f->dir);
    f->notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    snprintf(un.sun_path, sizeof un.sun_path, "%s", f->path);
    assert_int_equal(bind(f->notify_fd, (struct sockaddr *)&un, sizeof un), 0);
    setenv("NOTIFY_SOCKET", f->path, 1);
    f->cfg.drain_timeout = 7;
    f->srv.cfg = &f->cfg;
    f->srv.nworkers = 2;
    f->srv.workers = f->workers;
    f->srv.loop = ev_loop_new(EVFLAG_AUTO);
    for (unsigned i = 0; i < 2; i++) {
        struct pc_worker *w = &f->workers[i];
        w->id = i;
        w->svcs = f->svcs[i];
        w->loop = ev_loop_new(EVFLAG_AUTO);
        ev_async_init(&w->doorbell, fake_doorbell_cb);
        w->doorbell.data = w;
        ev_async_start(w->loop, &w->doorbell);
    }
    return f;
}

static void fake_free(struct fake *f)
{
    pc_systemd_detach(&f->srv);
    for (unsigned i = 0; i < 2; i++) {
        ev_async_stop(f->workers[i].loop, &f->workers[i].doorbell);
        ev_loop_destroy(f->workers[i].loop);
    }
    ev_loop_destroy(f->srv.loop);
    close(f->notify_fd);
    unlink(f->path);
    rmdir(f->dir);
    unsetenv("NOTIFY_SOCKET");
    unsetenv("WATCHDOG_USEC");
    unsetenv("WATCHDOG_PID");
    free(f);
}

/* The next notification, or "" if none comes within timeout_ms. */
static const char *next_message(struct fake *f, int timeout_ms)
{
    static char buf[1024];
    struct pollfd p = {.fd = f->notify_fd, .events = POLLIN};
    buf[0] = '\0';
    if (poll(&p, 1, timeout_ms) == 1) {
        ssize_t n = recv(f->notify_fd, buf, sizeof buf - 1, 0);
        buf[n > 0 ? n : 0] = '\0';
    }
    return buf;
}

static uint64_t now_usec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

struct tally {
    unsigned pings; /* WATCHDOG=1 */
    unsigned pings_after_stuck;
    bool stuck; /* STATUS=worker N stuck seen */
};

/* Runs the main loop and the unfrozen workers' loops for `ms`. */
static void run_for(struct fake *f, unsigned ms, struct tally *t)
{
    uint64_t end = now_usec() + ms * 1000u;
    while (now_usec() < end) {
        ev_run(f->srv.loop, EVRUN_NOWAIT);
        for (unsigned i = 0; i < 2; i++)
            if (!f->frozen[i])
                ev_run(f->workers[i].loop, EVRUN_NOWAIT);
        const char *m;
        while (*(m = next_message(f, 0))) {
            if (strcmp(m, "WATCHDOG=1") == 0) {
                t->pings++;
                if (t->stuck)
                    t->pings_after_stuck++;
            }
            if (strstr(m, "STATUS=worker 1 stuck"))
                t->stuck = true;
        }
        usleep(2000);
    }
}

static void test_notify_says_ready_with_workers_and_connections(void **state)
{
    (void)state;
    struct fake *f = fake_new();
    atomic_store(&f->srv.connections, 3);
    PC_LSTAT_ADD(&f->svcs[0][0], accepted, 10);
    PC_LSTAT_ADD(&f->svcs[1][0], accepted, 5);
    pc_systemd_ready(&f->srv);
    assert_string_equal(next_message(f, 1000),
                        "READY=1\nSTATUS=2 workers, 3 connections open, 15 "
                        "accepted");
    /* No watchdog was asked for: nothing else is sent. */
    struct tally t = {0};
    run_for(f, 100, &t);
    assert_int_equal(t.pings, 0);
    fake_free(f);
}

static void test_notify_brackets_a_reload_and_announces_stopping(void **state)
{
    (void)state;
    struct fake *f = fake_new();
    pc_systemd_ready(&f->srv);
    assert_non_null(strstr(next_message(f, 1000), "READY=1"));

    uint64_t before = now_usec();
    pc_systemd_reloading(&f->srv);
    uint64_t after = now_usec();
    const char *m = next_message(f, 1000);
    assert_non_null(strstr(m, "RELOADING=1\n"));
    const char *mono = strstr(m, "MONOTONIC_USEC=");
    assert_non_null(mono);
    unsigned long long stamp = strtoull(mono + 15, NULL, 10);
    assert_true(stamp >= before && stamp <= after);

    pc_systemd_reloaded(&f->srv);
    assert_non_null(strstr(next_message(f, 1000), "READY=1\nSTATUS="));

    pc_systemd_stopping(&f->srv);
    m = next_message(f, 1000);
    assert_non_null(strstr(m, "STOPPING=1\n"));
    assert_non_null(strstr(m, "for up to 7s"));
    /* drain_timeout (7s) plus the margin for the last steps (5s). */
    assert_non_null(strstr(m, "EXTEND_TIMEOUT_USEC=12000000"));
    fake_free(f);
}

static void test_watchdog_pings_only_while_every_worker_loop_runs(void **state)
{
    (void)state;
    struct fake *f = fake_new();
    setenv("WATCHDOG_USEC", "400000", 1); /* checked every 100 ms */
    char pid[16];
    snprintf(pid, sizeof pid, "%d", (int)getpid());
    setenv("WATCHDOG_PID", pid, 1);
    pc_systemd_ready(&f->srv);
    assert_non_null(strstr(next_message(f, 1000), "READY=1"));

    struct tally t = {0};
    run_for(f, 600, &t);
    assert_true(t.pings >= 3);
    assert_false(t.stuck);

    /* Worker 1 stops running its loop: after half the period the main
     * thread says so and sends no WATCHDOG=1 any more. */
    f->frozen[1] = true;
    run_for(f, 900, &t);
    assert_true(t.stuck);
    assert_int_equal(t.pings_after_stuck, 0);

    /* It runs again: so do the pings. */
    f->frozen[1] = false;
    unsigned before = t.pings;
    run_for(f, 500, &t);
    assert_true(t.pings > before);
    fake_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_activation_matches_sockets_to_listener_names),
        cmocka_unit_test(
            test_activation_ignores_sockets_meant_for_another_process),
        cmocka_unit_test(test_activation_without_systemd_finds_nothing),
        cmocka_unit_test(
            test_activation_refuses_a_socket_that_is_not_listening),
        cmocka_unit_test(test_activation_refuses_a_socket_no_listener_takes),
        cmocka_unit_test(
            test_activation_asks_for_a_name_when_the_socket_has_none),
        cmocka_unit_test(test_adopted_socket_is_served_by_the_acceptor),
        cmocka_unit_test(test_watchdog_names_the_worker_whose_loop_stopped),
        cmocka_unit_test(test_notify_says_ready_with_workers_and_connections),
        cmocka_unit_test(test_notify_brackets_a_reload_and_announces_stopping),
        cmocka_unit_test(test_watchdog_pings_only_while_every_worker_loop_runs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
