/* The acceptor thread: accepts on every listener in "acceptor" mode and
 * hands each socket to a worker through the worker's mailbox. The
 * listening sockets stay the main thread's; a reload hands the thread the
 * new set (pc_acceptor_update), and main closes the sockets it left once
 * pc_acceptor_generation shows it has moved on. */
#ifndef PC_WORKERS_ACCEPTOR_H
#define PC_WORKERS_ACCEPTOR_H

#include <stdbool.h>
#include <stdint.h>

struct pc_server;
struct pc_acceptor;
struct pc_config;

/* Starts the thread if any listener of srv->cfg uses acceptor mode, or
 * always with even_if_idle (a reload about to add one); *out stays NULL
 * otherwise. Main thread, after the workers were created. */
int pc_acceptor_start(struct pc_server *srv, bool even_if_idle,
                      struct pc_acceptor **out);
/* Hands the thread cfg's acceptor-mode listeners (their sockets in
 * srv->listeners, by slot): it watches the new sockets, stops watching
 * the ones no longer there (handing what they queued to the workers
 * first), then publishes cfg->generation and rings srv->acceptor_moved.
 * Send after the workers' reload mail, so a worker knows a new listener
 * before its first connection. Aborts on out of memory. Main thread. */
void pc_acceptor_update(struct pc_acceptor *a, const struct pc_config *cfg,
                        const struct pc_server *srv);
/* The generation of the config the thread last applied; UINT64_MAX for
 * NULL (no thread reads any config). Any thread. */
uint64_t pc_acceptor_generation(struct pc_acceptor *a);
/* Stops accepting and joins the thread. Main thread. NULL is fine. */
void pc_acceptor_stop(struct pc_acceptor *a);

#endif
