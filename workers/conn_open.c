/* A connection's start and its timeouts: adopting an accepted socket (for
 * TLS listeners, starting the handshake, bounded in time and in number),
 * idle and handshake timeouts, closing all at shutdown, and what a module
 * may ask of a connection (its state, peer, TLS parameters). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"
#include "core/server.h"
#include "core/tls_context.h"
#include "workers/conn_state.h"
#include "workers/services.h"
#include "workers/worker.h"

static void refuse(struct pc_service *s, int fd, const char *why)
{
    if (pc_conn_log_on())
        pc_conn_log_refused(s, fd, why);
    const char *text = s->proto->refuse_text;
    /* Cleartext would only garble a TLS client's handshake. */
    if (text && !s->cfg->tls_ctx) {
        ssize_t r = send(fd, text, strlen(text), MSG_DONTWAIT | MSG_NOSIGNAL);
        (void)r;
    }
    close(fd);
    PC_LSTAT_ADD(s, refused, 1);
}

/* Ends a handshake that is still running, or, when it already failed
 * and is sending its alert, closes it now. */
static void end_handshake(struct pc_conn *c, enum pc_tls_failure why)
{
    if (c->flags & PC_CONN_CLOSING)
        pc_conn_kill(c, (enum pc_close_reason)c->reason);
    else
        pc_tls_fail(c, why); /* kills it, or queues its alert */
}

/* Re-arms the worker's idle timer when `timeout` from now is due before
 * it. */
static void arm_idle_timer(struct pc_worker *w, double timeout)
{
    if (timeout > 0 &&
        (!ev_is_active(&w->idle_timer) ||
         ev_timer_remaining(w->loop, &w->idle_timer) > timeout)) {
        ev_timer_stop(w->loop, &w->idle_timer);
        ev_timer_set(&w->idle_timer, timeout, 0.);
        ev_timer_start(w->loop, &w->idle_timer);
    }
}

void pc_conn_adopt(struct pc_service *s, int fd)
{
    struct pc_worker *w = s->w;
    if (!pc_service_open(s)) {
        refuse(s, fd, "the listener's module did not start on this worker");
        return;
    }
    if (w->draining || !pc_server_admit(w->srv, w, s)) {
        refuse(s, fd, w->draining ? "the server is stopping"
                                  : "a connection limit is reached");
        return;
    }
    struct ssl_ctx_st *tls = s->cfg->tls_ctx;
    bool access = *s->cfg->access_log && w->access_log;
    struct pc_conn *c = calloc(1, sizeof *c + s->proto->conn_size +
                                      (tls ? pc_tls_conn_extra() : 0) +
                                      (access ? pc_conn_access_extra() : 0));
    if (!c) {
        pc_log(PC_LOG_WARN, "out of memory for a new connection on %s",
               s->cfg->name);
        pc_server_release(w->srv, s->slot);
        refuse(s, fd, "out of memory");
        return;
    }
    int one = 1;
    /* Fails harmlessly (EOPNOTSUPP) on Unix sockets. */
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    /* Fixed kernel buffers bound the bytes a slow reader can hold in the
     * kernel (they also switch autotuning off: leave 0 unless needed). */
    int size;
    if (s->cfg->sndbuf > 0 && (size = (int)s->cfg->sndbuf))
        (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
    if (s->cfg->rcvbuf > 0 && (size = (int)s->cfg->rcvbuf))
        (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
    ev_io_init(&c->io, pc_conn_io_cb, fd, EV_READ);
    c->svc = s;
    c->id = ((uint64_t)w->id << 48) | ++w->next_conn_id;
    c->last_active = ev_now(w->loop);
    if (tls) {
        c->flags |= PC_CONN_TLS | PC_CONN_HANDSHAKE;
        if (pc_tls_open(c, tls) < 0) {
            pc_log(PC_LOG_WARN, "out of memory for a TLS connection on %s",
                   s->cfg->name);
            free(c);
            pc_server_release(w->srv, s->slot);
            refuse(s, fd, "out of memory for TLS");
            return;
        }
        /* A flood of handshakes that never finish holds memory (an SSL
         * and its buffers each) until their timeout; past the bound the
         * oldest one gives way, which is most likely a stalled one. */
        if (s->nhandshakes >= (size_t)s->cfg->tls.max_handshakes)
            end_handshake(s->hs_head, PC_TLS_FAIL_EVICTED);
        arm_idle_timer(w, s->cfg->tls.handshake_timeout);
    } else {
        arm_idle_timer(w, s->cfg->idle_timeout);
    }
    if (access) /* placed after the TLS state, so after its flag */
        pc_conn_access_open(c);
    pc_conn_list_append(c);
    ev_io_start(w->loop, &c->io);
    PC_LSTAT_ADD(s, accepted, 1);
    PC_STAT_ADD(w, connections, 1);
    s->nconns++;
    if (pc_conn_log_on())
        pc_conn_log_accept(c);
    if (tls)
        pc_tls_readable(c); /* the ClientHello may be here already */
    else if (s->proto->on_open)
        s->proto->on_open(c);
}

void pc_conn_opened(struct pc_conn *c)
{
    struct pc_service *s = c->svc;
    pc_conn_list_unlink(c);
    c->flags &= (uint16_t)~PC_CONN_HANDSHAKE;
    c->last_active = ev_now(CONN_LOOP(c));
    pc_conn_list_append(c);
    arm_idle_timer(s->w, s->cfg->idle_timeout);
    if (s->proto->on_open)
        s->proto->on_open(c);
}

/* ---- timeouts and shutdown ------------------------------------------- */

/* The next deadline of one list (0: none), after closing what is due. */
static ev_tstamp expire_list(struct pc_conn *const *head, double timeout,
                             ev_tstamp now, bool handshakes)
{
    if (timeout <= 0)
        return 0;
    while (*head && (*head)->last_active + timeout <= now) {
        if (handshakes) {
            end_handshake(*head, PC_TLS_FAIL_TIMEOUT);
        } else {
            pc_tls_notify_now(*head); /* TLS: a clean close_notify */
            pc_conn_kill(*head, PC_CLOSE_IDLE);
        }
    }
    return *head ? (*head)->last_active + timeout : 0;
}

void pc_conn_expire_idle(struct pc_worker *w)
{
    ev_tstamp now = ev_now(w->loop), next = 0;
    for (unsigned i = 0; i < PC_MAX_SLOTS; i++) {
        struct pc_service *s = &w->svcs[i];
        if (!s->proto)
            continue;
        const ev_tstamp due[2] = {
            expire_list(&s->idle_head, s->cfg->idle_timeout, now, false),
            expire_list(&s->hs_head, s->cfg->tls.handshake_timeout, now,
                        true),
        };
        for (int k = 0; k < 2; k++)
            if (due[k] > 0 && (next == 0 || due[k] < next))
                next = due[k];
    }
    if (next > 0) {
        ev_timer_set(&w->idle_timer, next - now, 0.);
        ev_timer_start(w->loop, &w->idle_timer);
    }
}

void pc_conn_end_handshakes(struct pc_worker *w)
{
    for (unsigned i = 0; i < PC_MAX_SLOTS; i++)
        while (w->svcs[i].hs_head)
            end_handshake(w->svcs[i].hs_head, PC_TLS_FAIL_SHUTDOWN);
}

void pc_conn_close_all(struct pc_worker *w, enum pc_close_reason why)
{
    pc_conn_end_handshakes(w);
    for (unsigned i = 0; i < PC_MAX_SLOTS; i++)
        while (w->svcs[i].idle_head)
            pc_conn_kill(w->svcs[i].idle_head, why);
}

/* ---- accessors ------------------------------------------------------- */

void *pc_conn_state(struct pc_conn *c)
{
    return c->state;
}

void *pc_conn_wstate(struct pc_conn *c)
{
    return c->svc->wstate;
}

struct pc_worker *pc_conn_worker(struct pc_conn *c)
{
    return c->svc->w;
}

uint64_t pc_conn_id(const struct pc_conn *c)
{
    return c->id;
}

const char *pc_fd_peer(int fd, char *buf, size_t size)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    char host[INET6_ADDRSTRLEN] = "?";
    if (getpeername(fd, (struct sockaddr *)&ss, &len) < 0) {
        snprintf(buf, size, "?");
        /* NOLINTNEXTLINE(*core.UndefinedBinaryOperatorResult): ss is set */
    } else if (ss.ss_family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
        snprintf(buf, size, "%s:%u", host, ntohs(a->sin_port));
    } else if (ss.ss_family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
        snprintf(buf, size, "[%s]:%u", host, ntohs(a->sin6_port));
    } else {
        snprintf(buf, size, "unix");
    }
    return buf;
}

const char *pc_conn_peer(struct pc_conn *c, char *buf, size_t size)
{
    return pc_fd_peer(c->io.fd, buf, size);
}

bool pc_conn_tls(struct pc_conn *c, struct pc_tls_info *info)
{
    struct pc_tls_conn *t = pc_tls_of(c);
    if (!t || !t->ssl)
        return false;
    if (!info)
        return true;
    memset(info, 0, sizeof *info);
    info->version = SSL_get_version(t->ssl);
    info->cipher = SSL_get_cipher_name(t->ssl);
    pc_tls_alpn_of(t->ssl, info->alpn, sizeof info->alpn);
    info->resumed = SSL_session_reused(t->ssl) != 0;
    info->ktls = t->ktls_send;
    X509 *peer = SSL_get0_peer_certificate(t->ssl);
    if (peer) {
        BIO *mem = BIO_new(BIO_s_mem());
        if (mem && X509_NAME_print_ex(mem, X509_get_subject_name(peer), 0,
                                      XN_FLAG_RFC2253) >= 0) {
            int n = BIO_read(mem, info->peer_subject,
                             (int)sizeof info->peer_subject - 1);
            info->peer_subject[n > 0 ? n : 0] = '\0';
        }
        BIO_free(mem);
    }
    return true;
}
