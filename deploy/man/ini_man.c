/* Prints percored.ini(5) from the tables the config parser itself uses
 * (pc_server_keys, pc_listener_keys, and each built-in module's
 * struct pc_option list), so the manual cannot drift from the parser: a
 * key added to a table appears here with its type, range and default, and
 * the build fails until it has a sentence below (and when a sentence names
 * a key that no longer exists). Run at build time; writes to stdout. */
#include <stdio.h>
#include <string.h>

#include <percore/percore.h>

#include "core/cluster_config.h"
#include "core/config.h"
#include "core/config_keys.h"

struct key_help {
    const char *section; /* "server" or "listener" */
    const char *name;
    const char *text;    /* roff-safe: no leading '.' or '\'' */
};

/* One sentence or two per key; the details live in docs/operations.md. */
static const struct key_help help[] = {
    {"server", "workers", "Worker threads, each with its own event loop "
     "pinned to one CPU: 1 to 1024, or auto for the CPUs this process may "
     "use (affinity and cgroup quota). Needs a restart."},
    {"server", "distribution", "How listeners spread connections over "
     "workers unless a listener says otherwise: reuseport (one socket per "
     "worker, the kernel spreads) or acceptor (one thread accepts and hands "
     "each connection to a worker). Needs a restart."},
    {"server", "balance", "How the acceptor picks a worker: round-robin or "
     "least-connections. Needs a restart."},
    {"server", "backend", "libev backend: auto (epoll on Linux), select, "
     "poll or epoll. Needs a restart."},
    {"server", "max_connections", "Open connections in the whole process; "
     "0 means no limit. Keep it below LimitNOFILE= of the unit."},
    {"server", "max_connections_per_worker", "Open connections per worker; "
     "0 means no limit."},
    {"server", "drain_timeout", "Seconds open connections may keep running "
     "after SIGTERM before they are closed."},
    {"server", "log_level", "err, warning, notice, info or debug."},
    {"server", "modules", "Protocol modules to load, separated by spaces: "
     "a bare name (upper, or upper.so) is NAME.so in module_dir, a name "
     "with a '/' is a path. Needs a restart."},
    {"server", "module_dir", "Where bare module names are looked up; empty: "
     "the installed module directory, /usr/lib/percore/modules for the "
     "package (PREFIX/lib/percore/modules; a build tree's modules/). Needs "
     "a restart."},
    {"server", "pid_file", "A file the process id is written to, atomically, "
     "before the start, and removed at exit; empty: none. The systemd unit "
     "needs none. Needs a restart."},
    {"listener", "listen", "HOST:PORT, [IPv6]:PORT, *:PORT (every IPv4 and "
     "IPv6 address) or unix:/path. Required. Needs a restart."},
    {"listener", "protocol", "The protocol module serving this listener: a "
     "built-in one (below) or the name of a loaded module. Required."},
    {"listener", "backlog", "Length of the kernel's queue of connections not "
     "yet accepted. Needs a restart."},
    {"listener", "distribution", "reuseport or acceptor; without it, "
     "[server] distribution applies. Unix sockets and sockets passed by "
     "systemd always use the acceptor. Needs a restart."},
    {"listener", "idle_timeout", "Seconds without a byte in either direction "
     "before a connection is closed; 0 means never."},
    {"listener", "flush_delay", "Longest a connection's output may wait so "
     "that more output leaves in the same write; 0 writes once per loop "
     "pass."},
    {"listener", "max_connections", "Open connections on this listener; 0 "
     "means no limit."},
    {"listener", "max_input", "Input the protocol may leave unprocessed "
     "before the connection is closed."},
    {"listener", "max_output", "Output queued for one connection before it "
     "is closed as a reader that does not read."},
    {"listener", "high_watermark", "Reading from a connection pauses while "
     "this much output is queued for it."},
    {"listener", "low_watermark", "Reading resumes once the queued output is "
     "down to this."},
    {"listener", "sndbuf", "Kernel send buffer of each accepted socket "
     "(SO_SNDBUF); 0 leaves the kernel's autotuning on."},
    {"listener", "rcvbuf", "Kernel receive buffer of each accepted socket "
     "(SO_RCVBUF); 0 leaves the kernel's autotuning on."},
    {"listener", "access_log", "Where one line per closed connection goes "
     "(time, listener, peer, worker, duration, bytes in and out, close "
     "reason, TLS version): an absolute path (opened for appending, "
     "reopened at every reload, for logrotate), stderr or syslog; empty: "
     "none. Written by a thread of its own, never by the workers."},
    {"listener", "tls_certificate", "PEM certificate and its chain; with "
     "tls_key it turns TLS on for this listener, whatever the protocol. "
     "Read again on reload."},
    {"listener", "tls_key", "PEM private key of tls_certificate."},
    {"listener", "tls_protocols", "TLS versions offered: TLSv1.2, TLSv1.3."},
    {"listener", "tls_ciphers", "TLS 1.2 cipher list, in OpenSSL's syntax."},
    {"listener", "tls_ciphersuites", "TLS 1.3 cipher suites, in OpenSSL's "
     "syntax."},
    {"listener", "tls_alpn", "ALPN protocols offered, in order of "
     "preference; a client that offers only others is refused."},
    {"listener", "tls_client_ca", "CA file that signs accepted client "
     "certificates; empty means none are asked for."},
    {"listener", "tls_client_verify", "With tls_client_ca: require or "
     "optional."},
    {"listener", "tls_handshake_timeout", "Seconds from accept to a "
     "finished handshake."},
    {"listener", "tls_session_cache", "Resumption by session tickets."},
    {"listener", "tls_session_timeout", "Lifetime of a session ticket in "
     "seconds; ticket keys rotate at this period."},
    {"listener", "tls_max_handshakes", "Handshakes running at once per "
     "worker; past it the oldest is dropped."},
    {"listener", "tls_ktls", "Let the kernel encrypt after the handshake "
     "where it offers kTLS."},
};

static const struct key_help *help_for(const char *section, const char *name)
{
    for (size_t i = 0; i < sizeof help / sizeof *help; i++)
        if (!strcmp(help[i].section, section) && !strcmp(help[i].name, name))
            return &help[i];
    return NULL;
}

static const char *key_type(const struct key_spec *k)
{
    switch (k->type) {
    case K_INT: return "integer";
    case K_SIZE: return "size";
    case K_SECONDS: return "seconds";
    case K_STRING: return "string";
    case K_ENUM: return "choice";
    case K_WORKERS: return "integer or auto";
    case K_LOGLEVEL: return "log level";
    case K_BACKEND: return "backend";
    case K_BOOL: return "boolean";
    }
    return "?";
}

static const char *option_type(enum pc_option_type t)
{
    switch (t) {
    case PC_OPT_INT: return "integer";
    case PC_OPT_SIZE: return "size";
    case PC_OPT_SECONDS: return "seconds";
    case PC_OPT_BOOL: return "boolean";
    case PC_OPT_STRING: return "string";
    }
    return "?";
}

/* Text in roff: a backslash is printed as one, a '-' is a real
 * hyphen-minus, and a line may break after ':' (the cipher lists are longer
 * than a line). */
static void roff(const char *s)
{
    for (; *s; s++) {
        if (*s == '\\')
            fputs("\\e", stdout);
        else if (*s == '-')
            fputs("\\-", stdout);
        else if (*s == ':')
            fputs(":\\:", stdout);
        else
            putchar(*s);
    }
}

static bool numeric(enum key_type t)
{
    return t == K_INT || t == K_SIZE || t == K_SECONDS || t == K_WORKERS;
}

/* A bound as the operator writes it: sizes in K/M/G when whole. */
static void number(double v, bool size)
{
    static const char units[] = "GMK";
    for (int i = 0; size && i < 3; i++) {
        double u = (double)(1ULL << (10 * (3 - i)));
        if (v >= u && v / u == (double)(long long)(v / u)) {
            printf("%lld%c", (long long)(v / u), units[i]);
            return;
        }
    }
    printf("%.15g", v);
}

/* One .TP entry: the name, then "(type, min to max; default D)" or
 * "(one of a, b; default D)", then the text. */
static void entry(const char *name, const char *type, const char *const *ch,
                  bool ranged, bool size, double min, double max,
                  const char *dflt, const char *text)
{
    printf(".TP\n.B ");
    roff(name);
    printf("\n(");
    if (ch) {
        printf("one of ");
        for (; *ch; ch++) {
            printf("\\fB");
            roff(*ch);
            printf("\\fR%s", ch[1] ? ", " : "");
        }
    } else {
        printf("\\fI");
        roff(type);
        printf("\\fR");
    }
    if (ranged) {
        printf(", ");
        number(min, size);
        printf(" to ");
        number(max, size);
    }
    if (dflt && *dflt) {
        printf("; default \\fB");
        roff(dflt);
        printf("\\fR");
    }
    printf(")\n");
    roff(text);
    printf("\n");
}

static int keys(const char *section, const struct key_spec *t)
{
    int missing = 0;
    for (; t->name; t++) {
        const struct key_help *h = help_for(section, t->name);
        if (!h) {
            fprintf(stderr, "ini_man: [%s] %s has no description in "
                    "deploy/man/ini_man.c\n", section, t->name);
            missing++;
            continue;
        }
        entry(t->name, key_type(t), t->type == K_ENUM ? t->choices : NULL,
              numeric(t->type) && t->max > 0, t->type == K_SIZE, t->min,
              t->max, t->dflt, h->text);
    }
    return missing;
}

static int stale_help(void)
{
    int stale = 0;
    for (size_t i = 0; i < sizeof help / sizeof *help; i++) {
        const struct key_spec *t = strcmp(help[i].section, "server") == 0
                                       ? pc_server_keys
                                       : pc_listener_keys;
        if (!pc_key_find(t, help[i].name)) {
            fprintf(stderr, "ini_man: description of [%s] %s, which the "
                    "parser does not know\n", help[i].section, help[i].name);
            stale++;
        }
    }
    return stale;
}

static void modules(void)
{
    const struct pc_proto *p;
    for (unsigned i = 0; (p = pc_proto_builtin(i)); i++) {
        printf(".SS \"protocol = %s\"\n", p->name);
        if (!p->options || !p->options[0].name) {
            printf("No options of its own.\n");
            continue;
        }
        for (const struct pc_option *o = p->options; o->name; o++) {
            bool ranged = o->type != PC_OPT_BOOL && o->type != PC_OPT_STRING;
            entry(o->name, option_type(o->type), NULL, ranged,
                  o->type == PC_OPT_SIZE, o->min, o->max, o->default_value,
                  o->help ? o->help : "");
        }
    }
}

static void cluster(void)
{
    printf("Only with this section does percored share rooms with other "
           "nodes through Redis (docs/scaling.md); without it nothing "
           "connects. Every key needs a restart.\n");
    for (const struct pc_option *o = pc_cluster_options; o->name; o++) {
        bool ranged = o->type != PC_OPT_BOOL && o->type != PC_OPT_STRING;
        entry(o->name, option_type(o->type), NULL, ranged,
              o->type == PC_OPT_SIZE, o->min, o->max,
              o->default_value ? o->default_value : "the host name",
              o->help ? o->help : "");
    }
}

static const char *const head =
    ".TH PERCORED.INI 5 \"2026\" \"percore " PC_MAN_VERSION "\" "
    "\"File Formats\"\n"
    /* Left-adjusted: the long default values (cipher lists) cannot be
     * justified. */
    ".ad l\n"
    ".SH NAME\npercored.ini \\- configuration file of percored\n"
    ".SH SYNOPSIS\n.I /etc/percore/percored.ini\n"
    ".SH DESCRIPTION\n"
    "An INI file: a\n.B [server]\nsection, then one\n"
    "\\fB[listener \\fIname\\fB]\\fR\nper listening socket. Lines are\n"
    ".IB key \" = \" value\\fR;\nlines starting with ; or # are comments. "
    "Sizes take K, M or G (powers of 1024); durations are seconds, with "
    "decimals or an ms suffix. Any key can also be given on the command line "
    "as\n.BI \\-\\-set \" section\" . key = value\\fR.\n"
    "Check a file with\n.BR \"percored \\-t \\-c\" \" file\" ;\n"
    "a reload (SIGHUP) applies every key not marked as needing a restart.\n"
    ".PP\nThis page is generated from the tables the parser uses, so it "
    "lists every key it accepts.\n"
    ".SH \"[server] KEYS\"\n";

int main(void)
{
    fputs(head, stdout);
    int bad = keys("server", pc_server_keys);
    printf(".SH \"[listener NAME] KEYS\"\n");
    bad += keys("listener", pc_listener_keys);
    printf(".SH \"[cluster] KEYS\"\n");
    cluster();
    printf(".SH \"PROTOCOL OPTIONS\"\nA listener also takes the options of "
           "its protocol module. Those of the built-in modules:\n");
    modules();
    printf(".SH FILES\n.TP\n.I /etc/percore/percored.ini\nThe configuration "
           "of the packaged service.\n.TP\n.I /usr/lib/percore/modules\n"
           "Where protocol modules are installed, for\n.BR modules .\n"
           ".SH \"SEE ALSO\"\n.BR percored (8),\n.BR systemd.service (5)\n");
    bad += stale_help();
    return bad ? 1 : 0;
}
