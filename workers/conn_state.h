/* What conn.c (a connection's life, input) and output.c (its output)
 * share about one connection. Internal to workers/; every function runs
 * on the connection's worker. */
#ifndef PC_WORKERS_CONN_STATE_H
#define PC_WORKERS_CONN_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ev.h>

#include "percore/percore.h"

struct pc_conn;
struct pc_service;

/* The loop of c's worker (needs workers/worker.h). */
#define CONN_LOOP(c) ((c)->svc->w->loop)

/* Puts c on its worker's pending list (flushed, re-offered, or freed
 * before the loop blocks). */
void pc_conn_mark_pending(struct pc_conn *c);
/* Records activity: c moves to the tail of its idle list. */
void pc_conn_touch(struct pc_conn *c);
/* Makes c's watcher ask for what c now needs (read, write, neither). */
void pc_conn_set_events(struct pc_conn *c);
/* Keeps the worker's queued-output gauge in step; `before` is c's queue
 * size before the change. */
void pc_conn_account_output(struct pc_conn *c, size_t before);
/* Marks c dead with `why`; it is freed in the pending pass. */
void pc_conn_kill(struct pc_conn *c, enum pc_close_reason why);

/* Offers bytes read (plaintext, for TLS) to the module: on_data, keeping
 * what it leaves, within max_input. */
void pc_conn_deliver(struct pc_conn *c, const char *data, size_t len);
/* Whether c takes input now (not closing, held or over its high
 * watermark). */
bool pc_conn_reading(const struct pc_conn *c);
/* Has c read again in the pending pass, without waiting for its socket
 * (input buffered inside OpenSSL). */
void pc_conn_reoffer(struct pc_conn *c);
/* The peer sends no more: send what is queued, then close (PC_CLOSE_PEER). */
void pc_conn_peer_eof(struct pc_conn *c);
/* A TLS handshake finished: c joins its idle list and the module gets
 * on_open. */
void pc_conn_opened(struct pc_conn *c);
/* Bytes of c not yet written: its queue and, for TLS, sealed records. */
size_t pc_conn_unsent(struct pc_conn *c);

/* The watcher callback of every connection. */
void pc_conn_io_cb(struct ev_loop *loop, ev_io *io, int revents);
/* Adds c to / takes it off its service's list (the handshake list while
 * PC_CONN_HANDSHAKE, else the idle list). */
void pc_conn_list_append(struct pc_conn *c);
void pc_conn_list_unlink(struct pc_conn *c);

/* Debug lines (conn_log.c): whether they are on, and one per accept,
 * refusal and close. */
bool pc_conn_log_on(void);
void pc_conn_log_accept(struct pc_conn *c);
void pc_conn_log_refused(struct pc_service *s, int fd, const char *why);
/* The peer of socket fd as text ("127.0.0.1:5123", "[::1]:80", "unix"). */
const char *pc_fd_peer(int fd, char *buf, size_t size);
void pc_conn_log_close(struct pc_conn *c, enum pc_close_reason why);

/* ---- access log (conn_access.c) ----------------------------------------
 * Only connections accepted while their listener has an access_log carry
 * this, after everything else in their allocation: struct pc_conn stays at
 * its 128 bytes and costs nothing more when no log is kept. */
struct pc_conn_access {
    double opened;     /* the worker loop's time at the accept */
    uint64_t in, out;  /* bytes read from and written to the socket (TLS:
                          out only; its socket BIO counts what it read) */
    char peer[48];     /* taken at the accept: a reset peer has none later */
};
/* Bytes a connection needs for its record, padding included. */
size_t pc_conn_access_extra(void);
/* Sets up c's record (c just accepted, flagged PC_CONN_ACCESS). */
void pc_conn_access_open(struct pc_conn *c);
/* c's record, or NULL when it keeps none. */
struct pc_conn_access *pc_conn_access_of(struct pc_conn *c);
/* Counts socket bytes for the record, if c keeps one (a flag test
 * otherwise: beside a system call, nothing). */
void pc_conn_count(struct pc_conn *c, uint64_t in, uint64_t out);
/* Queues c's line (before its socket and TLS state are freed). */
void pc_conn_access_close(struct pc_conn *c, enum pc_close_reason why);

/* Writes what c's socket takes now. */
void pc_conn_flush_now(struct pc_conn *c);
/* Flushes c unless its socket refused bytes: then waits for EV_WRITE. */
void pc_conn_flush_when_writable(struct pc_conn *c);
/* Lets c's output wait for its listener's flush_delay. */
void pc_conn_delay_flush(struct pc_conn *c);
/* Takes c off its listener's delayed list, if it is on it. */
void pc_conn_undelay(struct pc_conn *c);
/* Takes a cut c off its worker's cut list. */
void pc_conn_cut_list_remove(struct pc_conn *c);

#endif
