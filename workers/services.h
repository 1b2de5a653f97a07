/* A worker's services (struct pc_service, one per listener slot): their
 * accept watchers, module instances, and what a reload changes
 * (workers/services.c). Worker thread unless a function says otherwise. */
#ifndef PC_WORKERS_SERVICES_H
#define PC_WORKERS_SERVICES_H

#include "workers/worker.h"

/* Puts s (a free slot of w) in use for listener lc of cfg, watching
 * reuseport socket fd (-1: none) once its module has started; s retains
 * cfg until it is freed. Main thread while the worker is created, then
 * the worker's thread. */
void pc_service_setup(struct pc_worker *w, struct pc_service *s,
                      const struct pc_config *cfg,
                      const struct pc_listener_config *lc, int fd);
/* Runs the module's worker_init for s; 0 or the module's error (logged). */
int pc_service_init_module(struct pc_service *s);
/* At start-up: every listener's module in config order, then accepting.
 * 0, or the first error (the caller stops the start). */
int pc_services_init(struct pc_worker *w);
/* At exit: every module instance's worker_fini, every service freed. */
void pc_services_fini(struct pc_worker *w);
/* Stops accepting and closes w's own listening sockets (a drain). */
void pc_services_stop_accepting(struct pc_worker *w);
/* Applies a reload: w moves to cfg, whose listeners' reuseport sockets
 * for this worker are fds[slot] (-1: none; PC_MAX_SLOTS of them, still
 * the caller's array). New listeners start, kept ones take new settings
 * and sockets, removed ones retire; then w->cfg_generation is published. */
void pc_services_reload(struct pc_worker *w, const struct pc_config *cfg,
                        const int *fds);
/* One connection of s has been freed; a retired service goes with its
 * last. Called by the connection code as the very last use of s. */
void pc_service_conn_closed(struct pc_service *s);

/* Whether s may take a new connection (its module started). */
static inline bool pc_service_open(const struct pc_service *s)
{
    return s->proto && s->initialised;
}

#endif
