/* percore-bench's command line: what to run, parsed and checked before any
 * socket is opened. */
#ifndef PCB_CONFIG_H
#define PCB_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PCB_MAX_CPUS    256
#define PCB_MAX_THREADS 256
#define PCB_MAX_ADDRS   8 /* --addr given again: connections take turns */
#define PCB_MAX_PIDS    8 /* --server-pid given again: CPU summed */

enum pcb_mode {
    PCB_ECHO,
    PCB_CHURN,
    PCB_IDLE,
    PCB_CHAT,
    PCB_HANDSHAKE,
    PCB_WS, /* chat's rooms and measurements over WebSocket (ws.c) */
};
#define PCB_MODES (PCB_WS + 1)
enum pcb_target {
    PCB_TARGET_PERCORE,
    PCB_TARGET_REDIS,
    PCB_TARGET_NATS,
    PCB_TARGET_IRC,
    PCB_TARGET_WEB,       /* ws: percored's web face, JSON messages */
    PCB_TARGET_BROADCAST, /* ws: a server that sends every text message
                             to every client (bench/baselines/) */
    PCB_TARGETS
};

/* irc: the most text a line may carry. A relayed line is at most 512
 * bytes with its CR LF (RFC 2812), and before the text come the sender's
 * ":nick!user@host" (a host name up to 63), " PRIVMSG #channel :". */
#define PCB_IRC_MAX_TEXT 384
/* irc: members joining at once (per thread), unless told. ngircd accepts
 * one connection per turn of its loop behind a backlog of 10, and a join
 * costs a server the channel's NAMES and a JOIN line to every member; the
 * SYNs an overflowing backlog drops wait a second or more to come back. */
#define PCB_IRC_CONNECT_CONCURRENCY 8

struct pcb_addr {
    char host[256];
    char port[16];
};

struct pcb_config {
    enum pcb_mode mode;
    enum pcb_target target; /* chat: whose pub/sub dialect to speak */
    /* The servers: connection (chat: member) i goes to addr[i % naddrs],
     * so one room can be split over several nodes of a cluster. */
    struct pcb_addr addr[PCB_MAX_ADDRS];
    unsigned naddrs;
    unsigned connections;
    unsigned threads;
    int cpus[PCB_MAX_CPUS]; /* thread i runs on cpus[i % ncpus] */
    unsigned ncpus;
    uint64_t size;          /* bytes per message (chat: per line of text) */
    unsigned pipeline;      /* messages in flight per connection */
    double rate;            /* messages (churn: connections) per second in
                               all; 0 = closed loop */
    double duration;        /* seconds measured */
    double warmup;          /* seconds run before measuring */
    double drain;           /* seconds to wait for answers after stopping */
    double connect_timeout; /* seconds for all connections to be set up */
    uint64_t messages;      /* stop after this many (echo, churn); 0 = time */
    unsigned rooms, members, senders; /* chat: per room */
    unsigned stalled;                 /* chat: members per room that stop
                                         reading once measuring starts */
    char room[32];                    /* chat: room name prefix */
    bool tls;                         /* echo --tls; handshake: always */
    unsigned tls_version;             /* 12 or 13: the only version offered */
    bool resume;   /* handshake: offer the last session's ticket */
    char sni[256]; /* server name sent in the ClientHello */
    unsigned connect_concurrency; /* connects in flight per thread */
    /* Sample these processes' CPU time and RSS (summed; each one's CPU
     * is reported too: the nodes of a cluster and its Redis). */
    int server_pid[PCB_MAX_PIDS];
    unsigned npids;
    char ready_file[4096];        /* written once every connection is set up */
    bool json;
    bool quiet;
};

enum { PCB_ARGS_RUN = 0, PCB_ARGS_EXIT = 1 };

/* Fills cfg from argv ("percore-bench MODE [OPTIONS]"). Returns
 * PCB_ARGS_RUN, PCB_ARGS_EXIT after printing --help or --version to stdout,
 * or -EINVAL with a one-line reason in err. Resets getopt, so it may be
 * called more than once in a process. */
int pcb_args_parse(struct pcb_config *cfg, int argc, char **argv, char *err,
                   size_t errlen);

/* The pieces, for the tests. Each returns 0 or -EINVAL. */
/* "10", "2.5s", "500ms", "2m", "100us" -> seconds. */
int pcb_parse_duration(const char *s, double *out);
/* "64", "4K", "1M", "1G" (powers of 1024) -> bytes. */
int pcb_parse_size(const char *s, uint64_t *out);
/* "1000", "60k", "1.5M" (powers of 1000) -> a count or rate. */
int pcb_parse_number(const char *s, double *out);
/* "1", "0-3", "0,2,4-5" -> CPU numbers in order. */
int pcb_parse_cpus(const char *s, int *cpus, unsigned max, unsigned *n);
/* "host:port", "[v6]:port" or ":port"/"port" (127.0.0.1). */
int pcb_parse_addr(const char *s, char *host, size_t hostlen, char *port,
                   size_t portlen);

const char *pcb_mode_name(enum pcb_mode m);
/* chat and ws: rooms of members, deliveries timed from their senders. */
static inline bool pcb_rooms_mode(enum pcb_mode m)
{
    return m == PCB_CHAT || m == PCB_WS;
}

/* args_ws.c: ws mode's --target (percore means its web face; web and
 * broadcast only here) and --room against the web face's room names; for
 * chat mode, refuses the WebSocket targets. 0, or -EINVAL with the reason
 * in err. */
int pcb_check_ws(struct pcb_config *cfg, char *err, size_t errlen);

/* args_tls.c: "1.2" or "1.3" -> 12 or 13; 0 or -EINVAL. */
int pcb_parse_tls_version(const char *s, unsigned *out);
/* The TLS options against the mode (after the mode's defaults are set):
 * 0, or -EINVAL with the reason in err. tls_given: --tls, --tls-version
 * or --sni was on the command line. */
int pcb_check_tls(struct pcb_config *cfg, bool tls_given, char *err,
                  size_t errlen);

/* usage.c: what --help prints. */
extern const char pcb_usage_text[];

/* ---- targets.c: the servers chat mode speaks to ---- */
const char *pcb_target_name(enum pcb_target t);
/* Its usual port, the default of --addr in chat mode. */
const char *pcb_target_port(enum pcb_target t);
/* Whether a sender receives its own lines back (IRC: no). */
bool pcb_target_self_echo(enum pcb_target t);
/* "percore", "redis", "nats" or "irc"; 0 or -EINVAL. */
int pcb_parse_target(const char *s, enum pcb_target *t);

/* Load thread `thread`'s connections: [*first, *first + *count). */
void pcb_thread_share(const struct pcb_config *cfg, unsigned thread,
                      unsigned *first, unsigned *count);
/* chat: the deliveries each line owes: the room's members that keep
 * reading, less the sender where the server does not echo. */
unsigned pcb_chat_fanout(const struct pcb_config *cfg);
/* chat, closed loop, where the server does not echo: the member (by
 * index) whose receipt of a line of member `sender` lets the next one go,
 * on the sender's thread; -1 if there is none. */
long pcb_chat_witness(const struct pcb_config *cfg, unsigned sender);

#endif
