/* Config parsing: values, good files, bad files with file:line:key. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/config.h"

static char path[] = "/tmp/pc-config-XXXXXX";

static const char *write_config(const char *text)
{
    strcpy(path, "/tmp/pc-config-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

static void test_value_parsers(void **state)
{
    int64_t i;
    double d;
    bool b;
    assert_int_equal(pc_parse_size("64K", &i), 0);
    assert_int_equal(i, 65536);
    assert_int_equal(pc_parse_size("1M", &i), 0);
    assert_int_equal(i, 1 << 20);
    assert_int_equal(pc_parse_size("2GB", &i), 0);
    assert_int_equal(i, 2LL << 30);
    assert_int_equal(pc_parse_size("12Q", &i), -EINVAL);
    assert_int_equal(pc_parse_size("-1", &i), -EINVAL);
    assert_int_equal(pc_parse_size("99999999999G", &i), -ERANGE);
    assert_int_equal(pc_parse_int("42", &i), 0);
    assert_int_equal(i, 42);
    assert_int_equal(pc_parse_int("4x", &i), -EINVAL);
    assert_int_equal(pc_parse_seconds("0.5", &d), 0);
    assert_true(d == 0.5);
    assert_int_equal(pc_parse_seconds("250ms", &d), 0);
    assert_true(d == 0.25);
    assert_int_equal(pc_parse_seconds("30s", &d), 0);
    assert_true(d == 30);
    assert_int_equal(pc_parse_seconds("soon", &d), -EINVAL);
    assert_int_equal(pc_parse_bool("yes", &b), 0);
    assert_true(b);
    assert_int_equal(pc_parse_bool("Off", &b), 0);
    assert_false(b);
    assert_int_equal(pc_parse_bool("maybe", &b), -EINVAL);
}

static void test_defaults_give_echo_on_7007(void **state)
{
    struct pc_config cfg;
    char err[PC_ERR_MAX];
    assert_int_equal(pc_config_load(&cfg, NULL, NULL, err, sizeof err), 0);
    assert_int_equal(cfg.nlisteners, 1);
    assert_string_equal(cfg.listeners[0].listen, "127.0.0.1:7007");
    assert_string_equal(cfg.listeners[0].proto->name, "echo");
    assert_int_equal(cfg.workers, 0);
    assert_int_equal(cfg.distribution, PC_DIST_REUSEPORT);
    pc_config_free(&cfg);
}

static void test_good_file_and_overrides(void **state)
{
    const char *f = write_config(
        "; comment\n[server]\nworkers = 3\ndistribution = acceptor\n"
        "balance = least-connections\nlog_level = debug\n\n"
        "[listener front]\nlisten = [::]:7100\nprotocol = echo\n"
        "max_output = 2M\nidle_timeout = 1.5\nflush_delay = 5ms\n"
        "[listener admin]\nlisten = 127.0.0.1:7009\nprotocol = metrics\n"
        "distribution = reuseport\n");
    struct pc_config_overrides ov = {.nset = 2,
                                     .set = {"server.workers=5",
                                             "front.backlog=64"}};
    ov.listen[ov.nlisten++] = "extra=echo@unix:/tmp/x.sock";
    struct pc_config cfg;
    char err[PC_ERR_MAX];
    assert_int_equal(pc_config_load(&cfg, f, &ov, err, sizeof err), 0);
    unlink(f);
    assert_int_equal(cfg.workers, 5);
    assert_int_equal(cfg.balance, PC_BALANCE_LEAST_CONN);
    assert_int_equal(cfg.nlisteners, 3);
    struct pc_listener_config *front = &cfg.listeners[0];
    assert_string_equal(front->name, "front");
    assert_int_equal(front->distribution, PC_DIST_ACCEPTOR); /* inherited */
    assert_int_equal(front->max_output, 2 << 20);
    assert_int_equal(front->backlog, 64);
    assert_true(front->idle_timeout == 1.5);
    assert_true(front->flush_delay == 0.005);
    assert_true(cfg.listeners[1].flush_delay == 0); /* off by default */
    /* Modules read the framework's keys through the section getters, each
     * getter only the keys of its own type. */
    assert_int_equal(pc_section_int(&front->section, "max_output"), 2 << 20);
    assert_int_equal(pc_section_int(&front->section, "backlog"), 64);
    assert_true(pc_section_seconds(&front->section, "idle_timeout") == 1.5);
    assert_true(pc_section_seconds(&front->section, "flush_delay") == 0.005);
    assert_int_equal(pc_section_int(&front->section, "idle_timeout"), 0);
    assert_true(pc_section_seconds(&front->section, "max_output") == 0);
    assert_int_equal(pc_section_int(&front->section, "distribution"), 0);
    assert_int_equal(cfg.listeners[1].distribution, PC_DIST_REUSEPORT);
    /* Unix sockets cannot share a port: always the acceptor. */
    assert_string_equal(cfg.listeners[2].name, "extra");
    assert_int_equal(cfg.listeners[2].distribution, PC_DIST_ACCEPTOR);
    pc_config_free(&cfg);
}

static void expect_error(const char *text, const char *overrides_set,
                         const char *message, bool names_file)
{
    const char *f = write_config(text);
    struct pc_config_overrides ov = {0};
    if (overrides_set)
        ov.set[ov.nset++] = overrides_set;
    struct pc_config cfg;
    char err[PC_ERR_MAX] = "";
    assert_true(pc_config_load(&cfg, f, &ov, err, sizeof err) < 0);
    unlink(f);
    if (!strstr(err, message))
        fail_msg("expected '%s' in '%s'", message, err);
    if (names_file && strncmp(err, f, strlen(f)) != 0)
        fail_msg("expected the file name first in '%s'", err);
}

static void test_bad_files_name_line_and_key(void **state)
{
    expect_error("[server]\nworkers = 0\n", NULL,
                 ":2: [server] workers: '0' must be 'auto' or 1 to 1024",
                 true);
    expect_error("[server]\nspeed = fast\n", NULL,
                 ":2: [server] speed: unknown key", true);
    expect_error("[listener a]\nlisten = 1.2.3.4:5\nprotocol = echo\n"
                 "idle_timeout = forever\n",
                 NULL, ":4: [listener a] idle_timeout: 'forever'", true);
    expect_error("[listener a]\nlisten = 1.2.3.4:5\nprotocol = echo\n"
                 "flush_delay = 2\n",
                 NULL, ":4: [listener a] flush_delay: 2 is out of range", true);
    expect_error("[listener a]\nlisten = 1.2.3.4:5\nprotocol = echo\n"
                 "max_input = 1\n",
                 NULL, ":4: [listener a] max_input: 1 is out of range", true);
    expect_error("[listener a]\nlisten = 1.2.3.4:5\nprotocol = echo\n"
                 "colour = blue\n",
                 NULL, ":4: [listener a] colour: unknown key for protocol echo",
                 true);
    expect_error("[server]\ndistribution = random\n", NULL,
                 "'random' is not one of: reuseport acceptor", true);
    expect_error("[server]\n", "server.workers", "--set server.workers: "
                 "expected SECTION.KEY=VALUE", false);
    expect_error("[server]\n", "server.workers=x",
                 "--set server.workers: [server] workers", false);
}

/* Checks that run once every key is read name the line of the key at
 * fault (the one the user set), not the section's first line; a shortcut
 * option is named as typed. */
static void test_cross_key_errors_name_the_key_at_fault(void **state)
{
    (void)state;
    expect_error("[listener a]\nlisten = 1.2.3.4:5\nprotocol = echo\n"
                 "idle_timeout = 5\nmax_output = 1000\n", NULL,
                 ":5: [listener a] max_output: high_watermark (262144) must "
                 "not exceed max_output (1000)", true);
    expect_error("[listener a]\nlisten = 1.2.3.4:5\nprotocol = echo\n"
                 "high_watermark = 4K\nlow_watermark = 8K\n", NULL,
                 ":5: [listener a] low_watermark: low_watermark (8192) must be "
                 "below high_watermark (4096)", true);
    /* The setting that won: a --set after the file. */
    expect_error("[listener a]\nlisten = 1.2.3.4:5\nprotocol = echo\n"
                 "low_watermark = 1K\n", "a.low_watermark=1M",
                 "--set a.low_watermark: [listener a] low_watermark: "
                 "low_watermark (1048576) must be below high_watermark "
                 "(262144)", false);
    /* A module's check hook: its option, and one against the framework's. */
    expect_error("[listener c]\nlisten = 1.2.3.4:5\nprotocol = chat\n\n"
                 "default_room = two words\n", NULL,
                 ":5: [listener c] default_room: 'two words' is not a room "
                 "name", true);
    expect_error("[listener c]\nlisten = 1.2.3.4:5\nprotocol = chat\n"
                 "max_input = 100\n", NULL,
                 ":4: [listener c] max_input: max_line (4096) must be at "
                 "least 2 bytes below max_input (100)", true);
    expect_error("[listener c]\nlisten = 1.2.3.4:5\n\nprotocol = nosuch\n",
                 NULL, ":4: [listener c] protocol: unknown protocol 'nosuch'",
                 true);
    expect_error("[cluster]\nnode = a\nredis = 127.0.0.1:99999\n", NULL,
                 ":3: [cluster] redis: '127.0.0.1:99999': the port must be 1 "
                 "to 65535", true);
    /* Nothing the user set is at fault: the section is named. */
    expect_error("[cluster]\nnode = a\n", NULL,
                 ":2: [cluster]: redis: required", true);

    const char *f = write_config("[server]\n");
    struct pc_config_overrides ov = {.nset = 1,
                                     .set = {"server.backend=nosuch"},
                                     .set_as = {"--backend"}};
    struct pc_config cfg;
    char err[PC_ERR_MAX] = "";
    assert_true(pc_config_load(&cfg, f, &ov, err, sizeof err) < 0);
    unlink(f);
    const char want[] = "--backend: [server] backend: backend 'nosuch' is "
                        "unknown; offered here: ";
    assert_memory_equal(err, want, sizeof want - 1);
}

/* TLS keys: parsed, defaulted, and refused with the key and the file
 * before anything starts (certificate contents are the integration
 * tests'). */
static void test_tls_keys(void **state)
{
    (void)state;
    struct pc_config cfg;
    char err[PC_ERR_MAX];
    assert_int_equal(pc_config_load(&cfg, write_config(
        "[listener a]\nlisten = 1.2.3.4:5\nprotocol = echo\n"
        "tls_session_cache = off\ntls_handshake_timeout = 250ms\n"), NULL,
        err, sizeof err), 0);
    unlink(path);
    const struct pc_listener_config *l = &cfg.listeners[0];
    assert_null(l->tls_ctx); /* no certificate: cleartext */
    assert_false(l->tls.session_cache);
    assert_true(l->tls.handshake_timeout == 0.25);
    assert_string_equal(l->tls.protocols, "TLSv1.2 TLSv1.3");
    assert_int_equal(l->tls.max_handshakes, 256);
    assert_true(l->tls.ktls);
    pc_config_free(&cfg);
    expect_error("[listener a]\nlisten = 1.2.3.4:5\nprotocol = echo\n"
                 "tls_key = /k.pem\n", NULL,
                 ":4: [listener a] tls_key: needs tls_certificate (TLS is on "
                 "when a certificate is set)", true);
    expect_error("[listener a]\nlisten = 1.2.3.4:5\nprotocol = echo\n"
                 "tls_certificate = /nonexistent/c.pem\ntls_key = /k.pem\n",
                 NULL, ":4: [listener a] tls_certificate: /nonexistent/c.pem: "
                 "No such file", true);
    expect_error("[listener a]\nlisten = 1.2.3.4:5\nprotocol = echo\n"
                 "tls_certificate = /c.pem\n", NULL,
                 ":4: [listener a] tls_certificate: needs tls_key (the "
                 "certificate's private key)", true);
    expect_error("[listener a]\nlisten = 1.2.3.4:5\nprotocol = echo\n"
                 "tls_session_cache = sometimes\n", NULL,
                 ":4: [listener a] tls_session_cache: 'sometimes' is not on "
                 "or off", true);
    expect_error("[listener a]\nlisten = 1.2.3.4:5\nprotocol = echo\n"
                 "tls_client_verify = maybe\n", NULL,
                 "'maybe' is not one of: require optional", true);
}

/* A section given twice is refused (inih would merge the two, the later
 * keys winning), and so are two listeners that would bind one port. */
static void test_duplicates_and_overlaps(void **state)
{
    (void)state;
    expect_error("[listener a]\nlisten = 127.0.0.1:7100\nprotocol = echo\n"
                 "[server]\nworkers = 1\n[listener a]\nlisten = "
                 "127.0.0.1:7101\n", NULL,
                 ":7: [listener a]: a second section of that name (the "
                 "first is at ", true);
    static const char *const clash[][2] = {
        {"127.0.0.1:7100", "127.0.0.1:7100"},
        {"127.0.0.1:7100", "*:7100"},
        {"0.0.0.0:7100", "127.0.0.1:7100"},
        {"localhost:7100", "127.0.0.1:7100"},
        {"[::ffff:127.0.0.1]:7100", "127.0.0.1:7100"},
        {"[::]:7100", "127.0.0.1:7100"},
        {"unix:/tmp/pc-x.sock", "unix:/tmp/pc-x.sock"},
    };
    char text[512];
    for (size_t i = 0; i < sizeof clash / sizeof *clash; i++) {
        snprintf(text, sizeof text, "[listener a]\nlisten = %s\nprotocol = "
                 "echo\n[listener b]\nlisten = %s\nprotocol = echo\n",
                 clash[i][0], clash[i][1]);
        expect_error(text, NULL, "[listener b] listen: ", true);
    }
    static const char *const apart[][2] = {
        {"127.0.0.1:7100", "127.0.0.2:7100"},
        {"127.0.0.1:7100", "127.0.0.1:7101"},
        {"127.0.0.1:0", "127.0.0.1:0"},
        {"[::1]:7100", "127.0.0.1:7100"},
    };
    for (size_t i = 0; i < sizeof apart / sizeof *apart; i++) {
        snprintf(text, sizeof text, "[listener a]\nlisten = %s\nprotocol = "
                 "echo\n[listener b]\nlisten = %s\nprotocol = echo\n",
                 apart[i][0], apart[i][1]);
        struct pc_config cfg;
        char err[PC_ERR_MAX];
        int r = pc_config_load(&cfg, write_config(text), NULL, err, sizeof err);
        unlink(path);
        if (r != 0)
            fail_msg("%s and %s: %s", apart[i][0], apart[i][1], err);
        pc_config_free(&cfg);
    }
}

/* The longest line a config may have is 199 characters: exactly that
 * fits (it fills inih's buffer to the byte), one more is refused. */
static void test_a_line_of_the_maximum_length_fits(void **state)
{
    (void)state;
    char text[512], line[201];
    memset(line, 'x', sizeof line);
    line[0] = ';', line[199] = '\0';
    snprintf(text, sizeof text, "[server]\n%s\nworkers = 2\n", line);
    struct pc_config cfg;
    char err[256];
    assert_int_equal(pc_config_load(&cfg, write_config(text), NULL, err,
                                    sizeof err), 0);
    unlink(path);
    pc_config_free(&cfg);
    line[199] = 'x', line[200] = '\0';
    snprintf(text, sizeof text, "[server]\n%s\nworkers = 2\n", line);
    expect_error(text, NULL, ":2: line longer than 199 characters", true);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_value_parsers),
        cmocka_unit_test(test_defaults_give_echo_on_7007),
        cmocka_unit_test(test_good_file_and_overrides),
        cmocka_unit_test(test_bad_files_name_line_and_key),
        cmocka_unit_test(test_a_line_of_the_maximum_length_fits),
        cmocka_unit_test(test_tls_keys),
        cmocka_unit_test(test_cross_key_errors_name_the_key_at_fault),
        cmocka_unit_test(test_duplicates_and_overlaps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
