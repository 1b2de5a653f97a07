/* percore-bench's TLS client: one SSL_CTX per run, shared by the load
 * threads (OpenSSL makes SSL objects from one context on any thread), and
 * a TLS layer under struct pcb_stream, non-blocking, driven by the same
 * libev watchers as the plain streams. The client checks no certificate
 * (SSL_VERIFY_NONE: the benchmark's are made up at run time) but sends SNI
 * and speaks exactly one TLS version. */
#ifndef PCB_TLS_H
#define PCB_TLS_H

#include <stdbool.h>

#include "bench.h"

/* The run's client context for cfg (--tls-version, --resume), or NULL
 * with the reason on stderr. */
struct ssl_ctx_st *pcb_tls_ctx_new(const struct pcb_config *cfg);
void pcb_tls_ctx_free(struct ssl_ctx_st *ctx);

/* After the TCP connect succeeded: wraps s->io.fd in a TLS client, offers
 * `session` if given (the caller keeps its reference). 0 or -1. */
int pcb_tls_begin(struct pcb_thread *t, struct pcb_stream *s,
                  struct ssl_session_st *session);
/* One step of the handshake: 1 done, 0 waiting (the watcher now waits for
 * what OpenSSL needs), -1 failed. */
int pcb_tls_handshake(struct ev_loop *loop, struct pcb_stream *s);
/* After the handshake: whether the server took the offered session. */
bool pcb_tls_resumed(const struct pcb_stream *s);
/* The newest session the server gave this stream (a TLS 1.3 ticket
 * arrives after the handshake, read by pcb_tls_read or pcb_tls_drain),
 * with a reference for the caller, or NULL. */
struct ssl_session_st *pcb_tls_take_session(struct pcb_stream *s);
/* Whether the server sent a session (ticket) on this stream yet. */
bool pcb_tls_got_session(const struct pcb_stream *s);
/* Reads what is there, expecting no application data: 0 still open,
 * 1 the server closed (close_notify or EOF), -(1 + enum pcb_error) on
 * bytes nobody asked for or a failure. Session tickets are processed on
 * the way. */
int pcb_tls_drain(struct pcb_stream *s);
/* Protocol, cipher and key-exchange group of a finished handshake, for
 * the report ("TLSv1.3", "TLS_AES_256_GCM_SHA384", "X25519"). */
void pcb_tls_describe(const struct pcb_stream *s, struct pcb_tls_info *info);

/* For net.c, under pcb_stream_flush and pcb_stream_read. */
int pcb_tls_write(struct pcb_stream *s);
long pcb_tls_read(struct pcb_thread *t, struct pcb_stream *s);
/* Sends close_notify unless the server closed first, frees the TLS
 * state; the socket stays for pcb_stream_close. */
void pcb_tls_end(struct pcb_stream *s);

#endif
