/* Listening sockets: address parsing and binding. Main thread. */
#ifndef PC_CORE_LISTENER_H
#define PC_CORE_LISTENER_H

#include <stddef.h>
#include <sys/socket.h>

struct pc_sockaddr {
    struct sockaddr_storage ss;
    socklen_t len;
};

/* Parses "host:port", "[v6]:port", "*:port" (all IPv4 and IPv6),
 * "unix:/path". Resolves names with getaddrinfo (first result). Returns 0
 * or -EINVAL with a message in err. */
int pc_listen_parse(const char *text, struct pc_sockaddr *out, char *err,
                    size_t errlen);

/* Opens `count` listening sockets on addr: with SO_REUSEPORT when count >
 * 1 or reuseport is set, all on the same port (a port 0 is resolved by the
 * first bind). Non-blocking, close-on-exec. `bound` receives the address
 * actually bound. Returns 0 or -errno with a message naming the address. */
int pc_listen_open(const struct pc_sockaddr *addr, const char *text,
                   unsigned count, int reuseport, int backlog, int *fds,
                   char *bound, size_t boundlen, char *err, size_t errlen);

/* Formats an address as "127.0.0.1:7007", "[::1]:7007" or "unix:/path". */
void pc_sockaddr_format(const struct sockaddr *sa, socklen_t len, char *buf,
                        size_t size);

#endif
