/* Configuration: one INI file plus command-line overrides, checked in full
 * before anything is bound. Main thread only; after start-up the config is
 * read-only and may be read by any thread. */
#ifndef PC_CORE_CONFIG_H
#define PC_CORE_CONFIG_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "percore/percore.h"

#define PC_NAME_MAX 64
#define PC_ADDR_MAX 256
#define PC_ERR_MAX 600
#define PC_MAX_LISTENERS 32
/* A listener keeps one slot (its index in every per-listener table: the
 * sockets, each worker's services, the counters, pc_section_service) for
 * as long as it exists, across reloads. A removed listener holds its slot
 * until its last connection has closed, so there are more slots than
 * listeners (core/reload_listeners.c refuses a reload that needs more). */
#define PC_MAX_SLOTS 64
#define PC_MAX_MODULE_OPTIONS 32

enum pc_distribution { PC_DIST_REUSEPORT, PC_DIST_ACCEPTOR };
enum pc_tls_verify { PC_TLS_VERIFY_REQUIRE, PC_TLS_VERIFY_OPTIONAL };

struct ssl_ctx_st; /* OpenSSL's SSL_CTX */

/* A listener's TLS keys (docs/tls.md). TLS is on when certificate is set. */
struct pc_tls_config {
    char certificate[PC_ADDR_MAX]; /* PEM: the certificate, then its chain */
    char key[PC_ADDR_MAX];         /* PEM private key */
    char protocols[PC_NAME_MAX];   /* versions offered: "TLSv1.2 TLSv1.3" */
    char ciphers[PC_ADDR_MAX * 2]; /* TLS 1.2 cipher list (OpenSSL syntax) */
    char ciphersuites[PC_ADDR_MAX];/* TLS 1.3 suites */
    char alpn[PC_ADDR_MAX];        /* protocols offered, in preference order */
    char client_ca[PC_ADDR_MAX];   /* "": no client certificates */
    int client_verify;             /* enum pc_tls_verify */
    double handshake_timeout;      /* seconds from accept to a finished
                                      handshake */
    bool session_cache;            /* resumption by session tickets */
    double session_timeout;        /* seconds a session may be resumed */
    int64_t max_handshakes;        /* in progress per worker */
    bool ktls;                     /* let the kernel encrypt when it can */
};
enum pc_balance { PC_BALANCE_ROUND_ROBIN, PC_BALANCE_LEAST_CONN };

/* Parsed module options of one listener; what pc_section_* reads. */
struct pc_section {
    const char *listener;
    unsigned service;
    const struct pc_option *options;
    unsigned count;
    struct {
        int64_t i;
        double d;
        char *s;
    } values[PC_MAX_MODULE_OPTIONS];
};

struct pc_listener_config {
    char name[PC_NAME_MAX];
    unsigned slot;              /* see PC_MAX_SLOTS; = section.service */
    /* The config generation whose reload gave it the sockets it has (0:
     * bound at start): a worker that sees its own generation here takes
     * the listener's new socket from the reload mail. */
    uint64_t sockets_generation;
    char listen[PC_ADDR_MAX];   /* "host:port", "[v6]:port", "unix:/path" */
    char protocol[PC_NAME_MAX];
    const struct pc_proto *proto;
    int64_t backlog;
    int distribution;           /* enum pc_distribution */
    double idle_timeout;        /* seconds; 0 = never */
    double flush_delay;         /* seconds output may wait to share a
                                   write with later output; 0 = none */
    int64_t max_connections;    /* 0 = no limit of its own */
    int64_t max_input;          /* unconsumed input held per connection */
    int64_t max_output;         /* queued output per connection */
    int64_t high_watermark;     /* pause reading above */
    int64_t low_watermark;      /* resume (and on_drain) below */
    int64_t sndbuf, rcvbuf;     /* SO_SNDBUF/SO_RCVBUF of accepted sockets;
                                   0 = the kernel's autotuning */
    char access_log[PC_ADDR_MAX]; /* a path, "stderr", "syslog"; "" = none */
    struct pc_tls_config tls;
    /* Built from `tls` when the config is read (so -t and a reload check
     * the files); NULL without TLS. Shared by every worker: OpenSSL
     * counts its references, so an open connection keeps the one it was
     * accepted with across a reload. */
    struct ssl_ctx_st *tls_ctx;
    struct pc_section section;
    char where[PC_ADDR_MAX + 16]; /* "file:line" of the section, for errors */
    char listen_where[PC_ADDR_MAX + 16]; /* of its listen key */
};

struct pc_config {
    uint64_t generation;        /* 0 at start, then one more each reload */
    /* Retired services (a listener a reload removed, still serving its
     * open connections) that read their listener's settings here: the
     * config is freed only once this is 0. Workers add and subtract
     * (release); main reads (acquire). */
    atomic_uint retained;
    char file[PC_ADDR_MAX];     /* "" when running on built-in defaults */
    int64_t workers;            /* 0 = one per usable CPU */
    int distribution;           /* default for listeners */
    int balance;
    char backend[PC_NAME_MAX];  /* "auto" or a libev backend name */
    int64_t max_connections;    /* whole process */
    int64_t max_connections_per_worker;
    double drain_timeout;
    int log_level;
    char modules[PC_ADDR_MAX * 4]; /* shared objects to load, space separated */
    char module_dir[PC_ADDR_MAX]; /* where bare module names are; "" = the
                                     installed one */
    char pid_file[PC_ADDR_MAX]; /* "" = none */
    unsigned nlisteners;
    struct pc_listener_config listeners[PC_MAX_LISTENERS];
    /* [cluster] (core/cluster_config.c): rooms shared with other nodes
     * through Redis. Without the section nothing connects anywhere. */
    bool has_cluster;
    struct pc_section cluster;
    char cluster_where[PC_ADDR_MAX + 16]; /* "file:line" of the section */
};

/* Command-line overrides applied on top of the file, in this order:
 * listeners (--listen) then keys (--set SECTION.KEY=VALUE, where SECTION is
 * "server", "cluster" or a listener name). */
struct pc_config_overrides {
    const char *listen[PC_MAX_LISTENERS];
    unsigned nlisten;
    const char *set[128];
    /* How each set[i] was typed when it came from a shortcut option
     * ("--backend" for server.backend=...), so its errors name that; NULL
     * for --set itself. */
    const char *set_as[128];
    unsigned nset;
};

/* Reads `file` (NULL: built-in defaults, echo on 127.0.0.1:7007) and the
 * overrides into *cfg, resolving protocols and module options. On error
 * returns -EINVAL (or -errno) and writes one message naming the file, line
 * and key into err. */
int pc_config_load(struct pc_config *cfg, const char *file,
                   const struct pc_config_overrides *ov, char *err,
                   size_t errlen);
/* Frees what pc_config_load allocated (module string options). */
void pc_config_free(struct pc_config *cfg);

/* Value parsers shared by the server keys and module options. Return 0 or
 * -EINVAL / -ERANGE. */
int pc_parse_int(const char *text, int64_t *out);
int pc_parse_size(const char *text, int64_t *out);
int pc_parse_seconds(const char *text, double *out);
int pc_parse_bool(const char *text, bool *out);

/* Looks up a protocol by name among built-in and loaded modules. */
const struct pc_proto *pc_proto_find(const char *name);
/* The i-th protocol linked into percored, or NULL past the last: what the
 * man page generator lists (deploy/man/ini_man.c). */
const struct pc_proto *pc_proto_builtin(unsigned i);
/* dlopen()s a module, checks its ABI and registers it. */
int pc_proto_load(const char *path, char *err, size_t errlen);
/* A module named by [server] modules: a path (with a '/') is loaded as
 * it is; a bare name ("upper", "upper.so") is NAME.so in module_dir, or
 * when that is "" in the installed module directory (PREFIX/lib/percore/
 * modules; a build tree's modules/). A missing one is an error naming the
 * file looked for. */
int pc_proto_load_named(const char *spec, const char *module_dir, char *err,
                        size_t errlen);

#endif
