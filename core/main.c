/* percored: command line, config check, and the server's life. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/config.h"
#include "core/file_replace.h"
#include "core/install_dirs.h"
#include "core/listener.h"
#include "core/log.h"
#include "core/reload_cli.h"
#include "core/reload_status.h"
#include "core/server.h"
#include "core/stats_cli.h"
#include "workers/backend.h"

static void usage(FILE *out)
{
    char backends[128], docs[PATH_MAX];
    pc_backend_offered(backends, sizeof backends);
    if (pc_install_dir(PC_DIR_DOC, docs, sizeof docs) < 0)
        snprintf(docs, sizeof docs, "/usr/share/doc/percored");
    fprintf(out,
"Usage: percored [OPTIONS]\n"
"A reactor-per-core TCP server: one event loop per CPU, protocol modules.\n"
"\n"
"  -c, --config FILE          read FILE (INI); without it: built-in defaults\n"
"  -t, --test                 check the configuration and exit\n"
"  -l, --listen [NAME=]PROTO@ADDR\n"
"                             add a listener, e.g. echo@127.0.0.1:7007,\n"
"                             chat@[::]:6667, echo@unix:/run/echo.sock\n"
"  -w, --workers N|auto       worker threads (default: usable CPUs)\n"
"  -d, --distribution reuseport|acceptor\n"
"      --balance round-robin|least-connections   (acceptor mode)\n"
"  -b, --backend NAME         libev's backend, one of: %s\n"
"                             auto is libev's pick (epoll on Linux), the one\n"
"                             to run; select and poll are for comparing.\n"
"                             io_uring is refused with libev <= 4.33: it\n"
"                             aborts the process under connection churn\n"
"      --log-level err|warning|notice|info|debug\n"
"  -s, --set SECTION.KEY=VALUE   any config key: server.max_connections=1000,\n"
"                             echo.idle_timeout=30 (SECTION = listener name)\n"
"      --reload               ask the running percored to reload (SIGHUP) and\n"
"                             wait for its answer: exit 0 applied, 1 refused\n"
"                             (the reason printed); the process is found by\n"
"                             --pid, else by server.pid_file of the config\n"
"      --pid FILE|PID         the pid file (or, under systemd, $MAINPID)\n"
"      --stats                print the running server's statistics, a row a\n"
"                             worker and a row a listener (needs a metrics\n"
"                             listener in the config) and exit\n"
"  -h, --help                 this help\n"
"  -V, --version              the version\n"
"\n"
"Signals: TERM/INT drain and stop, HUP reloads, USR1 logs statistics.\n"
"\n"
"Docs: %s/\n"
"      operations.md (running it), systemd.md, tls.md, protocols/chat.md,\n"
"      irc.md, web.md; man percored(8), percored.ini(5)\n",
            backends, docs);
}

/* The option just parsed as the user typed it ("--backend", "-b"), for
 * the errors about its value: getopt has left optind after its argument,
 * which is either a word of its own or glued on ("--backend=x", "-bx"). */
static const char *typed_option(char **argv, int next, const char *arg,
                                char *buf, size_t size)
{
    const char *word = argv[next - 1];
    if (word == arg && next >= 2)
        word = argv[next - 2];
    size_t n = strcspn(word, "=");
    if (word[0] == '-' && word[1] != '-')
        n = 2;
    snprintf(buf, size, "%.*s", (int)n, word);
    return buf;
}

/* -t: everything pc_config_load checked, plus the listen addresses. */
/* A start-up failure for the operator: under systemd (ExecStartPre=
 * percored -t) it must reach the journal as an error, not as info. */
static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%spercored: ", pc_log_journal() ? "<3>" : "");
    vfprintf(stderr, fmt, ap);
    va_end(ap);
}

static int check_config(const struct pc_config *cfg, const char *file)
{
    char err[PC_ERR_MAX];
    for (unsigned i = 0; i < cfg->nlisteners; i++) {
        struct pc_sockaddr a;
        if (pc_listen_parse(cfg->listeners[i].listen, &a, err, sizeof err) <
            0) {
            fail("%s: [listener %s] listen: %s\n",
                    cfg->listeners[i].listen_where, cfg->listeners[i].name,
                    err);
            return 1;
        }
    }
    printf("percored: configuration %s is valid (%u listeners)\n",
           file ? file : "(built-in defaults)", cfg->nlisteners);
    return 0;
}

/* The pid file appears whole or not at all, so `kill $(cat FILE)` never
 * reads half a number. */
static int write_pid_file(const char *path)
{
    char text[32];
    snprintf(text, sizeof text, "%ld\n", (long)getpid());
    int e = pc_file_replace(path, text);
    if (e < 0)
        pc_log(PC_LOG_ERR, "pid_file %s: %s", path, strerror(-e));
    return e;
}

/* Removed only if it is still ours: a second percored started on the
 * same file owns it now. */
static void remove_pid_file(const char *path)
{
    FILE *f = fopen(path, "r");
    char line[32];
    long pid = 0;
    if (!f)
        return;
    if (fgets(line, sizeof line, f)) {
        char *end;
        errno = 0;
        pid = strtol(line, &end, 10);
        if (errno || end == line || (*end && *end != '\n'))
            pid = 0;
    }
    fclose(f);
    if (pid == (long)getpid())
        (void)unlink(path);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"test", no_argument, NULL, 't'},
        {"listen", required_argument, NULL, 'l'},
        {"workers", required_argument, NULL, 'w'},
        {"distribution", required_argument, NULL, 'd'},
        {"balance", required_argument, NULL, 'B'},
        {"backend", required_argument, NULL, 'b'},
        {"log-level", required_argument, NULL, 'L'},
        {"set", required_argument, NULL, 's'},
        {"stats", no_argument, NULL, 'S'},
        {"reload", no_argument, NULL, 'R'},
        {"pid", required_argument, NULL, 'P'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    static const struct { int opt; const char *key; } shortcuts[] = {
        {'w', "workers"}, {'d', "distribution"}, {'B', "balance"},
        {'b', "backend"}, {'L', "log_level"},
    };
    static struct pc_config_overrides ov;
    static char sets[128][PC_ADDR_MAX];
    static char typed[128][PC_NAME_MAX];
    const char *file = NULL, *pid_arg = NULL;
    bool test = false, stats = false, reload = false;
    int c;
    pc_log_init();
    while ((c = getopt_long(argc, argv, "c:tl:w:d:b:s:hV", opts, NULL)) != -1) {
        switch (c) {
        case 'c': file = optarg; break;
        case 't': test = true; break;
        case 'S': stats = true; break;
        case 'R': reload = true; break;
        case 'P': pid_arg = optarg; break;
        case 'h': usage(stdout); return 0;
        case 'V': printf("percored %s\n", PC_VERSION); return 0;
        case 'l':
            if (ov.nlisten == PC_MAX_LISTENERS) {
                fprintf(stderr, "percored: too many --listen\n");
                return 2;
            }
            ov.listen[ov.nlisten++] = optarg;
            break;
        case 's':
        case 'w': case 'd': case 'B': case 'b': case 'L':
            if (ov.nset == 128) {
                fprintf(stderr, "percored: too many --set\n");
                return 2;
            }
            if (c == 's') {
                ov.set[ov.nset++] = optarg;
                break;
            }
            for (size_t i = 0; i < sizeof shortcuts / sizeof *shortcuts; i++)
                if (shortcuts[i].opt == c)
                    snprintf(sets[ov.nset], sizeof sets[0], "server.%s=%s",
                             shortcuts[i].key, optarg);
            ov.set[ov.nset] = sets[ov.nset];
            ov.set_as[ov.nset] = typed_option(argv, optind, optarg,
                                              typed[ov.nset], sizeof typed[0]);
            ov.nset++;
            break;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "percored: unexpected argument '%s' (see --help)\n",
                argv[optind]);
        return 2;
    }

    if (reload && pid_arg)
        return pc_reload_request(pid_arg);

    struct pc_config *cfg = malloc(sizeof *cfg);
    char err[PC_ERR_MAX];
    if (!cfg || pc_config_load(cfg, file, &ov, err, sizeof err) < 0) {
        fail("%s\n", cfg ? err : "out of memory");
        free(cfg);
        return 1;
    }
    if (reload && !*cfg->pid_file) {
        fail("--reload: %s sets no server.pid_file: give --pid FILE|PID\n",
             file ? file : "the built-in configuration");
        pc_config_free(cfg);
        free(cfg);
        return 1;
    }
    if (stats || test || reload) {
        int status = stats    ? pc_stats_print(cfg, stdout)
                     : reload ? pc_reload_request(cfg->pid_file)
                              : check_config(cfg, file);
        pc_config_free(cfg);
        free(cfg);
        return status;
    }

    static struct pc_server srv;
    (void)pthread_setname_np(pthread_self(), "pc-main");
    /* Written before the start, so a failing start can still say why;
     * the config is freed by pc_server_run, so the path is kept here. */
    char pid_file[sizeof cfg->pid_file];
    snprintf(pid_file, sizeof pid_file, "%s", cfg->pid_file);
    if (*pid_file && write_pid_file(pid_file) < 0) {
        pc_config_free(cfg);
        free(cfg);
        return 1;
    }
    if (pc_server_start(&srv, cfg) < 0) {
        if (*pid_file)
            remove_pid_file(pid_file);
        pc_config_free(cfg);
        free(cfg);
        return 1;
    }
    srv.config_file = file;
    srv.overrides = &ov;
    if (pc_reload_status_path(pid_file, srv.reload_status,
                              sizeof srv.reload_status) < 0)
        *srv.reload_status = '\0';
    int status = pc_server_run(&srv); /* frees the config */
    if (*pid_file)
        remove_pid_file(pid_file);
    pc_reload_status_remove(srv.reload_status);
    return status;
}
