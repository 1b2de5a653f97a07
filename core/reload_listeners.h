/* What a reload does to the listeners, on the main thread: match the new
 * config's listeners to the running ones, give each a slot, open the
 * sockets it needs, then (all of them open) commit. Workers and the
 * acceptor learn the result by mail (core/server.c) and apply it on their
 * own threads; main never touches their services.
 *
 * Listeners match by section name. Same name and protocol: the same
 * listener, in the same slot, keeping its connections and module state;
 * a changed `listen` or `distribution` moves it to new sockets, a changed
 * `backlog` is applied to its sockets (listen() again). A changed
 * protocol is a removal plus an addition. Sockets match by address: a
 * new or moved listener on the address a removed or moved one leaves
 * takes that one's sockets over (so two listeners can swap addresses,
 * and a module can change under an address), anything else is bound
 * before the reload commits, so a bind failure refuses the whole reload
 * and changes nothing. */
#ifndef PC_CORE_RELOAD_LISTENERS_H
#define PC_CORE_RELOAD_LISTENERS_H

#include <stdbool.h>
#include <stddef.h>

struct pc_server;
struct pc_config;
struct pc_listener_plan;

/* Plans cfg's listener set against the running one: slots (cfg's
 * listeners' slot and section.service are set), sockets opened, the
 * acceptor thread started if cfg needs one and none runs. cfg->generation
 * must be set. Returns 0 and *out, or -errno with one message in err and
 * nothing changed (every socket it opened closed again). Main thread. */
int pc_listeners_prepare(struct pc_server *srv, struct pc_config *cfg,
                         struct pc_listener_plan **out, char *err,
                         size_t errlen);
/* Undoes a prepared plan that will not be committed, and frees it. */
void pc_listeners_abandon(struct pc_server *srv, struct pc_listener_plan *p);
/* Makes the plan the server's: srv->listeners hold cfg's sockets by
 * slot, the sockets no listener keeps are queued to be closed (reuseport
 * ones are their workers' to close), removed listeners' slots are marked
 * retired, and each change is logged. Frees the plan. Cannot fail. Call
 * before srv->cfg becomes the new config. */
void pc_listeners_commit(struct pc_server *srv, struct pc_listener_plan *p);
/* Worker `worker`'s reuseport socket of each slot of cfg (-1: none), an
 * array of PC_MAX_SLOTS for its reload mail; NULL on out of memory. */
int *pc_listeners_worker_fds(const struct pc_server *srv,
                             const struct pc_config *cfg, unsigned worker);
/* Closes (and unlinks, for Unix sockets) the acceptor-mode sockets a
 * reload left once the acceptor thread no longer watches them; all of
 * them with `all` (the acceptor is stopped). Main thread. */
void pc_listeners_close_released(struct pc_server *srv, bool all);

#endif
