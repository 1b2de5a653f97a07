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

/* Backends percore refuses although libev offers them, and why.
 *
 * io_uring, libev up to 4.33 (the last release; io_uring came in 4.31):
 * libev reuses its submission queue entries without clearing them and, for
 * IORING_OP_POLL_REMOVE (issued when a watcher of an fd whose poll is still
 * armed is stopped or changed), leaves poll_events from the POLL_ADD that
 * used the slot before. The kernel's io_poll_remove_prep() refuses a remove
 * with events set (-EINVAL) and io_submit_sqes() ends the batch there, so
 * io_uring_enter() returns fewer than were queued and libev's
 * iouring_enter() asserts: the process aborts. Every server-side close of a
 * live connection and every write wait on a reading one is such a change;
 * it takes only 32 submissions for the ring to wrap onto used slots. percore
 * cannot keep libev from queueing these removes, so the backend is refused,
 * not offered. A libev newer than 4.33 is offered again, and
 * tests/integration/test_backends.py then puts it under the same churn as
 * every other backend offered. */
static const char *refused_why(unsigned flag)
{
    if (flag == EVBACKEND_IOURING &&
        (ev_version_major() < 4 ||
         (ev_version_major() == 4 && ev_version_minor() <= 33)))
        return "libev 4.33's io_uring backend asserts under connection "
               "churn: \"libev: io_uring_enter did not consume all sqes\"";
    return NULL;
}

static unsigned offered_backends(void)
{
    unsigned offered = 0, supported = ev_supported_backends();
    for (size_t i = 0; i < NBACKENDS; i++)
        if ((supported & backends[i].flag) && !refused_why(backends[i].flag))
            offered |= backends[i].flag;
    return offered;
}

const char *pc_backend_name(unsigned flag)
{
    for (size_t i = 0; i < NBACKENDS; i++)
        if (backends[i].flag == flag)
            return backends[i].name;
    return "?";
}

size_t pc_backend_offered(char *buf, size_t len)
{
    unsigned offered = offered_backends();
    size_t n = (size_t)snprintf(buf, len, "auto");
    for (size_t i = 0; i < NBACKENDS && n < len; i++)
        if (offered & backends[i].flag)
            n += (size_t)snprintf(buf + n, len - n, " %s", backends[i].name);
    return n;
}

int pc_backend_parse(const char *name, unsigned *flags, char *err,
                     size_t errlen)
{
    if (strcmp(name, "auto") == 0) {
        /* libev's recommendation, less what percore refuses (4.33 does not
         * recommend io_uring; a libev built to would not slip it in). 0
         * if that leaves nothing: libev's own choice. */
        if (flags)
            *flags = ev_recommended_backends() & offered_backends();
        return 0;
    }
    unsigned supported = ev_supported_backends();
    const char *why = "unknown";
    for (size_t i = 0; i < NBACKENDS; i++) {
        if (strcmp(name, backends[i].name) != 0)
            continue;
        /* cppcheck-suppress unreadVariable ; read after the break below */
        why = "not supported on this system";
        if (!(supported & backends[i].flag))
            break;
        const char *refused = refused_why(backends[i].flag);
        if (!refused) {
            if (flags)
                *flags = backends[i].flag;
            return 0;
        }
        snprintf(err, errlen, "backend '%s' is refused (%s); offered "
                 "here: ", name, refused);
        size_t n = strlen(err);
        if (n < errlen)
            pc_backend_offered(err + n, errlen - n);
        return -EINVAL;
    }
    size_t n = (size_t)snprintf(err, errlen, "backend '%s' is %s; offered "
                                "here: ", name, why);
    if (n < errlen)
        pc_backend_offered(err + n, errlen - n);
    return -EINVAL;
}
