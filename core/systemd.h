/* systemd integration: readiness and status (sd_notify), socket activation
 * (LISTEN_FDS) and the service watchdog. Started by anything else, every
 * function here finds nothing to do, so callers need no checks of their own.
 *
 * Main thread only, unless a function says otherwise. */
#ifndef PC_CORE_SYSTEMD_H
#define PC_CORE_SYSTEMD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/config.h"

struct pc_listener;
struct pc_server;

/* ---- socket activation --------------------------------------------------
 * systemd passes one socket per ListenStream= of the socket units that
 * trigger percored.service, each named by its unit's FileDescriptorName=.
 * A socket is matched to the listener of the same name; listeners with no
 * socket of their name bind their own. */

struct pc_inherited {
    int fd;
    bool taken;
    char name[PC_NAME_MAX];
};

struct pc_activation {
    struct pc_inherited fds[PC_MAX_LISTENERS];
    unsigned n;
};

/* Takes the sockets systemd passed to this process (LISTEN_PID must be
 * ours) and removes LISTEN_* from the environment. Each is checked to be a
 * listening stream socket and made non-blocking. Returns how many were
 * passed (0 when none), or a negative errno with a message in err, the
 * passed sockets then closed. */
int pc_activation_collect(struct pc_activation *a, char *err, size_t errlen);

/* The passed socket named `name`, now owned by the caller, or -1. */
int pc_activation_take(struct pc_activation *a, const char *name);

/* If systemd passed a socket named after listener lc, makes it l's only
 * socket and returns 1 (0: none, bind as usual). One socket cannot be one
 * per worker, so such a listener is served by the acceptor thread whatever
 * its distribution says; its address is systemd's (ListenStream=), and a
 * different one in the config is logged. */
int pc_systemd_adopt(struct pc_activation *a, struct pc_listener_config *lc,
                     struct pc_listener *l);

/* After every listener took its socket: a socket left over was meant for a
 * listener the config does not have, which is an error (its clients would
 * wait for ever). Returns 0, or -ENOENT with a message naming the socket;
 * either way closes the sockets left over. */
int pc_activation_finish(struct pc_activation *a, char *err, size_t errlen);

/* ---- watchdog decision ---------------------------------------------------
 * Every check, the main thread rings each worker's doorbell; a worker whose
 * loop runs wakes up, which moves its loop counter. A worker whose counter
 * has not moved for `stale_usec` is stuck, and no WATCHDOG=1 is sent until
 * it moves again. Pure bookkeeping, kept apart so it can be tested. */

struct pc_watchdog {
    unsigned n;
    uint64_t stale_usec;
    uint64_t *loops;      /* counter value last seen, per worker */
    uint64_t *moved_usec; /* when it last changed, per worker */
    int stuck;            /* worker reported stuck, or -1 */
};

/* n workers; every counter counts as just moved at now_usec. */
int pc_watchdog_init(struct pc_watchdog *wd, unsigned n, uint64_t stale_usec,
                     uint64_t now_usec);
void pc_watchdog_free(struct pc_watchdog *wd);
/* Records each worker's loop counter at now_usec; returns -1 if every
 * worker has moved within stale_usec, else the first stuck worker. */
int pc_watchdog_check(struct pc_watchdog *wd, const uint64_t *loops,
                      uint64_t now_usec);

/* ---- the service's life --------------------------------------------------
 * Called by the server at each step; each sends its notification (if
 * NOTIFY_SOCKET is set) and logs nothing unless something needs saying. */

/* Every listener is open, every worker loop runs and signals are handled:
 * READY=1 with a STATUS= line, then timers on srv->loop for STATUS=
 * updates and, when systemd set WATCHDOG_USEC for this PID, the
 * watchdog. */
void pc_systemd_ready(struct pc_server *srv);
/* RELOADING=1 with MONOTONIC_USEC=, before re-reading the config. */
void pc_systemd_reloading(struct pc_server *srv);
/* READY=1 after a reload, whether it was applied or refused. */
void pc_systemd_reloaded(struct pc_server *srv);
/* STOPPING=1 at the start of a graceful stop, with more time asked for
 * when the drain timeout is longer than the unit's stop timeout. */
void pc_systemd_stopping(struct pc_server *srv);
/* Stops the timers and frees what ready allocated. */
void pc_systemd_detach(struct pc_server *srv);

/* The STATUS= text: "2 workers, 5 connections open, 120 accepted". Any
 * thread. */
size_t pc_systemd_status(struct pc_server *srv, char *buf, size_t size);

#endif
