/* The acceptor thread: accepts on every listener in "acceptor" mode and
 * hands each socket to a worker through the worker's mailbox. */
#ifndef PC_WORKERS_ACCEPTOR_H
#define PC_WORKERS_ACCEPTOR_H

struct pc_server;
struct pc_acceptor;

/* Starts the thread if any listener uses acceptor mode; *out stays NULL
 * otherwise. Main thread, after the workers were created. */
int pc_acceptor_start(struct pc_server *srv, struct pc_acceptor **out);
/* Stops accepting and joins the thread. Main thread. NULL is fine. */
void pc_acceptor_stop(struct pc_acceptor *a);

#endif
