/* The TLS client under percore-bench's streams (see tls.h). */
#include "tls.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

/* The first failure of a run goes to stderr, so that a run where every
 * handshake fails says why; the rest are only counted. */
static atomic_bool told;

static void tell(const char *what)
{
    unsigned long e = ERR_peek_last_error();
    if (!atomic_exchange(&told, true)) {
        char buf[256];
        ERR_error_string_n(e, buf, sizeof buf);
        fprintf(stderr, "percore-bench: %s: %s\n", what,
                e ? buf : strerror(errno));
    }
    ERR_clear_error();
}

/* A session (a TLS 1.2 ticket during the handshake, TLS 1.3 tickets after
 * it). With --resume the stream keeps the newest, for the next
 * connection of its slot; without, it only notes that one came. */
static int new_session_cb(SSL *ssl, SSL_SESSION *session)
{
    struct pcb_stream *s = SSL_get_app_data(ssl);
    const struct pcb_config *cfg = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
    s->got_session = true;
    if (!cfg->resume)
        return 0;
    if (s->session)
        SSL_SESSION_free(s->session);
    s->session = session;
    return 1; /* the reference is ours now */
}

struct ssl_ctx_st *pcb_tls_ctx_new(const struct pcb_config *cfg)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) {
        tell("SSL_CTX_new");
        return NULL;
    }
    int v = cfg->tls_version == 12 ? TLS1_2_VERSION : TLS1_3_VERSION;
    SSL_CTX_set_min_proto_version(ctx, v);
    SSL_CTX_set_max_proto_version(ctx, v);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    /* Writes are repeated from the pattern, which never moves, and may
     * end between records: the stream counts what went. */
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
                              SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    /* Read ahead: one read() per burst instead of two per record (header,
     * then body), which matters on a client that shares one CPU among
     * all its connections. Every read loops until OpenSSL finds the
     * socket empty, so nothing waits in its buffer unseen by libev. */
    SSL_CTX_set_read_ahead(ctx, 1);
    /* A server that closes without close_notify has still done its part. */
    SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
    /* Sessions come to new_session_cb; OpenSSL keeps none itself. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT |
                                            SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ctx, new_session_cb);
    SSL_CTX_set_app_data(ctx, (void *)cfg);
    return ctx;
}

void pcb_tls_ctx_free(struct ssl_ctx_st *ctx)
{
    SSL_CTX_free(ctx);
}

int pcb_tls_begin(struct pcb_thread *t, struct pcb_stream *s,
                  struct ssl_session_st *session)
{
    SSL *ssl = SSL_new(t->run->tls_ctx);
    /* A copy is offered: a TLS 1.3 resumption changes the session it
     * used, and a server that sends no new ticket after resuming gets
     * the same one offered again. */
    SSL_SESSION *copy = session ? SSL_SESSION_dup(session) : NULL;
    bool ok = ssl && (!session || copy) && SSL_set_fd(ssl, s->io.fd) &&
              SSL_set_tlsext_host_name(ssl, t->cfg->sni) &&
              (!copy || SSL_set_session(ssl, copy));
    SSL_SESSION_free(copy); /* SSL_set_session took its own reference */
    if (!ok) {
        tell("SSL_new");
        SSL_free(ssl);
        return -1;
    }
    SSL_set_app_data(ssl, s);
    SSL_set_connect_state(ssl);
    s->ssl = ssl;
    s->got_session = false;
    s->tls_retry = 0;
    return 0;
}

/* After a fatal error OpenSSL must not send close_notify. */
static void fatal(struct pcb_stream *s, const char *what)
{
    tell(what);
    SSL_set_quiet_shutdown(s->ssl, 1);
}

int pcb_tls_handshake(struct ev_loop *loop, struct pcb_stream *s)
{
    ERR_clear_error();
    int r = SSL_do_handshake(s->ssl);
    if (r == 1) {
        pcb_stream_watch(loop, s, EV_READ);
        return 1;
    }
    switch (SSL_get_error(s->ssl, r)) {
    case SSL_ERROR_WANT_READ:
        pcb_stream_watch(loop, s, EV_READ);
        return 0;
    case SSL_ERROR_WANT_WRITE:
        pcb_stream_watch(loop, s, EV_WRITE);
        return 0;
    default:
        fatal(s, "TLS handshake");
        return -1;
    }
}

bool pcb_tls_resumed(const struct pcb_stream *s)
{
    return SSL_session_reused(s->ssl) == 1;
}

struct ssl_session_st *pcb_tls_take_session(struct pcb_stream *s)
{
    SSL_SESSION *session = s->session;
    s->session = NULL;
    return session;
}

bool pcb_tls_got_session(const struct pcb_stream *s)
{
    return s->got_session;
}

/* What SSL_read's failure means for the stream: 0 try again later, 1 the
 * server closed, or -(1 + enum pcb_error). */
static int read_failure(struct pcb_stream *s, int r)
{
    switch (SSL_get_error(s->ssl, r)) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE: /* a key update answered: rare, retried */
        return 0;
    case SSL_ERROR_ZERO_RETURN: /* close_notify, or EOF (options) */
        return 1;
    case SSL_ERROR_SYSCALL:
        SSL_set_quiet_shutdown(s->ssl, 1);
        ERR_clear_error();
        return -(1 + PCB_ERR_CLOSED);
    default:
        fatal(s, "TLS read");
        return -(1 + PCB_ERR_TLS);
    }
}

int pcb_tls_drain(struct pcb_stream *s)
{
    /* One SSL_read goes through every record there (tickets are not
     * application data) until the socket is empty or data comes. */
    char buf[512];
    ERR_clear_error();
    int r = SSL_read(s->ssl, buf, sizeof buf);
    return r > 0 ? -(1 + PCB_ERR_PROTOCOL) : read_failure(s, r);
}

long pcb_tls_read(struct pcb_thread *t, struct pcb_stream *s)
{
    long total = 0;
    for (;;) {
        ERR_clear_error();
        int r = SSL_read(s->ssl, t->scratch, (int)PCB_SCRATCH);
        if (r <= 0) {
            int f = read_failure(s, r);
            if (f == 0)
                return total;
            return f == 1 ? -(1 + PCB_ERR_CLOSED) : f;
        }
        long c = pcb_stream_check(t, s, (size_t)r);
        if (c < 0)
            return c;
        total += r;
    }
}

int pcb_tls_write(struct pcb_stream *s)
{
    while (s->tx_done < s->tx_target) {
        uint64_t left = s->tx_target - s->tx_done;
        int n = s->tls_retry ? (int)s->tls_retry
                             : (int)(left < PCB_PATTERN ? left : PCB_PATTERN);
        ERR_clear_error();
        int w = SSL_write(s->ssl, pcb_pattern_at(s->tx_done + s->shift), n);
        if (w > 0) {
            s->tls_retry = 0;
            s->tx_done += (uint64_t)w;
            continue;
        }
        switch (SSL_get_error(s->ssl, w)) {
        case SSL_ERROR_WANT_WRITE:
        case SSL_ERROR_WANT_READ:
            s->tls_retry = (uint64_t)n; /* OpenSSL wants the same again */
            return 0;
        case SSL_ERROR_SYSCALL:
            SSL_set_quiet_shutdown(s->ssl, 1);
            ERR_clear_error();
            return -1;
        default:
            fatal(s, "TLS write");
            return -1;
        }
    }
    return 0;
}

void pcb_tls_describe(const struct pcb_stream *s, struct pcb_tls_info *info)
{
    const SSL_CIPHER *c = SSL_get_current_cipher(s->ssl);
    int group = SSL_get_negotiated_group(s->ssl);
    const char *g = group ? SSL_group_to_name(s->ssl, group) : NULL;
    snprintf(info->protocol, sizeof info->protocol, "%s",
             SSL_get_version(s->ssl));
    snprintf(info->cipher, sizeof info->cipher, "%s",
             c ? SSL_CIPHER_get_name(c) : "?");
    snprintf(info->group, sizeof info->group, "%s", g ? g : "?");
}

void pcb_tls_end(struct pcb_stream *s)
{
    /* close_notify, as a browser sends it, unless the server said it
     * first or the handshake never finished; one try, no waiting for
     * the answer. */
    if (!SSL_in_init(s->ssl) &&
        !(SSL_get_shutdown(s->ssl) & SSL_RECEIVED_SHUTDOWN)) {
        ERR_clear_error();
        SSL_shutdown(s->ssl);
    }
    /* A connection freed unshut marks its session not resumable, and in
     * TLS 1.3 that is the very session the last ticket gave us. Ending
     * after the server's close_notify is a clean end too. */
    if (!SSL_in_init(s->ssl) &&
        (SSL_get_shutdown(s->ssl) & SSL_RECEIVED_SHUTDOWN))
        SSL_set_shutdown(s->ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
    ERR_clear_error();
    SSL_free(s->ssl);
    s->ssl = NULL;
    if (s->session)
        SSL_SESSION_free(s->session);
    s->session = NULL;
}
