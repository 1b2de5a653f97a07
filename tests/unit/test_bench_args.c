/* percore-bench's command line (bench/args.c). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"

static struct pcb_config cfg;
static char err[256];

#define PARSE(...)                                                             \
    parse((char *[]){"percore-bench", __VA_ARGS__, NULL},                      \
          (int)(sizeof((char *[]){"percore-bench", __VA_ARGS__}) /             \
                sizeof(char *)))

static int parse(char **argv, int argc)
{
    err[0] = '\0';
    return pcb_args_parse(&cfg, argc, argv, err, sizeof err);
}

static void test_args_echo_defaults(void **state)
{
    assert_int_equal(PARSE("echo"), PCB_ARGS_RUN);
    assert_int_equal(cfg.mode, PCB_ECHO);
    assert_string_equal(cfg.addr[0].host, "127.0.0.1");
    assert_string_equal(cfg.addr[0].port, "7007");
    assert_int_equal(cfg.connections, 100);
    assert_int_equal(cfg.threads, 1);
    assert_int_equal(cfg.size, 64);
    assert_int_equal(cfg.pipeline, 1);
    assert_true(cfg.rate == 0);
    assert_true(cfg.duration == 10);
    assert_int_equal(cfg.messages, 0);
    assert_false(cfg.json);
}

static void test_args_options_before_and_after_the_mode(void **state)
{
    assert_int_equal(PARSE("-c", "8", "echo", "--size", "4K", "-p16", "--json",
                           "--threads=2", "--cpus", "1"),
                     PCB_ARGS_RUN);
    assert_int_equal(cfg.connections, 8);
    assert_int_equal(cfg.size, 4096);
    assert_int_equal(cfg.pipeline, 16);
    assert_int_equal(cfg.threads, 2);
    assert_int_equal(cfg.ncpus, 1);
    assert_int_equal(cfg.cpus[0], 1);
    assert_true(cfg.json);
}

static void test_args_open_loop_rate_takes_suffixes(void **state)
{
    assert_int_equal(PARSE("echo", "--rate", "60k", "-d", "500ms"),
                     PCB_ARGS_RUN);
    assert_true(cfg.rate == 60000);
    assert_true(cfg.duration == 0.5);
}

static void test_args_mode_defaults_differ(void **state)
{
    assert_int_equal(PARSE("churn"), PCB_ARGS_RUN);
    assert_int_equal(cfg.connections, 16);
    assert_int_equal(cfg.size, 64);
    assert_int_equal(PARSE("idle"), PCB_ARGS_RUN);
    assert_int_equal(cfg.connections, 1000);
    assert_int_equal(cfg.size, 0);
    assert_int_equal(PARSE("chat"), PCB_ARGS_RUN);
    assert_string_equal(cfg.addr[0].port, "7008");
    assert_int_equal(cfg.connections, 100);
    assert_int_equal(PARSE("chat", "--target", "redis"), PCB_ARGS_RUN);
    assert_string_equal(cfg.addr[0].port, "6379");
    assert_int_equal(PARSE("chat", "--target", "nats", "-a", "[::1]:4333"),
                     PCB_ARGS_RUN);
    assert_int_equal(cfg.target, PCB_TARGET_NATS);
    assert_string_equal(cfg.addr[0].host, "::1");
    assert_string_equal(cfg.addr[0].port, "4333");
}

static void test_args_chat_rooms_members_senders(void **state)
{
    assert_int_equal(PARSE("chat", "--rooms", "4", "--members", "1000",
                           "--senders", "10", "--room", "r", "-s", "100"),
                     PCB_ARGS_RUN);
    assert_int_equal(cfg.connections, 4000);
    assert_int_equal(cfg.senders, 10);
    assert_string_equal(cfg.room, "r");
    assert_int_equal(PARSE("chat", "--members", "5", "--senders", "6"),
                     -EINVAL);
    assert_non_null(strstr(err, "--senders"));
    assert_int_equal(
        PARSE("chat", "--members", "10", "--senders", "2", "--stalled", "8"),
        PCB_ARGS_RUN);
    assert_int_equal(cfg.stalled, 8);
    /* a stalled member cannot also be a sender */
    assert_int_equal(
        PARSE("chat", "--members", "10", "--senders", "2", "--stalled", "9"),
        -EINVAL);
    assert_non_null(strstr(err, "--stalled"));
    assert_int_equal(PARSE("echo", "--stalled", "1"), -EINVAL);
    assert_int_equal(PARSE("chat", "-s", "20"), -EINVAL);
    assert_int_equal(PARSE("chat", "-c", "20"), -EINVAL);
    assert_int_equal(PARSE("chat", "--room", "no spaces"), -EINVAL);
    assert_int_equal(PARSE("echo", "--target", "redis"), -EINVAL);
}

static void test_args_chat_speaks_irc(void **state)
{
    assert_int_equal(PARSE("chat", "--target", "irc"), PCB_ARGS_RUN);
    assert_int_equal(cfg.target, PCB_TARGET_IRC);
    assert_string_equal(pcb_target_name(cfg.target), "irc");
    assert_string_equal(cfg.addr[0].port, "6667");
    /* IRC servers take connections behind short backlogs */
    assert_int_equal(cfg.connect_concurrency, 8);
    assert_int_equal(PARSE("chat", "--target", "irc", "--connect-concurrency",
                           "64", "-a", ":7000"),
                     PCB_ARGS_RUN);
    assert_int_equal(cfg.connect_concurrency, 64);
    assert_string_equal(cfg.addr[0].port, "7000");
    assert_int_equal(PARSE("chat"), PCB_ARGS_RUN);
    assert_int_equal(cfg.connect_concurrency, 256);
    /* a relayed line, prefix and all, stays within 512 bytes */
    assert_int_equal(PARSE("chat", "--target", "irc", "-s", "384"),
                     PCB_ARGS_RUN);
    assert_int_equal(PARSE("chat", "--target", "irc", "-s", "385"), -EINVAL);
    assert_non_null(strstr(err, "512"));
    assert_int_equal(PARSE("chat", "-s", "4000"), PCB_ARGS_RUN);
    assert_int_equal(PARSE("chat", "--target", "ircd"), -EINVAL);
    assert_non_null(strstr(err, "irc"));
    assert_int_equal(PARSE("echo", "--target", "irc"), -EINVAL);
}

/* ws: chat's rooms over WebSocket, to percored's web face by default or
 * to a plain broadcast server (bench/baselines/ws_broadcast.js). */
static void test_args_ws_targets_ports_and_rooms(void **state)
{
    assert_int_equal(PARSE("ws", "--members", "1000", "--senders", "4", "-p",
                           "32"),
                     PCB_ARGS_RUN);
    assert_int_equal(cfg.mode, PCB_WS);
    assert_string_equal(pcb_mode_name(cfg.mode), "ws");
    assert_true(pcb_rooms_mode(cfg.mode));
    assert_false(pcb_rooms_mode(PCB_ECHO));
    /* "percore" means its web face, whose JSON this mode speaks */
    assert_int_equal(cfg.target, PCB_TARGET_WEB);
    assert_string_equal(pcb_target_name(cfg.target), "web");
    assert_string_equal(cfg.addr[0].port, "8080");
    assert_int_equal(cfg.connections, 1000);
    assert_int_equal(cfg.size, 64);
    assert_int_equal(cfg.pipeline, 32);
    assert_int_equal(PARSE("ws", "--target", "broadcast", "-a", ":9001",
                           "-r", "100"),
                     PCB_ARGS_RUN);
    assert_int_equal(cfg.target, PCB_TARGET_BROADCAST);
    assert_string_equal(cfg.addr[0].port, "9001");
    assert_true(cfg.rate == 100);
    /* both echo a sender's own line: every member counts */
    assert_true(pcb_target_self_echo(PCB_TARGET_BROADCAST));
    assert_int_equal(PARSE("ws", "--target", "web", "--members", "10",
                           "--stalled", "2"),
                     PCB_ARGS_RUN);
    assert_int_equal(pcb_chat_fanout(&cfg), 8);
    assert_int_equal(PARSE("ws", "--target", "redis"), -EINVAL);
    assert_non_null(strstr(err, "broadcast"));
    assert_int_equal(PARSE("chat", "--target", "broadcast"), -EINVAL);
    assert_non_null(strstr(err, "ws mode"));
    assert_int_equal(PARSE("echo", "--target", "web"), -EINVAL);
    assert_int_equal(PARSE("ws", "--room", "#rust"), -EINVAL);
    assert_int_equal(PARSE("ws", "--target", "broadcast", "--room", "#rust"),
                     PCB_ARGS_RUN);
    assert_int_equal(PARSE("ws", "-c", "10"), -EINVAL);
    assert_int_equal(PARSE("ws", "-s", "43"), -EINVAL);
    assert_int_equal(PARSE("ws", "-s", "4000"), PCB_ARGS_RUN);
    assert_int_equal(PARSE("ws", "-r", "10", "-p", "2"), -EINVAL);
    assert_int_equal(PARSE("wss"), -EINVAL);
    assert_non_null(strstr(err, "ws"));
}

static void test_chat_fanout_without_self_echo(void **state)
{
    assert_int_equal(PARSE("chat", "--members", "10", "--stalled", "2"),
                     PCB_ARGS_RUN);
    assert_int_equal(pcb_chat_fanout(&cfg), 8);
    assert_true(pcb_target_self_echo(PCB_TARGET_PERCORE));
    assert_false(pcb_target_self_echo(PCB_TARGET_IRC));
    assert_int_equal(
        PARSE("chat", "--target", "irc", "--members", "10", "--stalled", "2"),
        PCB_ARGS_RUN);
    assert_int_equal(pcb_chat_fanout(&cfg), 7); /* not to the sender */
}

static void test_chat_witness_is_on_the_senders_thread(void **state)
{
    /* 2 rooms of 4, one sender and one stalled member each: members 0-7,
     * room i % 2, slot i / 2; slot 3 (6 and 7) stops reading */
    assert_int_equal(PARSE("chat", "--target", "irc", "--rooms", "2",
                           "--members", "4", "--stalled", "1"),
                     PCB_ARGS_RUN);
    assert_int_equal(pcb_chat_witness(&cfg, 0), 4);
    assert_int_equal(pcb_chat_witness(&cfg, 1), 5);
    /* 4 members on 2 threads: 0 and 1 on the first, each the other's */
    assert_int_equal(PARSE("chat", "--target", "irc", "--members", "4",
                           "--senders", "2", "-t", "2"),
                     PCB_ARGS_RUN);
    assert_int_equal(pcb_chat_witness(&cfg, 0), 1);
    assert_int_equal(pcb_chat_witness(&cfg, 1), 0);
    /* a closed loop needs one; an open loop does not */
    assert_int_equal(PARSE("chat", "--target", "irc", "--members", "1"),
                     -EINVAL);
    assert_non_null(strstr(err, "sender 0 of room 0"));
    assert_int_equal(
        PARSE("chat", "--target", "irc", "--members", "3", "-t", "3"), -EINVAL);
    assert_int_equal(PARSE("chat", "--target", "irc", "--members", "3", "-t",
                           "3", "-r", "10"),
                     PCB_ARGS_RUN);
    assert_int_equal(PARSE("chat", "--members", "1"), PCB_ARGS_RUN);
}

static void test_thread_shares_cover_every_connection(void **state)
{
    assert_int_equal(PARSE("echo", "-c", "10", "-t", "3"), PCB_ARGS_RUN);
    unsigned first, count;
    pcb_thread_share(&cfg, 0, &first, &count);
    assert_int_equal(first, 0);
    assert_int_equal(count, 4);
    pcb_thread_share(&cfg, 1, &first, &count);
    assert_int_equal(first, 4);
    assert_int_equal(count, 3);
    pcb_thread_share(&cfg, 2, &first, &count);
    assert_int_equal(first, 7);
    assert_int_equal(count, 3);
}

static void test_args_reject_conflicts_and_nonsense(void **state)
{
    assert_int_equal(PARSE("echo", "--rate", "1000", "-p", "4"), -EINVAL);
    assert_non_null(strstr(err, "exclude"));
    assert_int_equal(PARSE("echo", "-n", "1000", "-d", "5"), -EINVAL);
    assert_int_equal(PARSE("idle", "-n", "1000"), -EINVAL);
    assert_int_equal(PARSE("churn", "-p", "2"), -EINVAL);
    assert_int_equal(PARSE("echo", "-s", "0"), -EINVAL);
    assert_int_equal(PARSE("echo", "-c", "0"), -EINVAL);
    assert_int_equal(PARSE("echo", "-c", "-5"), -EINVAL);
    assert_int_equal(PARSE("echo", "-d", "abc"), -EINVAL);
    assert_non_null(strstr(err, "--duration"));
    assert_int_equal(PARSE("echo", "--bogus"), -EINVAL);
    assert_non_null(strstr(err, "--bogus"));
    assert_int_equal(PARSE("echo", "-s"), -EINVAL);
    assert_non_null(strstr(err, "needs a value"));
    assert_int_equal(PARSE("dance"), -EINVAL);
    assert_non_null(strstr(err, "dance"));
    assert_int_equal(PARSE("echo", "extra"), -EINVAL);
    assert_int_equal(parse((char *[]){"percore-bench", NULL}, 1), -EINVAL);
    assert_int_equal(PARSE("echo", "-a", "localhost"), -EINVAL);
    assert_int_equal(PARSE("echo", "-a", "::1:80"), -EINVAL);
}

static void test_args_several_servers_and_server_pids(void **state)
{
    assert_int_equal(PARSE("chat", "-a", "127.0.0.1:7100", "-a", "[::1]:7200",
                           "--server-pid", "11", "--server-pid", "12",
                           "--server-pid", "13"),
                     PCB_ARGS_RUN);
    assert_int_equal(cfg.naddrs, 2); /* the first replaced the default */
    assert_string_equal(cfg.addr[0].port, "7100");
    assert_string_equal(cfg.addr[1].host, "::1");
    assert_string_equal(cfg.addr[1].port, "7200");
    assert_int_equal(cfg.npids, 3);
    assert_int_equal(cfg.server_pid[2], 13);
    assert_int_equal(PARSE("chat"), PCB_ARGS_RUN);
    assert_int_equal(cfg.naddrs, 1);
    assert_int_equal(cfg.npids, 0);
    assert_int_equal(PARSE("echo", "-a", ":1", "-a", ":2", "-a", ":3", "-a",
                           ":4", "-a", ":5", "-a", ":6", "-a", ":7", "-a",
                           ":8", "-a", ":9"),
                     -EINVAL);
    assert_non_null(strstr(err, "at most 8 servers"));
}

static void test_args_threads_never_exceed_connections(void **state)
{
    assert_int_equal(PARSE("echo", "-c", "3", "-t", "8"), PCB_ARGS_RUN);
    assert_int_equal(cfg.threads, 3);
}

static void test_args_messages_count(void **state)
{
    assert_int_equal(PARSE("echo", "-n", "1.5M"), PCB_ARGS_RUN);
    assert_int_equal(cfg.messages, 1500000);
    assert_int_equal(PARSE("churn", "--messages", "100"), PCB_ARGS_RUN);
    assert_int_equal(cfg.messages, 100);
    assert_int_equal(PARSE("echo", "-n", "10", "-w", "1"), -EINVAL);
}

static void test_args_durations(void **state)
{
    double d;
    assert_int_equal(pcb_parse_duration("10", &d), 0);
    assert_true(d == 10);
    assert_int_equal(pcb_parse_duration("2.5s", &d), 0);
    assert_true(d == 2.5);
    assert_int_equal(pcb_parse_duration("250ms", &d), 0);
    assert_true(d == 0.25);
    assert_int_equal(pcb_parse_duration("2m", &d), 0);
    assert_true(d == 120);
    assert_int_equal(pcb_parse_duration("100us", &d), 0);
    assert_true(d > 0.0000999 && d < 0.0001001);
    assert_int_equal(pcb_parse_duration("", &d), -EINVAL);
    assert_int_equal(pcb_parse_duration("-1", &d), -EINVAL);
    assert_int_equal(pcb_parse_duration("5x", &d), -EINVAL);
    assert_int_equal(pcb_parse_duration("inf", &d), -EINVAL);
    assert_int_equal(pcb_parse_duration("0x10", &d), -EINVAL);
}

static void test_args_sizes_are_powers_of_1024(void **state)
{
    uint64_t v;
    assert_int_equal(pcb_parse_size("64", &v), 0);
    assert_int_equal(v, 64);
    assert_int_equal(pcb_parse_size("4K", &v), 0);
    assert_int_equal(v, 4096);
    assert_int_equal(pcb_parse_size("4k", &v), 0);
    assert_int_equal(v, 4096);
    assert_int_equal(pcb_parse_size("1M", &v), 0);
    assert_int_equal(v, 1 << 20);
    assert_int_equal(pcb_parse_size("2G", &v), 0);
    assert_int_equal(v, 2ull << 30);
    assert_int_equal(pcb_parse_size("1.5", &v), -EINVAL);
    assert_int_equal(pcb_parse_size("12KB", &v), -EINVAL);
    assert_int_equal(pcb_parse_size("K", &v), -EINVAL);
}

static void test_args_numbers_are_powers_of_1000(void **state)
{
    double v;
    assert_int_equal(pcb_parse_number("60k", &v), 0);
    assert_true(v == 60000);
    assert_int_equal(pcb_parse_number("1.5M", &v), 0);
    assert_true(v == 1500000);
    assert_int_equal(pcb_parse_number("1000", &v), 0);
    assert_true(v == 1000);
    assert_int_equal(pcb_parse_number("1q", &v), -EINVAL);
}

static void test_args_cpu_lists(void **state)
{
    int cpus[8];
    unsigned n;
    assert_int_equal(pcb_parse_cpus("1", cpus, 8, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(cpus[0], 1);
    assert_int_equal(pcb_parse_cpus("0,2,4-6", cpus, 8, &n), 0);
    assert_int_equal(n, 5);
    assert_int_equal(cpus[0], 0);
    assert_int_equal(cpus[1], 2);
    assert_int_equal(cpus[2], 4);
    assert_int_equal(cpus[4], 6);
    assert_int_equal(pcb_parse_cpus("0-8", cpus, 8, &n), -EINVAL);
    assert_int_equal(pcb_parse_cpus("3-1", cpus, 8, &n), -EINVAL);
    assert_int_equal(pcb_parse_cpus("1,", cpus, 8, &n), -EINVAL);
    assert_int_equal(pcb_parse_cpus("", cpus, 8, &n), -EINVAL);
    assert_int_equal(pcb_parse_cpus("a", cpus, 8, &n), -EINVAL);
}

static void test_args_addresses(void **state)
{
    char host[64], port[8];
    assert_int_equal(
        pcb_parse_addr("10.1.2.3:80", host, sizeof host, port, sizeof port), 0);
    assert_string_equal(host, "10.1.2.3");
    assert_string_equal(port, "80");
    assert_int_equal(
        pcb_parse_addr("[::1]:7007", host, sizeof host, port, sizeof port), 0);
    assert_string_equal(host, "::1");
    assert_int_equal(
        pcb_parse_addr(":9000", host, sizeof host, port, sizeof port), 0);
    assert_string_equal(host, "127.0.0.1");
    assert_string_equal(port, "9000");
    assert_int_equal(
        pcb_parse_addr("9001", host, sizeof host, port, sizeof port), 0);
    assert_string_equal(port, "9001");
    assert_int_equal(
        pcb_parse_addr("localhost:0", host, sizeof host, port, sizeof port),
        -EINVAL);
    assert_int_equal(
        pcb_parse_addr("localhost:70000", host, sizeof host, port, sizeof port),
        -EINVAL);
    assert_int_equal(
        pcb_parse_addr("[::1]7007", host, sizeof host, port, sizeof port),
        -EINVAL);
    assert_int_equal(
        pcb_parse_addr("host:", host, sizeof host, port, sizeof port), -EINVAL);
}

static void test_args_handshake_speaks_tls_1_3_without_resuming(void **state)
{
    assert_int_equal(PARSE("handshake"), PCB_ARGS_RUN);
    assert_int_equal(cfg.mode, PCB_HANDSHAKE);
    assert_string_equal(pcb_mode_name(cfg.mode), "handshake");
    assert_true(cfg.tls);
    assert_int_equal(cfg.tls_version, 13);
    assert_false(cfg.resume);
    assert_string_equal(cfg.sni, "localhost");
    assert_int_equal(cfg.connections, 16);
    assert_int_equal(cfg.size, 0); /* the handshake alone */
}

static void test_args_handshake_resume_version_sni_and_echo(void **state)
{
    assert_int_equal(PARSE("handshake", "--resume", "--tls-version", "1.2",
                           "--sni", "bench.example", "-s", "64", "-c", "32",
                           "-n", "10k"),
                     PCB_ARGS_RUN);
    assert_true(cfg.resume);
    assert_int_equal(cfg.tls_version, 12);
    assert_string_equal(cfg.sni, "bench.example");
    assert_int_equal(cfg.size, 64);
    assert_int_equal(cfg.connections, 32);
    assert_int_equal(cfg.messages, 10000);
    assert_int_equal(PARSE("handshake", "--tls-version", "TLSv1.3"),
                     PCB_ARGS_RUN);
    assert_int_equal(cfg.tls_version, 13);
}

static void test_args_echo_tls_at_a_fixed_rate(void **state)
{
    assert_int_equal(PARSE("echo", "--tls", "-r", "60k", "-s", "4K"),
                     PCB_ARGS_RUN);
    assert_true(cfg.tls);
    assert_int_equal(cfg.tls_version, 13);
    assert_true(cfg.rate == 60000);
    assert_int_equal(PARSE("echo"), PCB_ARGS_RUN);
    assert_false(cfg.tls);
    /* choosing a version or a name means TLS */
    assert_int_equal(PARSE("echo", "--tls-version", "1.2"), PCB_ARGS_RUN);
    assert_true(cfg.tls);
    assert_int_equal(cfg.tls_version, 12);
}

static void test_args_tls_options_rejected_where_they_mean_nothing(void **state)
{
    assert_int_equal(PARSE("echo", "--resume"), -EINVAL);
    assert_non_null(strstr(err, "--resume is for handshake"));
    assert_int_equal(PARSE("churn", "--tls"), -EINVAL);
    assert_non_null(strstr(err, "echo and handshake"));
    assert_int_equal(PARSE("chat", "--tls"), -EINVAL);
    assert_int_equal(PARSE("idle", "--sni", "x"), -EINVAL);
    assert_int_equal(PARSE("handshake", "--tls-version", "1.1"), -EINVAL);
    assert_non_null(strstr(err, "1.2 or 1.3"));
    assert_int_equal(PARSE("handshake", "--tls-version", "1.3x"), -EINVAL);
    assert_int_equal(PARSE("handshake", "--sni", ""), -EINVAL);
    assert_int_equal(PARSE("handshake", "--sni", "a b"), -EINVAL);
    assert_non_null(strstr(err, "--sni"));
    assert_int_equal(PARSE("handshake", "-r", "100"), -EINVAL);
    assert_int_equal(PARSE("handshake", "-p", "2"), -EINVAL);
}

static void test_args_tls_versions(void **state)
{
    unsigned v;
    assert_int_equal(pcb_parse_tls_version("1.2", &v), 0);
    assert_int_equal(v, 12);
    assert_int_equal(pcb_parse_tls_version("TLSv1.2", &v), 0);
    assert_int_equal(v, 12);
    assert_int_equal(pcb_parse_tls_version("1.3", &v), 0);
    assert_int_equal(v, 13);
    assert_int_equal(pcb_parse_tls_version("1.0", &v), -EINVAL);
    assert_int_equal(pcb_parse_tls_version("", &v), -EINVAL);
}

static void test_args_help_and_version_exit(void **state)
{
    FILE *saved = stdout;
    stdout = fopen("/dev/null", "w");
    assert_int_equal(PARSE("--help"), PCB_ARGS_EXIT);
    assert_int_equal(PARSE("-V"), PCB_ARGS_EXIT);
    fclose(stdout);
    stdout = saved;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_args_echo_defaults),
        cmocka_unit_test(test_args_several_servers_and_server_pids),
        cmocka_unit_test(test_args_options_before_and_after_the_mode),
        cmocka_unit_test(test_args_open_loop_rate_takes_suffixes),
        cmocka_unit_test(test_args_mode_defaults_differ),
        cmocka_unit_test(test_args_chat_rooms_members_senders),
        cmocka_unit_test(test_args_chat_speaks_irc),
        cmocka_unit_test(test_args_ws_targets_ports_and_rooms),
        cmocka_unit_test(test_chat_fanout_without_self_echo),
        cmocka_unit_test(test_chat_witness_is_on_the_senders_thread),
        cmocka_unit_test(test_thread_shares_cover_every_connection),
        cmocka_unit_test(test_args_reject_conflicts_and_nonsense),
        cmocka_unit_test(test_args_threads_never_exceed_connections),
        cmocka_unit_test(test_args_messages_count),
        cmocka_unit_test(test_args_durations),
        cmocka_unit_test(test_args_sizes_are_powers_of_1024),
        cmocka_unit_test(test_args_numbers_are_powers_of_1000),
        cmocka_unit_test(test_args_cpu_lists),
        cmocka_unit_test(test_args_addresses),
        cmocka_unit_test(test_args_handshake_speaks_tls_1_3_without_resuming),
        cmocka_unit_test(test_args_handshake_resume_version_sni_and_echo),
        cmocka_unit_test(test_args_echo_tls_at_a_fixed_rate),
        cmocka_unit_test(
            test_args_tls_options_rejected_where_they_mean_nothing),
        cmocka_unit_test(test_args_tls_versions),
        cmocka_unit_test(test_args_help_and_version_exit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
