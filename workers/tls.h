/* TLS below the handler interface: a connection of a TLS listener runs its
 * handshake before the module sees it (on_open comes after), reads
 * plaintext for on_data with SSL_read, and encrypts its output queue into
 * a second queue of records, which goes out with writev like cleartext.
 * Internal to workers/; every function runs on the connection's worker.
 *
 * OpenSSL reads the socket itself (a socket BIO, with read-ahead); what it
 * writes goes to a BIO of ours that appends to the connection's `wire`
 * queue, so a handshake, an alert, a session ticket or a close_notify
 * leaves through the same flush pass as the module's output and never
 * blocks inside OpenSSL. */
#ifndef PC_WORKERS_TLS_H
#define PC_WORKERS_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "workers/outq.h"

struct pc_conn;
struct pc_service;
struct ssl_st;
struct ssl_ctx_st;

/* Why a handshake did not finish: a label of
 * percore_tls_handshake_failures_total. */
enum pc_tls_failure {
    PC_TLS_FAIL_HTTP,        /* an HTTP request sent in clear */
    PC_TLS_FAIL_NOT_TLS,     /* other cleartext or garbage */
    PC_TLS_FAIL_VERSION,     /* no protocol version in common */
    PC_TLS_FAIL_CIPHER,      /* no cipher in common */
    PC_TLS_FAIL_ALPN,        /* none of the client's ALPN protocols */
    PC_TLS_FAIL_CERTIFICATE, /* the client's certificate was refused */
    PC_TLS_FAIL_TIMEOUT,     /* tls_handshake_timeout passed */
    PC_TLS_FAIL_EOF,         /* the client left mid-handshake */
    PC_TLS_FAIL_EVICTED,     /* tls_max_handshakes reached: the oldest went */
    PC_TLS_FAIL_SHUTDOWN,    /* the server stopped */
    PC_TLS_FAIL_OTHER,
    PC_TLS_FAILURES
};
const char *pc_tls_failure_name(enum pc_tls_failure why);

/* A TLS connection's own state, kept after the module's conn_size bytes
 * (cleartext connections do not pay for it). */
struct pc_tls_conn {
    struct ssl_st *ssl;
    struct pc_outq wire;  /* records encrypted, not yet written */
    bool notified;        /* close_notify (or a fatal alert) queued */
    bool ktls_send;       /* the kernel encrypts: plaintext goes out as is */
};

/* Bytes a TLS listener's connection needs beyond struct pc_conn and the
 * module's state. */
size_t pc_tls_conn_extra(void);
/* c's TLS state, or NULL for a cleartext connection. */
struct pc_tls_conn *pc_tls_of(struct pc_conn *c);

/* Bytes c's socket has given OpenSSL so far: handshake, records read
 * ahead and application data alike. 0 without TLS state. */
uint64_t pc_tls_bytes_read(struct pc_conn *c);

/* Starts the server side of a handshake on c (just accepted, flagged
 * PC_CONN_TLS | PC_CONN_HANDSHAKE, with pc_tls_conn_extra() bytes).
 * 0 or -ENOMEM. */
int pc_tls_open(struct pc_conn *c, struct ssl_ctx_st *ctx);
/* Frees c's TLS state (at close). */
void pc_tls_free(struct pc_conn *c);

/* c is readable: advances its handshake (calling on_open when it is
 * done) or reads and delivers plaintext. */
void pc_tls_readable(struct pc_conn *c);
/* Encrypts what c's output queue holds (as far as the socket is likely to
 * take it), adds close_notify once a closing c has nothing left, and
 * writes the records. Returns bytes written to the socket or -errno. */
long pc_tls_flush(struct pc_conn *c);
/* Writes close_notify now if the socket takes it, for a connection about
 * to be closed without the flush pass (an idle timeout), so its peer can
 * tell the close from a truncation. */
void pc_tls_notify_now(struct pc_conn *c);
/* Encrypted bytes not yet written. */
size_t pc_tls_unsent(struct pc_conn *c);
/* Ends a handshake that will not finish: counted and logged as `why`. */
void pc_tls_fail(struct pc_conn *c, enum pc_tls_failure why);

#endif
