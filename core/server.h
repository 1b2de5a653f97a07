/* The server: configuration, listening sockets, workers, acceptor,
 * signals and shutdown. Main thread, unless a field says otherwise. */
#ifndef PC_CORE_SERVER_H
#define PC_CORE_SERVER_H

#include <ev.h>
#include <stdatomic.h>

#include "core/config.h"
#include "workers/worker.h"

struct pc_access_log;
struct pc_acceptor;
struct pc_systemd;

/* An acceptor-mode socket a reload left: closed (and its Unix path
 * unlinked) once the acceptor has applied `generation`. */
struct pc_released_socket {
    int fd;
    uint64_t generation;
    char unlink_path[PC_ADDR_MAX]; /* "" for none */
};

/* The listening sockets of one configured listener. */
struct pc_listener {
    int fds[1024];     /* reuseport: one per worker; acceptor: fds[0] */
    unsigned nfds;
    char bound[PC_ADDR_MAX]; /* the address actually bound, port resolved */
    bool inherited;    /* fds[0] came from systemd: never unlinked */
};

struct pc_server {
    /* The acceptor thread's own accept errors and drops, per listener
     * (it has no worker counters); only it writes them. First: their
     * alignment pads nothing. */
    struct pc_listener_stats acceptor_stats[PC_MAX_SLOTS];
    struct pc_config *cfg;     /* current; replaced only by a reload */
    unsigned nworkers;
    unsigned backend;
    struct pc_worker *workers;
    /* By slot (pc_listener_config.slot), for the current config; the
     * reuseport sockets in it are their workers' to close. */
    struct pc_listener listeners[PC_MAX_SLOTS];
    /* The reload generation that removed the listener of each slot (0:
     * none): the slot is free once everyone has moved past it
     * (core/reload_listeners.c). next_slot: where the search starts. */
    uint64_t slot_retired_at[PC_MAX_SLOTS];
    unsigned next_slot;
    struct pc_released_socket *released_socks;
    unsigned nreleased_socks, released_socks_cap;
    ev_async acceptor_moved; /* the acceptor applied a reload: close what
                                it left (pc_listeners_close_released) */
    struct pc_acceptor *acceptor;
    struct pc_access_log *access_log; /* access_log.h: its writer thread */
    struct ev_loop *loop;      /* the main thread's */
    ev_signal sig_term, sig_int, sig_hup, sig_usr1;
    ev_timer stop_timer;
    /* Start-up handshake: each worker counts itself ready, then waits for
     * main to release it; main releases once all are ready or one failed. */
    pthread_mutex_t start_lock;
    pthread_cond_t start_cond;
    unsigned ready;
    bool released;
    bool start_failed; /* under start_lock */
    /* For a reload: what the config was loaded from. */
    const char *config_file;
    const struct pc_config_overrides *overrides;
    /* Where each reload's outcome is recorded (reload_status.h), "" for
     * nowhere; set before pc_server_run. */
    char reload_status[PC_ADDR_MAX + 32];
    uint64_t reload_attempts; /* SIGHUPs handled */
    /* Configs a reload replaced, oldest first: each is freed once every
     * worker and the acceptor have taken a later one (cfg_generation,
     * pc_acceptor_generation) and no retired service retains it. */
    struct pc_config **old_cfgs;
    unsigned nold, old_cap;
    /* Any thread: admission counters, updated with atomic RMW on open and
     * close of every connection. */
    atomic_uint_fast64_t connections;
    atomic_uint_fast64_t listener_connections[PC_MAX_SLOTS]; /* by slot */
    atomic_uint workers_running;
    atomic_uint workers_drained; /* draining workers left with no conns */
    ev_async drained;            /* the last drained worker rings main */
    double start_time; /* seconds since the epoch, for the metrics */
    bool stopping;
    struct pc_systemd *systemd; /* notify and watchdog state (systemd.c) */
};

/* Binds every listener, starts workers (and the acceptor if any listener
 * uses it), and returns once every worker loop runs. On failure logs the
 * reason and returns a negative errno with nothing left running. */
int pc_server_start(struct pc_server *srv, struct pc_config *cfg);
/* Runs the main loop until shutdown completes (SIGTERM/SIGINT then drain).
 * Returns the process exit status. Frees the config (which start took over,
 * heap-allocated) and every config a reload replaced. */
int pc_server_run(struct pc_server *srv);
/* Sends one mail of `kind` (with cfg) to every worker: DRAIN or STOP (a
 * reload's mail carries each worker's sockets: core/server.c); aborts on
 * out of memory rather than leave a worker behind. Any thread. */
void pc_server_broadcast_mail(struct pc_server *srv, enum pc_mail_kind kind,
                              const struct pc_config *cfg);
/* Opens lc's listening sockets into l: one per worker (reuseport) or one.
 * 0, or -errno with the reason in err. Main thread. */
int pc_server_bind(const struct pc_server *srv,
                   const struct pc_listener_config *lc, struct pc_listener *l,
                   char *err, size_t errlen);
/* Begins a graceful stop: no more accepts, then drain. Main thread. */
void pc_server_stop(struct pc_server *srv);
/* Re-reads the config and applies what can change live, the listener set
 * included (core/reload_listeners.h), or, if any of it cannot be applied
 * (a config error, a socket that cannot be bound), nothing. Main thread. */
void pc_server_reload(struct pc_server *srv);
/* Called by each worker once its modules are initialised (error = 0) or
 * failed; returns false if the server will not start. Worker thread. */
bool pc_server_worker_ready(struct pc_server *srv, int error);

/* Admission: reserves room for one connection of service s on worker w.
 * Returns false (nothing reserved) if a limit is reached. Worker thread. */
bool pc_server_admit(struct pc_server *srv, struct pc_worker *w,
                     const struct pc_service *s);
/* Releases what pc_server_admit reserved for listener slot `slot`.
 * Worker thread. */
void pc_server_release(struct pc_server *srv, unsigned slot);

#endif
