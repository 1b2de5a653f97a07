#include "workers/backend.h"

#include <errno.h>
#include <ev.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static const struct {
    const char *name;
    unsigned flag;
} backends[] = {
    {"select", EVBACKEND_SELECT},     {"poll", EVBACKEND_POLL},
    {"epoll", EVBACKEND_EPOLL},       {"io_uring", EVBACKEND_IOURING},
    {"linuxaio", EVBACKEND_LINUXAIO}, {"kqueue", EVBACKEND_KQUEUE},
    {"port", EVBACKEND_PORT},
};
#define NBACKENDS (sizeof backends / sizeof backends[0])

const char *pc_backend_name(unsigned flag)
{
    for (size_t i = 0; i < NBACKENDS; i++)
        if (backends[i].flag == flag)
            return backends[i].name;
    return "?";
}

int pc_backend_parse(const char *name, unsigned *flags, char *err,
                     size_t errlen)
{
    if (strcmp(name, "auto") == 0) {
        if (flags)
            *flags = 0;
        return 0;
    }
    unsigned supported = ev_supported_backends();
    bool known = false;
    for (size_t i = 0; i < NBACKENDS; i++) {
        if (strcmp(name, backends[i].name) != 0)
            continue;
        if (supported & backends[i].flag) {
            if (flags)
                *flags = backends[i].flag;
            return 0;
        }
        known = true;
    }
    size_t n = (size_t)snprintf(err, errlen, "backend '%s' is %s; this "
                                "system supports: auto", name,
                                known ? "not supported on this system"
                                      : "unknown");
    for (size_t i = 0; i < NBACKENDS && n < errlen; i++)
        if (supported & backends[i].flag)
            n += (size_t)snprintf(err + n, errlen - n, " %s",
                                  backends[i].name);
    return -EINVAL;
}
