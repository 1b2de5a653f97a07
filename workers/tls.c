/* TLS connections: handshake, reading plaintext, encrypting the output
 * queue into records (tls.h). */
#include "workers/tls.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdalign.h>
#include <string.h>

#include "core/log.h"
#include "core/tls_context.h"
#include "workers/conn_state.h"
#include "workers/worker.h"

/* Plaintext per SSL_write: one full record, so a burst of small lines is
 * sealed once, not once per line. */
#define TLS_RECORD ((size_t)16384)
/* Encrypted bytes a connection may hold ahead of its socket: enough for
 * the socket to take in one writev, and no more, so a slow reader's
 * output stays in the plaintext queue, where a cut can still drop whole
 * units and shared buffers are not copied. */
#define TLS_WIRE_AHEAD ((size_t)64 * 1024)
/* Plaintext reads per readable event before other connections' turn. */
#define TLS_READ_ROUNDS 4

static const char *const failure_names[PC_TLS_FAILURES] = {
    [PC_TLS_FAIL_HTTP] = "http_request",
    [PC_TLS_FAIL_NOT_TLS] = "not_tls",
    [PC_TLS_FAIL_VERSION] = "version",
    [PC_TLS_FAIL_CIPHER] = "cipher",
    [PC_TLS_FAIL_ALPN] = "alpn",
    [PC_TLS_FAIL_CERTIFICATE] = "certificate",
    [PC_TLS_FAIL_TIMEOUT] = "timeout",
    [PC_TLS_FAIL_EOF] = "eof",
    [PC_TLS_FAIL_EVICTED] = "evicted",
    [PC_TLS_FAIL_SHUTDOWN] = "shutdown",
    [PC_TLS_FAIL_OTHER] = "other",
};

const char *pc_tls_failure_name(enum pc_tls_failure why)
{
    return (unsigned)why < PC_TLS_FAILURES ? failure_names[why] : "?";
}

/* ---- where the state lives ------------------------------------------- */

static size_t tls_offset(const struct pc_conn *c)
{
    size_t at = sizeof *c + c->svc->proto->conn_size;
    return (at + alignof(max_align_t) - 1) / alignof(max_align_t) *
           alignof(max_align_t);
}

size_t pc_tls_conn_extra(void)
{
    /* The worst-case padding to tls_offset, then the state. */
    return alignof(max_align_t) + sizeof(struct pc_tls_conn);
}

uint64_t pc_tls_bytes_read(struct pc_conn *c)
{
    struct pc_tls_conn *t = pc_tls_of(c);
    return t && t->ssl ? BIO_number_read(SSL_get_rbio(t->ssl)) : 0;
}

struct pc_tls_conn *pc_tls_of(struct pc_conn *c)
{
    if (!(c->flags & PC_CONN_TLS))
        return NULL;
    return (struct pc_tls_conn *)(void *)((char *)c + tls_offset(c));
}

/* ---- the wire BIO: what OpenSSL writes goes to the wire queue -------- */

static BIO_METHOD *wire_method;
static pthread_once_t wire_once = PTHREAD_ONCE_INIT;

static int wire_write(BIO *b, const char *data, int len)
{
    struct pc_conn *c = BIO_get_data(b);
    struct pc_tls_conn *t = pc_tls_of(c);
    if (len <= 0)
        return 0;
    if (pc_outq_copy(&t->wire, data, (size_t)len) < 0)
        return -1; /* out of memory: OpenSSL fails the call */
    return len;
}

static long wire_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)b, (void)num, (void)ptr;
    return cmd == BIO_CTRL_FLUSH ? 1 : 0; /* written when the worker flushes */
}

static int wire_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

static void wire_method_new(void)
{
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK,
                                 "percore wire");
    if (m && BIO_meth_set_write(m, wire_write) && BIO_meth_set_ctrl(m, wire_ctrl) &&
        BIO_meth_set_create(m, wire_create))
        wire_method = m;
}

/* ---- opening and closing --------------------------------------------- */

int pc_tls_open(struct pc_conn *c, SSL_CTX *ctx)
{
    struct pc_tls_conn *t = pc_tls_of(c);
    memset(t, 0, sizeof *t);
    pthread_once(&wire_once, wire_method_new);
    t->ssl = wire_method ? SSL_new(ctx) : NULL;
    if (!t->ssl)
        goto fail;
    bool ktls = (SSL_CTX_get_options(ctx) & SSL_OP_ENABLE_KTLS) != 0;
    if (ktls) {
        /* kTLS needs OpenSSL to own the socket for writing too; the
         * handshake's writes may then have to wait for EV_WRITE. Not
         * exercised where the kernel has no "tls" ULP (docs/tls.md). */
        if (SSL_set_fd(t->ssl, c->io.fd) != 1)
            goto fail;
    } else {
        BIO *rbio = BIO_new_socket(c->io.fd, BIO_NOCLOSE);
        BIO *wbio = BIO_new(wire_method);
        if (!rbio || !wbio) {
            BIO_free(rbio);
            BIO_free(wbio);
            goto fail;
        }
        BIO_set_data(wbio, c);
        SSL_set_bio(t->ssl, rbio, wbio); /* the SSL owns both */
    }
    SSL_set_accept_state(t->ssl);
    return 0;
fail:
    SSL_free(t->ssl);
    t->ssl = NULL;
    ERR_clear_error();
    return -ENOMEM;
}

void pc_tls_free(struct pc_conn *c)
{
    struct pc_tls_conn *t = pc_tls_of(c);
    if (!t)
        return;
    if (!(c->flags & PC_CONN_HANDSHAKE)) {
        PC_LSTAT_ADD(c->svc, tls_open, -1);
        if (t->ktls_send)
            PC_LSTAT_ADD(c->svc, tls_ktls, -1);
    }
    SSL_free(t->ssl);
    pc_outq_clear(&t->wire);
    t->ssl = NULL;
}

size_t pc_tls_unsent(struct pc_conn *c)
{
    struct pc_tls_conn *t = pc_tls_of(c);
    return t ? t->wire.bytes : 0;
}

/* ---- handshake ------------------------------------------------------- */

static enum pc_tls_failure classify(int ssl_error)
{
    if (ssl_error == SSL_ERROR_SYSCALL || ssl_error == SSL_ERROR_ZERO_RETURN)
        return PC_TLS_FAIL_EOF;
    switch (ERR_GET_REASON(ERR_peek_last_error())) {
    case SSL_R_HTTP_REQUEST:
    case SSL_R_HTTPS_PROXY_REQUEST:
        return PC_TLS_FAIL_HTTP;
    case SSL_R_WRONG_VERSION_NUMBER:
    case SSL_R_UNKNOWN_PROTOCOL:
    case SSL_R_PACKET_LENGTH_TOO_LONG:
    case SSL_R_WRONG_SSL_VERSION:
    case SSL_R_BAD_RECORD_TYPE:
    case SSL_R_UNEXPECTED_RECORD:
        return PC_TLS_FAIL_NOT_TLS;
    case SSL_R_UNSUPPORTED_PROTOCOL:
    case SSL_R_VERSION_TOO_LOW:
    case SSL_R_TLSV1_ALERT_PROTOCOL_VERSION:
        return PC_TLS_FAIL_VERSION;
    case SSL_R_NO_SHARED_CIPHER:
    case SSL_R_NO_SHARED_GROUPS:
    case SSL_R_NO_SUITABLE_SIGNATURE_ALGORITHM:
        return PC_TLS_FAIL_CIPHER;
    case SSL_R_NO_APPLICATION_PROTOCOL:
        return PC_TLS_FAIL_ALPN;
    case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
    case SSL_R_CERTIFICATE_VERIFY_FAILED:
        return PC_TLS_FAIL_CERTIFICATE;
    case SSL_R_UNEXPECTED_EOF_WHILE_READING:
        return PC_TLS_FAIL_EOF;
    default:
        return PC_TLS_FAIL_OTHER;
    }
}

void pc_tls_fail(struct pc_conn *c, enum pc_tls_failure why)
{
    struct pc_tls_conn *t = pc_tls_of(c);
    if (c->flags & (PC_CONN_DEAD | PC_CONN_CLOSING))
        return;
    PC_LSTAT_ADD(c->svc, tls_failures[why], 1);
    if (pc_log_get_level() >= PC_LOG_INFO) {
        char peer[64], detail[160] = "";
        unsigned long e = ERR_peek_last_error();
        if (e && ERR_reason_error_string(e))
            snprintf(detail, sizeof detail, ": %s", ERR_reason_error_string(e));
        pc_log(PC_LOG_INFO, "connection %llu from %s on %s: TLS handshake "
               "failed (%s%s)", (unsigned long long)c->id,
               pc_conn_peer(c, peer, sizeof peer), c->svc->cfg->name,
               pc_tls_failure_name(why), detail);
    }
    ERR_clear_error();
    t->notified = true; /* no close_notify: the alert, if any, is queued */
    if (why == PC_TLS_FAIL_HTTP) {
        /* A browser or curl on the wrong scheme: tell it in its own
         * language, as nginx does, instead of a binary alert. */
        static const char text[] =
            "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\n"
            "Content-Length: 40\r\nConnection: close\r\n\r\n"
            "This port speaks TLS: use https:// here\n";
        pc_outq_clear(&t->wire);
        if (pc_outq_copy(&t->wire, text, sizeof text - 1) < 0)
            pc_outq_clear(&t->wire);
    }
    enum pc_close_reason reason = why == PC_TLS_FAIL_TIMEOUT ? PC_CLOSE_IDLE
                                  : why == PC_TLS_FAIL_SHUTDOWN
                                      ? PC_CLOSE_SHUTDOWN
                                      : PC_CLOSE_ERROR;
    if (why == PC_TLS_FAIL_TIMEOUT || why == PC_TLS_FAIL_EVICTED ||
        why == PC_TLS_FAIL_SHUTDOWN || why == PC_TLS_FAIL_EOF ||
        !t->wire.bytes) {
        pc_conn_kill(c, reason); /* nobody to tell, or no time to */
        return;
    }
    /* The alert goes out first; the handshake timeout still bounds it. */
    c->flags |= PC_CONN_CLOSING;
    c->reason = (uint8_t)reason;
    pc_conn_mark_pending(c);
    pc_conn_set_events(c);
}

static void read_plaintext(struct pc_conn *c);

static void handshake_done(struct pc_conn *c)
{
    struct pc_tls_conn *t = pc_tls_of(c);
    PC_LSTAT_ADD(c->svc, tls_handshakes, 1);
    if (SSL_session_reused(t->ssl))
        PC_LSTAT_ADD(c->svc, tls_resumed, 1);
    PC_LSTAT_ADD(c->svc, tls_open, 1);
    if (SSL_CTX_get_options(SSL_get_SSL_CTX(t->ssl)) & SSL_OP_ENABLE_KTLS) {
        if (BIO_get_ktls_send(SSL_get_wbio(t->ssl))) {
            t->ktls_send = true;
            PC_LSTAT_ADD(c->svc, tls_ktls, 1);
        } else {
            /* The kernel refused this cipher: encrypt here, through the
             * wire queue like every other connection. */
            BIO *wbio = BIO_new(wire_method);
            if (!wbio) {
                pc_conn_kill(c, PC_CLOSE_ERROR);
                return;
            }
            BIO_set_data(wbio, c);
            SSL_set0_wbio(t->ssl, wbio);
        }
    }
    pc_conn_opened(c); /* on_open */
    read_plaintext(c); /* what came with the client's Finished */
}

static void handshake_step(struct pc_conn *c)
{
    struct pc_tls_conn *t = pc_tls_of(c);
    ERR_clear_error();
    int r = SSL_do_handshake(t->ssl);
    if (t->wire.bytes)
        pc_conn_mark_pending(c); /* ServerHello ... Finished, tickets */
    if (r == 1) {
        handshake_done(c);
        return;
    }
    int e = SSL_get_error(t->ssl, r);
    if (e == SSL_ERROR_WANT_READ)
        return;
    if (e == SSL_ERROR_WANT_WRITE) { /* a socket write BIO (kTLS) */
        c->flags |= PC_CONN_BLOCKED;
        pc_conn_set_events(c);
        return;
    }
    pc_tls_fail(c, classify(e));
}

/* ---- reading --------------------------------------------------------- */

static void read_plaintext(struct pc_conn *c)
{
    struct pc_tls_conn *t = pc_tls_of(c);
    struct pc_worker *w = c->svc->w;
    uint64_t before = BIO_number_read(SSL_get_rbio(t->ssl));
    size_t have = 0;
    for (int rounds = 0; pc_conn_reading(c);) {
        size_t n = 0;
        ERR_clear_error();
        int r = SSL_read_ex(t->ssl, w->scratch + have, w->scratch_size - have,
                            &n);
        if (r == 1) {
            have += n;
            /* Records OpenSSL read ahead are taken at once; a socket
             * with more is readable again (level-triggered), so asking
             * it now would mostly cost a read that says EAGAIN. */
            if (have < w->scratch_size && SSL_has_pending(t->ssl))
                continue;
            if (have < w->scratch_size)
                break;
            pc_conn_deliver(c, w->scratch, have);
            have = 0;
            if (++rounds == TLS_READ_ROUNDS) {
                pc_conn_reoffer(c); /* the rest on the next pass */
                break;
            }
            continue;
        }
        int e = SSL_get_error(t->ssl, r);
        if (have)
            pc_conn_deliver(c, w->scratch, have);
        have = 0;
        if (e == SSL_ERROR_WANT_READ)
            break;
        if (e == SSL_ERROR_WANT_WRITE) { /* kTLS: a KeyUpdate reply */
            c->flags |= PC_CONN_BLOCKED;
            pc_conn_set_events(c);
            break;
        }
        if (t->wire.bytes)
            pc_conn_mark_pending(c);
        if (e == SSL_ERROR_ZERO_RETURN || e == SSL_ERROR_SYSCALL ||
            (e == SSL_ERROR_SSL && ERR_GET_REASON(ERR_peek_last_error()) ==
                                       SSL_R_UNEXPECTED_EOF_WHILE_READING)) {
            /* close_notify, or an EOF without one: both mean the peer
             * sends no more, as an EOF does in cleartext. */
            ERR_clear_error();
            pc_conn_peer_eof(c);
        } else {
            if (pc_log_get_level() >= PC_LOG_DEBUG) {
                unsigned long err = ERR_peek_last_error();
                const char *why = ERR_reason_error_string(err);
                pc_log(PC_LOG_DEBUG, "connection %llu: TLS read failed: %s",
                       (unsigned long long)c->id, why ? why : "?");
            }
            ERR_clear_error();
            pc_conn_kill(c, PC_CLOSE_ERROR);
        }
        break;
    }
    if (have)
        pc_conn_deliver(c, w->scratch, have);
    PC_LSTAT_ADD(c->svc, bytes_in, BIO_number_read(SSL_get_rbio(t->ssl)) - before);
    if (t->wire.bytes)
        pc_conn_mark_pending(c); /* written while reading: a KeyUpdate */
}

void pc_tls_readable(struct pc_conn *c)
{
    if (c->flags & PC_CONN_HANDSHAKE)
        handshake_step(c);
    else
        read_plaintext(c);
}

/* ---- writing --------------------------------------------------------- */

/* Seals plaintext from the head of c's queue into records on the wire
 * queue, while that holds less than TLS_WIRE_AHEAD. */
static int encrypt_some(struct pc_conn *c, struct pc_tls_conn *t)
{
    struct pc_worker *w = c->svc->w;
    while (c->out.bytes && t->wire.bytes < TLS_WIRE_AHEAD) {
        struct iovec iov[64];
        size_t want = 0;
        int n = pc_outq_iov(&c->out, iov, 64, &want);
        const char *p = iov[0].iov_base;
        size_t len = iov[0].iov_len;
        if (len < TLS_RECORD && n > 1) {
            /* Small writes: gather them into one record. The scratch
             * buffer is free here (flushes never run inside a read). */
            len = 0;
            for (int i = 0; i < n && len < TLS_RECORD; i++) {
                size_t take = iov[i].iov_len;
                if (take > TLS_RECORD - len)
                    take = TLS_RECORD - len;
                memcpy(w->scratch + len, iov[i].iov_base, take);
                len += take;
            }
            p = w->scratch;
        } else if (len > 4 * TLS_RECORD) {
            len = 4 * TLS_RECORD;
        }
        size_t done = 0;
        ERR_clear_error();
        if (SSL_write_ex(t->ssl, p, len, &done) != 1) {
            ERR_clear_error();
            return -EIO; /* only on out of memory, with the wire BIO */
        }
        pc_outq_consume(&c->out, done);
    }
    return 0;
}

void pc_tls_notify_now(struct pc_conn *c)
{
    struct pc_tls_conn *t = pc_tls_of(c);
    if (!t || t->notified || (c->flags & (PC_CONN_HANDSHAKE | PC_CONN_DEAD)))
        return;
    ERR_clear_error();
    (void)SSL_shutdown(t->ssl);
    ERR_clear_error();
    t->notified = true;
    /* One try, without waiting: the socket of an idle peer has room. */
    (void)pc_outq_flush(&t->wire, c->io.fd);
}

long pc_tls_flush(struct pc_conn *c)
{
    struct pc_tls_conn *t = pc_tls_of(c);
    long total = 0;
    if (t->ktls_send) { /* the kernel seals what writev hands it */
        long n = pc_outq_flush(&c->out, c->io.fd);
        if (n >= 0 && !c->out.bytes && !t->notified &&
            (c->flags & PC_CONN_CLOSING)) {
            ERR_clear_error();
            (void)SSL_shutdown(t->ssl); /* through the socket BIO */
            ERR_clear_error();
            t->notified = true;
        }
        return n;
    }
    for (;;) {
        bool opened = !(c->flags & PC_CONN_HANDSHAKE);
        if (opened && !t->notified && encrypt_some(c, t) < 0)
            return -EIO;
        if (opened && !t->notified && !c->out.bytes &&
            (c->flags & PC_CONN_CLOSING)) {
            ERR_clear_error();
            (void)SSL_shutdown(t->ssl); /* queues close_notify */
            ERR_clear_error();
            t->notified = true;
        }
        if (!t->wire.bytes)
            return total;
        long n = pc_outq_flush(&t->wire, c->io.fd);
        if (n < 0)
            return n;
        total += n;
        if (t->wire.bytes || !c->out.bytes)
            return total; /* the socket is full, or all is sent */
    }
}
