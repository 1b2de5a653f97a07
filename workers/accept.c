#include "workers/accept.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

int pc_accept_spare_open(void)
{
    return open("/dev/null", O_RDONLY | O_CLOEXEC);
}

struct pc_accept_result pc_accept_batch(int lfd, int *spare, unsigned max,
                                        void (*deliver)(void *arg, int fd),
                                        void *arg)
{
    struct pc_accept_result r = {0, 0, 0};
    while (r.accepted < max) {
        /* cppcheck-suppress nullPointer ; accept4(2) takes NULL addr, len */
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            r.accepted++;
            deliver(arg, fd);
            continue;
        }
        switch (errno) {
        case EINTR:
        case ECONNABORTED:
            continue;
        case EAGAIN:
            return r;
        case EMFILE:
        case ENFILE:
            /* The pending connection would make the listener readable
             * forever; free the spare fd to take it and close it. */
            if (*spare >= 0) {
                close(*spare);
                /* cppcheck-suppress nullPointer ; NULL addr, len are allowed */
                fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
                if (fd >= 0)
                    close(fd);
                *spare = pc_accept_spare_open();
            }
            r.exhausted++;
            return r;
        default:
            r.errors++;
            return r;
        }
    }
    return r;
}
