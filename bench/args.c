/* The command line of percore-bench. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "percore/percore.h" /* PC_VERSION */

#define CHAT_MIN_SIZE 44

static int errf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int errf(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

const char *pcb_mode_name(enum pcb_mode m)
{
    static const char *const names[] = {"echo", "churn", "idle", "chat",
                                        "handshake", "ws"};
    return names[m];
}

/* A finite, non-negative decimal and what follows it. */
static int leading_number(const char *s, double *v, const char **rest)
{
    char *end;
    if (!*s || *s == '-' || *s == '+' || *s == ' ')
        return -EINVAL;
    errno = 0;
    *v = strtod(s, &end);
    if (end == s || errno || !isfinite(*v) || *v < 0)
        return -EINVAL;
    /* strtod takes hex and "inf"; a command line means decimal. */
    for (const char *p = s; p < end; p++)
        if (!((*p >= '0' && *p <= '9') || *p == '.' || *p == 'e' || *p == 'E' ||
              *p == '-' || *p == '+'))
            return -EINVAL;
    *rest = end;
    return 0;
}

int pcb_parse_duration(const char *s, double *out)
{
    static const struct {
        const char *unit;
        double mul;
    } units[] = {
        {"", 1}, {"s", 1}, {"ms", 1e-3}, {"us", 1e-6}, {"m", 60}, {"h", 3600},
    };
    double v;
    const char *rest;
    if (leading_number(s, &v, &rest) < 0)
        return -EINVAL;
    for (size_t i = 0; i < sizeof units / sizeof *units; i++)
        if (strcmp(rest, units[i].unit) == 0) {
            *out = v * units[i].mul;
            return 0;
        }
    return -EINVAL;
}

static int scaled(const char *s, double base, double *out)
{
    double v;
    const char *rest;
    if (leading_number(s, &v, &rest) < 0)
        return -EINVAL;
    static const char suffixes[] = "kmg";
    double mul = 1;
    if (*rest) {
        const char *p = strchr(suffixes, rest[0] | 0x20);
        if (!p || rest[1])
            return -EINVAL;
        for (long i = 0; i <= p - suffixes; i++)
            mul *= base;
    }
    *out = v * mul;
    return 0;
}

int pcb_parse_size(const char *s, uint64_t *out)
{
    double v;
    if (scaled(s, 1024, &v) < 0 || v != floor(v) || v >= 0x1p63)
        return -EINVAL;
    *out = (uint64_t)v;
    return 0;
}

int pcb_parse_number(const char *s, double *out)
{
    return scaled(s, 1000, out);
}

static int parse_uint(const char *s, unsigned long max, unsigned long *out)
{
    double v;
    if (pcb_parse_number(s, &v) < 0 || v != floor(v) || v > (double)max)
        return -EINVAL;
    *out = (unsigned long)v;
    return 0;
}

int pcb_parse_cpus(const char *s, int *cpus, unsigned max, unsigned *n)
{
    *n = 0;
    const char *p = s;
    for (;;) {
        char *end;
        if (*p < '0' || *p > '9')
            return -EINVAL;
        unsigned long lo = strtoul(p, &end, 10), hi = lo;
        p = end;
        if (*p == '-') {
            p++;
            if (*p < '0' || *p > '9')
                return -EINVAL;
            hi = strtoul(p, &end, 10);
            p = end;
        }
        if (hi < lo || hi >= 4096)
            return -EINVAL;
        for (unsigned long c = lo; c <= hi; c++) {
            if (*n == max)
                return -EINVAL;
            cpus[(*n)++] = (int)c;
        }
        if (!*p)
            return 0;
        if (*p++ != ',')
            return -EINVAL;
    }
}

int pcb_parse_addr(const char *s, char *host, size_t hostlen, char *port,
                   size_t portlen)
{
    const char *h = "127.0.0.1", *p;
    size_t hl = strlen(h);
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':')
            return -EINVAL;
        h = s + 1;
        hl = (size_t)(close - h);
        p = close + 2;
    } else if ((p = strrchr(s, ':'))) {
        if (p != s) {
            h = s;
            hl = (size_t)(p - s);
            if (memchr(h, ':', hl)) /* a bare IPv6 address needs [] */
                return -EINVAL;
        }
        p++;
    } else {
        p = s;
    }
    unsigned long v;
    if (!*p || strspn(p, "0123456789") != strlen(p) ||
        parse_uint(p, 65535, &v) < 0 || v == 0 || hl == 0 || hl >= hostlen ||
        strlen(p) >= portlen)
        return -EINVAL;
    memcpy(host, h, hl);
    host[hl] = '\0';
    snprintf(port, portlen, "%lu", v);
    return 0;
}

static int parse_mode(const char *s, enum pcb_mode *m)
{
    for (int i = PCB_ECHO; i < PCB_MODES; i++)
        if (strcmp(s, pcb_mode_name(i)) == 0) {
            *m = i;
            return 0;
        }
    return -EINVAL;
}

enum {
    O_CPUS = 256,
    O_DRAIN,
    O_CTIMEOUT,
    O_CCONC,
    O_PID,
    O_READY,
    O_JSON,
    O_TARGET,
    O_ROOMS,
    O_MEMBERS,
    O_SENDERS,
    O_STALLED,
    O_ROOM,
    O_TLS,
    O_TLS_VERSION,
    O_SNI,
    O_RESUME,
};

/* A closed loop against a server that does not echo: each sender needs a
 * member of its room on its own thread to hear its lines. */
static int check_witnesses(const struct pcb_config *cfg, char *err,
                           size_t errlen)
{
    if (pcb_target_self_echo(cfg->target) || cfg->rate > 0)
        return 0;
    for (unsigned slot = 0; slot < cfg->senders; slot++)
        for (unsigned r = 0; r < cfg->rooms; r++)
            if (pcb_chat_witness(cfg, slot * cfg->rooms + r) < 0)
                return errf(err, errlen,
                            "chat --target %s, closed loop: a sender does "
                            "not hear its own lines, so another member "
                            "of its room on its thread must; sender %u of "
                            "room %u has none (more --members, fewer "
                            "--threads or --stalled, or --rate)",
                            pcb_target_name(cfg->target), slot, r);
    return 0;
}

/* Options given explicitly, to tell a default from a choice. */
struct given {
    bool addr, connections, size, pipeline, rate, messages, duration, cconc;
    bool tls; /* --tls, --tls-version or --sni */
};

static int check(struct pcb_config *cfg, const struct given *g, char *err,
                 size_t errlen)
{
    const char *mode = pcb_mode_name(cfg->mode);
    if (pcb_check_ws(cfg, err, errlen) < 0)
        return -EINVAL;
    if (pcb_rooms_mode(cfg->mode)) {
        if (g->connections)
            return errf(err, errlen,
                        "chat: use --rooms and --members "
                        "instead of --connections");
        if (g->messages)
            return errf(err, errlen,
                        "chat: --messages is not supported; "
                        "use --duration");
        if (!cfg->rooms || !cfg->members)
            return errf(err, errlen,
                        "chat: --rooms and --members must be "
                        "at least 1");
        if (cfg->senders > cfg->members)
            return errf(err, errlen,
                        "chat: --senders (%u) cannot exceed "
                        "--members (%u)",
                        cfg->senders, cfg->members);
        if (cfg->stalled > cfg->members - cfg->senders)
            return errf(err, errlen,
                        "chat: --stalled (%u) members must not be senders: "
                        "at most --members - --senders (%u)",
                        cfg->stalled, cfg->members - cfg->senders);
        if (!g->size)
            cfg->size = 64;
        unsigned max = cfg->target == PCB_TARGET_IRC ? PCB_IRC_MAX_TEXT : 4000;
        if (cfg->size < CHAT_MIN_SIZE || cfg->size > max)
            return errf(err, errlen,
                        "chat: --size must be %d to %u bytes "
                        "(a line carries a sequence number and a "
                        "timestamp%s)",
                        CHAT_MIN_SIZE, max,
                        max < 4000 ? "; an IRC line with its sender's "
                                     "prefix stays within 512 bytes"
                                   : "");
        if ((double)cfg->rooms * cfg->members > 1e6)
            return errf(err, errlen, "chat: at most 1,000,000 members");
        cfg->connections = cfg->rooms * cfg->members;
        size_t n = strlen(cfg->room);
        if (!n || n > 20 ||
            strspn(cfg->room, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                              "abcdefghijklmnopqrstuvwxyz0123456789_-.#") != n)
            return errf(err, errlen,
                        "--room: 1 to 20 characters of A-Z a-z "
                        "0-9 _ - . #");
        if (!g->addr)
            snprintf(cfg->addr[0].port, sizeof cfg->addr[0].port, "%s",
                     pcb_target_port(cfg->target));
        if (!g->cconc && cfg->target == PCB_TARGET_IRC)
            cfg->connect_concurrency = PCB_IRC_CONNECT_CONCURRENCY;
    } else if (cfg->target != PCB_TARGET_PERCORE) {
        return errf(err, errlen, "--target is for chat and ws modes only");
    }
    if (!g->connections)
        cfg->connections = cfg->mode == PCB_ECHO        ? 100
                           : cfg->mode == PCB_CHURN     ? 16
                           : cfg->mode == PCB_HANDSHAKE ? 16
                           : cfg->mode == PCB_IDLE      ? 1000
                                                        : cfg->connections;
    if (!cfg->connections)
        return errf(err, errlen, "--connections must be at least 1");
    if (cfg->mode == PCB_ECHO || cfg->mode == PCB_CHURN) {
        if (!g->size)
            cfg->size = 64;
        if (!cfg->size)
            return errf(err, errlen, "%s: --size must be at least 1 byte",
                        mode);
    }
    if (g->pipeline && cfg->mode != PCB_ECHO && !pcb_rooms_mode(cfg->mode))
        return errf(err, errlen, "%s: --pipeline is for echo and chat", mode);
    if (g->rate && cfg->mode != PCB_ECHO && !pcb_rooms_mode(cfg->mode))
        return errf(err, errlen, "%s: --rate is for echo and chat", mode);
    if (cfg->stalled && !pcb_rooms_mode(cfg->mode))
        return errf(err, errlen, "%s: --stalled is for chat", mode);
    if (g->rate && g->pipeline)
        return errf(err, errlen,
                    "--rate (open loop) and --pipeline (closed "
                    "loop) exclude each other");
    if (pcb_check_tls(cfg, g->tls, err, errlen) < 0)
        return -EINVAL;
    if (g->messages && cfg->mode == PCB_IDLE)
        return errf(err, errlen,
                    "idle: --messages makes no sense; use "
                    "--duration to say how long to hold");
    if (g->messages && g->duration)
        return errf(err, errlen, "give --messages or --duration, not both");
    if (g->messages && cfg->warmup > 0)
        return errf(err, errlen,
                    "--messages counts every message; drop "
                    "--warmup");
    if (g->messages && cfg->rate > 0)
        return errf(err, errlen, "--messages runs a closed loop; drop --rate");
    if (!cfg->pipeline)
        return errf(err, errlen, "--pipeline must be at least 1");
    if (!cfg->messages && cfg->duration <= 0)
        return errf(err, errlen, "--duration must be more than 0");
    if (cfg->threads > cfg->connections)
        cfg->threads = cfg->connections;
    if (pcb_rooms_mode(cfg->mode))
        return check_witnesses(cfg, err, errlen);
    return 0;
}

static const char *option_name(const struct option *opts, int c)
{
    static __thread char buf[40];
    for (; opts->name; opts++)
        if (opts->val == c) {
            snprintf(buf, sizeof buf, "--%s", opts->name);
            return buf;
        }
    return "option";
}

int pcb_args_parse(struct pcb_config *cfg, int argc, char **argv, char *err,
                   size_t errlen)
{
    static const struct option opts[] = {
        {"addr", required_argument, NULL, 'a'},
        {"connections", required_argument, NULL, 'c'},
        {"threads", required_argument, NULL, 't'},
        {"cpus", required_argument, NULL, O_CPUS},
        {"duration", required_argument, NULL, 'd'},
        {"warmup", required_argument, NULL, 'w'},
        {"drain", required_argument, NULL, O_DRAIN},
        {"connect-timeout", required_argument, NULL, O_CTIMEOUT},
        {"connect-concurrency", required_argument, NULL, O_CCONC},
        {"server-pid", required_argument, NULL, O_PID},
        {"ready-file", required_argument, NULL, O_READY},
        {"json", no_argument, NULL, O_JSON},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {"size", required_argument, NULL, 's'},
        {"pipeline", required_argument, NULL, 'p'},
        {"rate", required_argument, NULL, 'r'},
        {"messages", required_argument, NULL, 'n'},
        {"target", required_argument, NULL, O_TARGET},
        {"rooms", required_argument, NULL, O_ROOMS},
        {"members", required_argument, NULL, O_MEMBERS},
        {"senders", required_argument, NULL, O_SENDERS},
        {"stalled", required_argument, NULL, O_STALLED},
        {"room", required_argument, NULL, O_ROOM},
        {"tls", no_argument, NULL, O_TLS},
        {"tls-version", required_argument, NULL, O_TLS_VERSION},
        {"sni", required_argument, NULL, O_SNI},
        {"resume", no_argument, NULL, O_RESUME},
        {NULL, 0, NULL, 0},
    };
    memset(cfg, 0, sizeof *cfg);
    snprintf(cfg->addr[0].host, sizeof cfg->addr[0].host, "127.0.0.1");
    snprintf(cfg->addr[0].port, sizeof cfg->addr[0].port, "7007");
    cfg->naddrs = 1;
    snprintf(cfg->room, sizeof cfg->room, "bench");
    cfg->threads = 1;
    cfg->pipeline = 1;
    cfg->duration = 10;
    cfg->drain = 5;
    cfg->connect_timeout = 30;
    cfg->connect_concurrency = 256;
    cfg->rooms = 1;
    cfg->members = 100;
    cfg->senders = 1;
    cfg->tls_version = 13;
    snprintf(cfg->sni, sizeof cfg->sni, "localhost");
    struct given g = {0};

    /* GNU getopt permutes: options may come before or after the mode. */
    optind = 0; /* start over, also after an earlier parse */
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":a:c:t:d:w:qhVs:p:r:n:", opts,
                            NULL)) != -1) {
        unsigned long u;
        double d;
        const char *name = option_name(opts, c);
        switch (c) {
        case 'h':
            fputs(pcb_usage_text, stdout);
            return PCB_ARGS_EXIT;
        case 'V':
            printf("percore-bench %s\n", PC_VERSION);
            return PCB_ARGS_EXIT;
        case 'a': {
            unsigned n = g.addr ? cfg->naddrs : 0; /* the first replaces
                                                      the default */
            if (n == PCB_MAX_ADDRS)
                return errf(err, errlen, "--addr: at most %d servers",
                            PCB_MAX_ADDRS);
            struct pcb_addr *a = &cfg->addr[n];
            if (pcb_parse_addr(optarg, a->host, sizeof a->host, a->port,
                               sizeof a->port) < 0)
                return errf(err, errlen,
                            "--addr '%s': expected HOST:PORT, "
                            "like 127.0.0.1:7007 or [::1]:7007",
                            optarg);
            cfg->naddrs = n + 1;
            g.addr = true;
            break;
        }
        case 'c':
        case 't':
        case O_CCONC:
        case 'p':
        case O_ROOMS:
        case O_MEMBERS:
        case O_SENDERS:
        case O_STALLED:
        case O_PID:
            if (parse_uint(optarg, c == O_PID ? 0x7fffffff : 10000000, &u) < 0)
                return errf(err, errlen, "%s '%s': expected a whole number",
                            name, optarg);
            if (c == 'c') {
                cfg->connections = (unsigned)u;
                g.connections = true;
            } else if (c == 't') {
                if (u < 1 || u > PCB_MAX_THREADS)
                    return errf(err, errlen, "--threads: 1 to %d",
                                PCB_MAX_THREADS);
                cfg->threads = (unsigned)u;
            } else if (c == O_CCONC) {
                cfg->connect_concurrency = u ? (unsigned)u : 1;
                g.cconc = true;
            } else if (c == 'p') {
                cfg->pipeline = (unsigned)u;
                g.pipeline = true;
            } else if (c == O_ROOMS) {
                cfg->rooms = (unsigned)u;
            } else if (c == O_MEMBERS) {
                cfg->members = (unsigned)u;
            } else if (c == O_SENDERS) {
                cfg->senders = (unsigned)u;
            } else if (c == O_STALLED) {
                cfg->stalled = (unsigned)u;
            } else if (cfg->npids == PCB_MAX_PIDS) {
                return errf(err, errlen, "--server-pid: at most %d "
                            "processes", PCB_MAX_PIDS);
            } else {
                cfg->server_pid[cfg->npids++] = (int)u;
            }
            break;
        case O_CPUS:
            if (pcb_parse_cpus(optarg, cfg->cpus, PCB_MAX_CPUS, &cfg->ncpus) <
                0)
                return errf(err, errlen,
                            "--cpus '%s': expected CPU numbers "
                            "like 1, 0-3 or 0,2",
                            optarg);
            break;
        case 'd':
        case 'w':
        case O_DRAIN:
        case O_CTIMEOUT:
            if (pcb_parse_duration(optarg, &d) < 0)
                return errf(err, errlen,
                            "%s '%s': expected a time like 10, "
                            "2.5s, 500ms or 1m",
                            name, optarg);
            if (c == 'd') {
                cfg->duration = d;
                g.duration = true;
            } else if (c == 'w') {
                cfg->warmup = d;
            } else if (c == O_DRAIN) {
                cfg->drain = d;
            } else {
                cfg->connect_timeout = d;
            }
            break;
        case 's':
            if (pcb_parse_size(optarg, &cfg->size) < 0 ||
                cfg->size > (1u << 30))
                return errf(err, errlen,
                            "--size '%s': expected bytes up to "
                            "1G, like 64, 4K or 1M",
                            optarg);
            g.size = true;
            break;
        case 'r':
            if (pcb_parse_number(optarg, &cfg->rate) < 0)
                return errf(err, errlen,
                            "--rate '%s': expected a number per "
                            "second, like 60000 or 60k",
                            optarg);
            g.rate = cfg->rate > 0;
            break;
        case 'n':
            if (pcb_parse_number(optarg, &d) < 0 || d != floor(d) || d < 1 ||
                d > 1e18)
                return errf(err, errlen,
                            "--messages '%s': expected a whole "
                            "number, like 100000 or 100k",
                            optarg);
            cfg->messages = (uint64_t)d;
            g.messages = true;
            break;
        case O_READY:
            if (strlen(optarg) >= sizeof cfg->ready_file)
                return errf(err, errlen, "--ready-file: path too long");
            snprintf(cfg->ready_file, sizeof cfg->ready_file, "%s", optarg);
            break;
        case O_JSON:
            cfg->json = true;
            break;
        case 'q':
            cfg->quiet = true;
            break;
        case O_TARGET:
            if (pcb_parse_target(optarg, &cfg->target) < 0)
                return errf(err, errlen,
                            "--target '%s': expected percore, "
                            "redis, nats or irc (ws: percore or "
                            "broadcast)",
                            optarg);
            break;
        case O_ROOM:
            snprintf(cfg->room, sizeof cfg->room, "%.*s",
                     (int)sizeof cfg->room - 1, optarg);
            if (strlen(optarg) >= sizeof cfg->room)
                cfg->room[0] = '\0'; /* rejected by check() */
            break;
        case O_TLS:
            cfg->tls = g.tls = true;
            break;
        case O_TLS_VERSION:
            if (pcb_parse_tls_version(optarg, &cfg->tls_version) < 0)
                return errf(err, errlen,
                            "--tls-version '%s': expected 1.2 or 1.3", optarg);
            g.tls = true;
            break;
        case O_SNI:
            if (!*optarg || strlen(optarg) >= sizeof cfg->sni ||
                strspn(optarg, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstu"
                               "vwxyz0123456789-.") != strlen(optarg))
                return errf(err, errlen,
                            "--sni '%s': expected a host name, like "
                            "localhost",
                            optarg);
            snprintf(cfg->sni, sizeof cfg->sni, "%s", optarg);
            g.tls = true;
            break;
        case O_RESUME:
            cfg->resume = true;
            break;
        case ':':
            return errf(err, errlen, "%s needs a value", argv[optind - 1]);
        default:
            return errf(err, errlen, "unknown option '%s' (see --help)",
                        argv[optind - 1]);
        }
    }
    if (optind >= argc)
        return errf(err, errlen,
                    "which mode? echo, churn, idle, chat, "
                    "handshake or ws "
                    "(see --help)");
    if (parse_mode(argv[optind], &cfg->mode) < 0)
        return errf(err, errlen,
                    "unknown mode '%s': expected echo, churn, "
                    "idle, chat, handshake or ws",
                    argv[optind]);
    if (optind + 1 < argc)
        return errf(err, errlen, "unexpected argument '%s' (see --help)",
                    argv[optind + 1]);
    return check(cfg, &g, err, errlen);
}
