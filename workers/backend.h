/* libev backend names. Any thread. */
#ifndef PC_WORKERS_BACKEND_H
#define PC_WORKERS_BACKEND_H

#include <stddef.h>

/* "auto", "select", "poll", "epoll", "io_uring", "linuxaio", "kqueue",
 * "port" -> libev flag (for auto: libev's recommendation less the backends
 * percore refuses, 0 if that leaves none). -EINVAL with a one-line message
 * naming what is offered here for an unknown name, one this system lacks,
 * or one percore refuses (io_uring with libev <= 4.33: it aborts under
 * connection churn; the message says so). flags may be NULL. */
int pc_backend_parse(const char *name, unsigned *flags, char *err,
                     size_t errlen);
/* Name of one libev backend flag ("epoll"), "?" if unknown. */
const char *pc_backend_name(unsigned flag);
/* "auto select poll epoll": the names pc_backend_parse accepts here, into
 * buf (truncated to len). Returns the length it wanted. */
size_t pc_backend_offered(char *buf, size_t len);

#endif
