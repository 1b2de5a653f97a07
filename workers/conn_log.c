/* Per-connection lines at log_level = debug: accepted (peer, listener,
 * worker), refused (why), closed (reason, bytes each way). Nothing is
 * kept per connection for them: the byte counts are the kernel's
 * (TCP_INFO), read once at the close, so connections pay nothing when
 * debug is off. They count sequence space: a FIN received counts one
 * byte in. */
#include <linux/tcp.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "core/log.h"
#include "workers/conn_state.h"
#include "workers/worker.h"

bool pc_conn_log_on(void)
{
    return pc_log_get_level() >= PC_LOG_DEBUG;
}

void pc_conn_log_accept(struct pc_conn *c)
{
    char peer[64];
    pc_log(PC_LOG_DEBUG, "connection %llu: accepted from %s on %s by worker "
           "%u%s", (unsigned long long)c->id,
           pc_conn_peer(c, peer, sizeof peer), c->svc->cfg->name,
           c->svc->w->id, (c->flags & PC_CONN_TLS) ? " (TLS handshake)" : "");
}

void pc_conn_log_refused(struct pc_service *s, int fd, const char *why)
{
    char peer[64];
    pc_log(PC_LOG_DEBUG, "worker %u: refused %s on %s: %s", s->w->id,
           pc_fd_peer(fd, peer, sizeof peer), s->cfg->name, why);
}

void pc_conn_log_close(struct pc_conn *c, enum pc_close_reason why)
{
    struct tcp_info ti;
    socklen_t len = sizeof ti;
    char bytes[96] = "";
    memset(&ti, 0, sizeof ti);
    /* Unix sockets have no TCP_INFO: then no byte counts. */
    if (getsockopt(c->io.fd, IPPROTO_TCP, TCP_INFO, &ti, &len) == 0 &&
        len >= offsetof(struct tcp_info, tcpi_bytes_received) +
                   sizeof ti.tcpi_bytes_received)
        snprintf(bytes, sizeof bytes, ", %llu bytes in, %llu bytes out",
                 (unsigned long long)ti.tcpi_bytes_received,
                 (unsigned long long)ti.tcpi_bytes_acked);
    pc_log(PC_LOG_DEBUG, "connection %llu: closed on %s (%s%s)%s",
           (unsigned long long)c->id, c->svc->cfg->name,
           pc_close_reason_name(why),
           (c->flags & PC_CONN_HANDSHAKE) ? ", before its TLS handshake ended"
                                          : "",
           bytes);
}
