/* libev backend names. Any thread. */
#ifndef PC_WORKERS_BACKEND_H
#define PC_WORKERS_BACKEND_H

#include <stddef.h>

/* "auto", "select", "poll", "epoll", "io_uring", "linuxaio", "kqueue",
 * "port" -> libev flag (0 for auto: libev's recommendation). -EINVAL with a
 * message listing what this system supports for an unknown or unsupported
 * name. flags may be NULL. */
int pc_backend_parse(const char *name, unsigned *flags, char *err,
                     size_t errlen);
/* Name of one libev backend flag ("epoll"), "?" if unknown. */
const char *pc_backend_name(unsigned flag);

#endif
