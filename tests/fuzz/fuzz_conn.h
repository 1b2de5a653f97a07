/* What the targets that drive a real percored over TCP share
 * (fuzz_conn_input: chat and irc; fuzz_web_input: HTTP and WebSocket):
 * the server started in the fuzzer's process, the loopback clients with
 * their reads, writes, half-closes and resets, the budget of pauses per
 * input, the record loop, and the end of an input (every client
 * half-closes and reads to the server's close; the server's connection
 * gauge back to zero).
 *
 * The records (after the target's own byte 0): a header byte h, bit 7
 * picks the client (B if it exists), bits 4-6 the operation, bits 0-3 an
 * argument k:
 *   0-3  the target's own (fuzz_write_op); fuzz_raw_write is the plain
 *        write: L bytes that follow, L = (op << 8) + the next byte, in
 *        pieces of k + 1 bytes when k < 15 (one write each), else whole
 *   4    read what has come, after waiting up to k * 100 us for it
 *   5    half-close (shutdown SHUT_WR)
 *   6    reset: SO_LINGER 0 and close, an RST for the server
 *   7    pause k * 100 us without reading
 * (the pauses and waits of one input add up to 10 ms at most).
 *
 * Threads: everything here runs on the fuzzer's thread; the server runs
 * its own. Failures abort (CHECK), so libFuzzer saves the input. */
#ifndef PC_TESTS_FUZZ_CONN_H
#define PC_TESTS_FUZZ_CONN_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/config.h"
#include "core/server.h"

/* Sanitized threads on two shared cores are slow: generous, still far
 * below the fuzzer's -timeout. */
#define FUZZ_DEADLINE 10.0

/* The server, started by fuzz_server_start; it runs until the process
 * exits, its memory reachable from here, so the exit-time leak check is
 * quiet about it and loud about anything a connection lost. */
extern struct pc_server fuzz_srv;

/* From LLVMFuzzerInitialize: logging, SIGPIPE ignored, the config of
 * `ov` (nothing else: no file) loaded and the server started; aborts
 * with the config's error, prefixed by `target`, if it does not load. */
void fuzz_server_start(const char *target,
                       const struct pc_config_overrides *ov);

/* 127.0.0.1 and the port the kernel gave listener `listener` (its index
 * in the overrides' --listen order). */
void fuzz_listener_addr(unsigned listener, struct sockaddr_in *addr);

double fuzz_now(void);

/* One client; a target embeds it first in its own client and gets its
 * bytes through take, which checks them (the cast back is the target's). */
struct fuzz_client {
    int fd;            /* -1 once reset */
    bool write_closed; /* by us, or the server went away */
    bool reset;        /* we reset it: its output is not checked */
    bool eof;
    bool aborted; /* the server reset it (closed with input unread) */
    void (*take)(struct fuzz_client *c, const char *data, size_t n);
};

/* The clients of one input (one or two) and what is left of its budget
 * of pauses. */
struct fuzz_session {
    struct fuzz_client *clients[2];
    unsigned n;
    unsigned budget;
};

/* Opens c (zeroed by the caller but for take) to addr, TCP_NODELAY. */
void fuzz_client_connect(struct fuzz_client *c, const struct sockaddr_in *addr);

/* Reads what is there into c->take; false once the server has closed. */
bool fuzz_drain(struct fuzz_client *c);

/* Writes all of d (unless the server closes), reading every client's
 * output while the socket is full, as a client would, so the server can
 * go on; aborts after FUZZ_DEADLINE without progress. */
void fuzz_send(struct fuzz_session *s, struct fuzz_client *c, const uint8_t *d,
               size_t n);
void fuzz_send_pieces(struct fuzz_session *s, struct fuzz_client *c,
                      const uint8_t *d, size_t n, size_t piece);

/* An operation 0-3: data[i] is the byte after the header; returns the
 * index after what it used (at most size). */
typedef size_t (*fuzz_write_op)(struct fuzz_session *s, struct fuzz_client *c,
                                unsigned op, unsigned k, const uint8_t *data,
                                size_t size, size_t i);
size_t fuzz_raw_write(struct fuzz_session *s, struct fuzz_client *c,
                      unsigned op, unsigned k, const uint8_t *data, size_t size,
                      size_t i);

/* Runs the records of data from index i on (see the top). */
void fuzz_run_records(struct fuzz_session *s, const uint8_t *data, size_t size,
                      size_t i, fuzz_write_op write_op);

/* Reads until nothing has come for a quiet millisecond (or 20 ms have
 * passed), so that events still between the workers reach the clients. */
void fuzz_settle(struct fuzz_session *s);

/* Every client still open half-closes and reads to the server's close;
 * aborts if the server does not close one within FUZZ_DEADLINE. The
 * clients' fds stay open for the target's last checks: fuzz_client_close. */
void fuzz_finish(struct fuzz_session *s);
void fuzz_client_close(struct fuzz_client *c);

/* Aborts unless the server's connection gauge comes back to zero (every
 * connection closed, on_close run, its slot released) in FUZZ_DEADLINE. */
void fuzz_wait_no_connections(void);

#endif
