/* Accepting from a listening socket, shared by reuseport workers and the
 * acceptor thread. */
#ifndef PC_WORKERS_ACCEPT_H
#define PC_WORKERS_ACCEPT_H

#include <stdint.h>

struct pc_accept_result {
    unsigned accepted;
    unsigned errors;
    unsigned exhausted; /* connections dropped because fds ran out */
};

/* Opens the reserved fd used to accept-and-close when fds run out. */
int pc_accept_spare_open(void);

/* Accepts up to `max` connections (non-blocking, close-on-exec) and passes
 * each to deliver(). When the process is out of fds (EMFILE/ENFILE) it
 * gives up the spare fd to accept the next connection and close it, so a
 * level-triggered listener does not spin, then stops: the caller should
 * pause the listener briefly (result.exhausted > 0). Calling thread owns
 * lfd's watcher and *spare. */
struct pc_accept_result pc_accept_batch(int lfd, int *spare, unsigned max,
                                        void (*deliver)(void *arg, int fd),
                                        void *arg);

#define PC_ACCEPT_PAUSE 0.1 /* seconds a listener rests after EMFILE */

#endif
