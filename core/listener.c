#include "core/listener.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

int pc_listen_parse(const char *text, struct pc_sockaddr *out, char *err,
                    size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (strncmp(text, "unix:", 5) == 0) {
        struct sockaddr_un *un = (struct sockaddr_un *)&out->ss;
        const char *path = text + 5;
        if (!*path || strlen(path) >= sizeof un->sun_path) {
            snprintf(err, errlen, "'%s': a Unix socket path of 1 to %zu "
                     "characters is needed", text, sizeof un->sun_path - 1);
            return -EINVAL;
        }
        un->sun_family = AF_UNIX;
        memcpy(un->sun_path, path, strlen(path) + 1);
        out->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) +
                               strlen(path) + 1);
        return 0;
    }
    char host[256];
    const char *port;
    if (text[0] == '[') {
        const char *close = strchr(text, ']');
        if (!close || close[1] != ':' || (size_t)(close - text) > sizeof host) {
            snprintf(err, errlen, "'%s': expected [IPv6]:PORT", text);
            return -EINVAL;
        }
        snprintf(host, sizeof host, "%.*s", (int)(close - text - 1), text + 1);
        port = close + 2;
    } else {
        const char *colon = strrchr(text, ':');
        if (!colon || (size_t)(colon - text) >= sizeof host) {
            snprintf(err, errlen, "'%s': expected HOST:PORT, [IPv6]:PORT or "
                     "unix:/path", text);
            return -EINVAL;
        }
        snprintf(host, sizeof host, "%.*s", (int)(colon - text), text);
        port = colon + 1;
    }
    char *end;
    long p = strtol(port, &end, 10);
    if (!*port || *end || p < 0 || p > 65535) {
        snprintf(err, errlen, "'%s': port must be 0 to 65535", text);
        return -EINVAL;
    }
    /* "*" and "" mean every address, IPv4 and IPv6 (a dual-stack socket). */
    if (!*host || strcmp(host, "*") == 0)
        snprintf(host, sizeof host, "::");
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res;
    int r = getaddrinfo(host, port, &hints, &res);
    if (r != 0) {
        snprintf(err, errlen, "'%s': cannot resolve '%s': %s", text, host,
                 gai_strerror(r));
        return -EINVAL;
    }
    memcpy(&out->ss, res->ai_addr, res->ai_addrlen);
    out->len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

void pc_sockaddr_format(const struct sockaddr *sa, socklen_t len, char *buf,
                        size_t size)
{
    char host[INET6_ADDRSTRLEN];
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
        snprintf(buf, size, "%s:%u", host, ntohs(a->sin_port));
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
        snprintf(buf, size, "[%s]:%u", host, ntohs(a->sin6_port));
    } else if (sa->sa_family == AF_UNIX && len > offsetof(struct sockaddr_un,
                                                          sun_path)) {
        snprintf(buf, size, "unix:%s", ((const struct sockaddr_un *)sa)->sun_path);
    } else {
        snprintf(buf, size, "?");
    }
}

/* A socket file left by a server that died is removed; one that answers
 * belongs to a live server and is an error like a busy port. */
static int unix_prepare(const struct sockaddr_un *un, const char *text,
                        char *err, size_t errlen)
{
    struct stat st;
    if (stat(un->sun_path, &st) < 0)
        return 0;
    if (!S_ISSOCK(st.st_mode)) {
        snprintf(err, errlen, "cannot listen on %s: the path exists and is "
                 "not a socket", text);
        return -EEXIST;
    }
    int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (probe < 0)
        return -errno;
    int r = connect(probe, (const struct sockaddr *)un, sizeof *un);
    close(probe);
    if (r == 0) {
        snprintf(err, errlen, "cannot listen on %s: another server is "
                 "accepting on it", text);
        return -EADDRINUSE;
    }
    unlink(un->sun_path);
    return 0;
}

/* SO_REUSEPORT lets a second process (another percored of the same user,
 * started by mistake) bind the port too, and the kernel would split the
 * traffic between the two in silence. A bind without it first fails, as
 * it should, when anything listens there already. */
static int reuseport_probe(const struct pc_sockaddr *a, const char *text,
                           char *err, size_t errlen)
{
    int family = a->ss.ss_family, one = 1, zero = 0;
    int probe = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (probe < 0)
        return 0; /* the real socket() will report it */
    setsockopt(probe, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (family == AF_INET6)
        setsockopt(probe, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
    int r = bind(probe, (const struct sockaddr *)&a->ss, a->len) < 0 ? -errno
                                                                     : 0;
    close(probe);
    if (r == -EADDRINUSE) {
        snprintf(err, errlen, "cannot listen on %s: %s (another process "
                 "holds the port)", text, strerror(EADDRINUSE));
        return r;
    }
    return 0;
}

int pc_listen_open(const struct pc_sockaddr *addr, const char *text,
                   unsigned count, int reuseport, int backlog, int *fds,
                   char *bound, size_t boundlen, char *err, size_t errlen)
{
    struct pc_sockaddr a = *addr;
    int family = a.ss.ss_family, r = 0;
    unsigned i;
    if (family == AF_UNIX &&
        (r = unix_prepare((struct sockaddr_un *)&a.ss, text, err, errlen)) < 0)
        return r;
    if (family != AF_UNIX && reuseport &&
        (r = reuseport_probe(&a, text, err, errlen)) < 0)
        return r;
    for (i = 0; i < count; i++) {
        int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            r = -errno;
            snprintf(err, errlen, "cannot create a socket for %s: %s", text,
                     strerror(errno));
            break;
        }
        fds[i] = fd;
        int one = 1, zero = 0;
        if (family != AF_UNIX) {
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
            if (reuseport)
                setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
        }
        if (family == AF_INET6)
            setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
        if (bind(fd, (struct sockaddr *)&a.ss, a.len) < 0 ||
            listen(fd, backlog) < 0) {
            r = -errno;
            snprintf(err, errlen, "cannot listen on %s: %s%s", text,
                     strerror(errno),
                     errno == EADDRINUSE ? " (another process holds the "
                                           "port)"
                     : errno == EACCES   ? " (ports below 1024 need "
                                           "CAP_NET_BIND_SERVICE)"
                                         : "");
            i++;
            break;
        }
        if (i == 0) {
            /* Port 0 picks a free port: the other sockets must share it. */
            a.len = sizeof a.ss;
            getsockname(fd, (struct sockaddr *)&a.ss, &a.len);
            pc_sockaddr_format((struct sockaddr *)&a.ss, a.len, bound,
                               boundlen);
        }
    }
    if (r < 0)
        while (i-- > 0)
            close(fds[i]);
    return r;
}
