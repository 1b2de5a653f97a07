/* Building a listener's SSL_CTX from its tls_* keys (tls_context.h). Every
 * refusal names the key, the file and OpenSSL's own reason. */
#include "core/tls_context.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "core/config_keys.h"
#include "core/tls_tickets.h"

/* OpenSSL's reason for a failure, then its queue emptied (it is per
 * thread and would mislead the next caller). The first error queued is
 * the cause ("no start line"), later ones only say who noticed it ("PEM
 * lib"). */
static const char *openssl_reason(char *buf, size_t size)
{
    unsigned long e = ERR_peek_error();
    const char *why = e ? ERR_reason_error_string(e) : NULL;
    if (ERR_GET_LIB(e) == ERR_LIB_SSL &&
        (ERR_GET_REASON(e) == SSL_R_EE_KEY_TOO_SMALL ||
         ERR_GET_REASON(e) == SSL_R_CA_KEY_TOO_SMALL ||
         ERR_GET_REASON(e) == SSL_R_CA_MD_TOO_WEAK))
        snprintf(buf, size, "%s: weaker than OpenSSL's security level "
                 "allows (RSA needs 2048 bits, no SHA-1)", why);
    else
        snprintf(buf, size, "%s", why ? why : "unknown OpenSSL error");
    ERR_clear_error();
    return buf;
}

/* A clear "No such file" / "Permission denied" before OpenSSL's less
 * direct "system lib". */
static int readable(const char *key, const char *path, char *err,
                    size_t errlen)
{
    FILE *f = fopen(path, "r");
    struct stat st;
    int e = !f ? errno : fstat(fileno(f), &st) < 0 ? errno
                       : S_ISDIR(st.st_mode)        ? EISDIR
                                                    : 0;
    if (f)
        fclose(f);
    if (e) {
        pc_errf(err, errlen, "%s: %s: %s", key, path, strerror(e));
        return -EINVAL;
    }
    return 0;
}

static int version_of(const char *name)
{
    if (strcasecmp(name, "TLSv1.2") == 0)
        return TLS1_2_VERSION;
    if (strcasecmp(name, "TLSv1.3") == 0)
        return TLS1_3_VERSION;
    return 0;
}

static int set_versions(SSL_CTX *ctx, const struct pc_listener_config *l,
                        char *err, size_t errlen)
{
    char list[sizeof l->tls.protocols];
    snprintf(list, sizeof list, "%s", l->tls.protocols);
    int lo = 0, hi = 0;
    for (char *save, *p = strtok_r(list, " ,\t", &save); p;
         p = strtok_r(NULL, " ,\t", &save)) {
        int v = version_of(p);
        if (!v) {
            pc_errf(err, errlen, "tls_protocols: '%s' is not offered "
                    "(TLSv1.2 and TLSv1.3 are; older versions are broken)", p);
            return -EINVAL;
        }
        lo = lo && lo < v ? lo : v;
        hi = hi > v ? hi : v;
    }
    if (!lo) {
        pc_errf(err, errlen, "tls_protocols: empty (use TLSv1.2, TLSv1.3 "
                "or both)");
        return -EINVAL;
    }
    SSL_CTX_set_min_proto_version(ctx, lo);
    SSL_CTX_set_max_proto_version(ctx, hi);
    return 0;
}

/* ---- ALPN ------------------------------------------------------------ */

/* The offered protocols in the wire form ALPN uses (length-prefixed),
 * kept with the context: a handshake may still run on an old context
 * after a reload replaced the config. */
struct alpn_list {
    unsigned len;
    unsigned char wire[PC_ADDR_MAX];
};

static int alpn_index = -1;
static pthread_once_t alpn_once = PTHREAD_ONCE_INIT;

static void alpn_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx,
                      long argl, void *argp)
{
    (void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
    free(ptr);
}

static void alpn_index_new(void)
{
    alpn_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, alpn_free);
}

/* Server preference order; a client that offers ALPN but none of ours is
 * refused (RFC 7301 3.2), one that offers none is served. */
static int alpn_select(SSL *ssl, const unsigned char **out,
                       unsigned char *outlen, const unsigned char *in,
                       unsigned inlen, void *arg)
{
    (void)ssl;
    const struct alpn_list *a = arg;
    unsigned char *chosen;
    if (SSL_select_next_proto(&chosen, outlen, a->wire, a->len, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    *out = chosen;
    return SSL_TLSEXT_ERR_OK;
}

static int set_alpn(SSL_CTX *ctx, const struct pc_listener_config *l,
                    char *err, size_t errlen)
{
    if (!*l->tls.alpn)
        return 0;
    struct alpn_list *a = calloc(1, sizeof *a);
    if (!a)
        return -ENOMEM;
    char list[sizeof l->tls.alpn];
    snprintf(list, sizeof list, "%s", l->tls.alpn);
    for (char *save, *p = strtok_r(list, " ,\t", &save); p;
         p = strtok_r(NULL, " ,\t", &save)) {
        size_t n = strlen(p);
        if (n > 255 || a->len + 1 + n > sizeof a->wire) {
            pc_errf(err, errlen, "tls_alpn: '%s' is too long", p);
            free(a);
            return -EINVAL;
        }
        a->wire[a->len++] = (unsigned char)n;
        memcpy(a->wire + a->len, p, n);
        a->len += (unsigned)n;
    }
    pthread_once(&alpn_once, alpn_index_new);
    if (alpn_index < 0 || !SSL_CTX_set_ex_data(ctx, alpn_index, a)) {
        free(a);
        return -ENOMEM;
    }
    SSL_CTX_set_alpn_select_cb(ctx, alpn_select, a);
    return 0;
}

const char *pc_tls_alpn_of(SSL *ssl, char *buf, size_t size)
{
    const unsigned char *p;
    unsigned n;
    SSL_get0_alpn_selected(ssl, &p, &n);
    snprintf(buf, size, "%.*s", p ? (int)n : 0, p ? (const char *)p : "");
    return buf;
}

/* ---- kernel TLS ------------------------------------------------------ */

static bool kernel_ktls;
static pthread_once_t ktls_once = PTHREAD_ONCE_INIT;

static void ktls_probe(void)
{
    FILE *f = fopen("/proc/sys/net/ipv4/tcp_available_ulp", "r");
    char line[256] = "";
    if (f) {
        if (!fgets(line, sizeof line, f))
            line[0] = '\0';
        fclose(f);
    }
    for (char *save, *p = strtok_r(line, " \n", &save); p;
         p = strtok_r(NULL, " \n", &save))
        if (strcmp(p, "tls") == 0)
            kernel_ktls = true;
}

bool pc_tls_kernel_has_ktls(void)
{
    pthread_once(&ktls_once, ktls_probe);
    return kernel_ktls;
}

/* ---- the context ----------------------------------------------------- */

static int load_identity(SSL_CTX *ctx, const struct pc_listener_config *l,
                         char *err, size_t errlen)
{
    const struct pc_tls_config *t = &l->tls;
    char why[256];
    if (!*t->key) {
        pc_errf(err, errlen, "tls_certificate: needs tls_key (the "
                "certificate's private key)");
        return -EINVAL;
    }
    if (readable("tls_certificate", t->certificate, err, errlen) < 0 ||
        readable("tls_key", t->key, err, errlen) < 0)
        return -EINVAL;
    if (SSL_CTX_use_certificate_chain_file(ctx, t->certificate) != 1) {
        pc_errf(err, errlen, "tls_certificate: %s: %s", t->certificate,
                openssl_reason(why, sizeof why));
        return -EINVAL;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, t->key, SSL_FILETYPE_PEM) != 1 &&
        ERR_GET_REASON(ERR_peek_error()) != X509_R_KEY_VALUES_MISMATCH) {
        pc_errf(err, errlen, "tls_key: %s: %s (expected a PEM private key)",
                t->key, openssl_reason(why, sizeof why));
        return -EINVAL;
    }
    if (ERR_peek_error() || SSL_CTX_check_private_key(ctx) != 1) {
        pc_errf(err, errlen, "tls_key: %s does not belong to the "
                "certificate in %s (%s)", t->key, t->certificate,
                openssl_reason(why, sizeof why));
        return -EINVAL;
    }
    if (!*t->client_ca)
        return 0;
    if (readable("tls_client_ca", t->client_ca, err, errlen) < 0)
        return -EINVAL;
    STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(t->client_ca);
    if (!names || SSL_CTX_load_verify_file(ctx, t->client_ca) != 1) {
        sk_X509_NAME_pop_free(names, X509_NAME_free);
        pc_errf(err, errlen, "tls_client_ca: %s: %s", t->client_ca,
                openssl_reason(why, sizeof why));
        return -EINVAL;
    }
    SSL_CTX_set_client_CA_list(ctx, names); /* takes names */
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER |
                           (t->client_verify == PC_TLS_VERIFY_REQUIRE
                                ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT
                                : 0),
                       NULL);
    return 0;
}

static int configure(SSL_CTX *ctx, const struct pc_listener_config *l,
                     char *err, size_t errlen)
{
    const struct pc_tls_config *t = &l->tls;
    char why[256];
    int r;
    if ((r = set_versions(ctx, l, err, errlen)) < 0)
        return r;
    if (*t->ciphers && SSL_CTX_set_cipher_list(ctx, t->ciphers) != 1) {
        pc_errf(err, errlen, "tls_ciphers: '%s': %s", t->ciphers,
                openssl_reason(why, sizeof why));
        return -EINVAL;
    }
    if (*t->ciphersuites && SSL_CTX_set_ciphersuites(ctx, t->ciphersuites) != 1) {
        pc_errf(err, errlen, "tls_ciphersuites: '%s': %s", t->ciphersuites,
                openssl_reason(why, sizeof why));
        return -EINVAL;
    }
    if ((r = load_identity(ctx, l, err, errlen)) < 0 ||
        (r = set_alpn(ctx, l, err, errlen)) < 0)
        return r;
    /* Renegotiation is a known amplifier for handshake floods and nothing
     * here needs it; compression leaks secrets (CRIME). */
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE);
    /* An idle connection keeps no 34 KiB of record buffers; input is read
     * ahead in one system call per burst; non-blocking sockets retry in
     * the worker's loop, never inside OpenSSL. */
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_clear_mode(ctx, SSL_MODE_AUTO_RETRY);
    SSL_CTX_set_read_ahead(ctx, 1);
    /* Sessions of one listener never resume on another. */
    SSL_CTX_set_session_id_context(ctx, (const unsigned char *)l->name,
                                   (unsigned)strlen(l->name));
    /* Resumption is stateless (tickets), so workers share no cache. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    if (t->session_cache) {
        SSL_CTX_set_timeout(ctx, (long)t->session_timeout);
        SSL_CTX_set_num_tickets(ctx, 1);
        SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, pc_tls_ticket_cb);
        pc_tls_tickets_period(t->session_timeout);
    } else {
        SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
        SSL_CTX_set_num_tickets(ctx, 0);
    }
    if (t->ktls && pc_tls_kernel_has_ktls())
        SSL_CTX_set_options(ctx, SSL_OP_ENABLE_KTLS);
    return 0;
}

int pc_tls_context_build(struct pc_listener_config *l, char *err,
                         size_t errlen)
{
    l->tls_ctx = NULL;
    if (!*l->tls.certificate) {
        if (*l->tls.key || *l->tls.client_ca) {
            pc_errf(err, errlen, "%s: needs tls_certificate (TLS is on "
                    "when a certificate is set)",
                    *l->tls.key ? "tls_key" : "tls_client_ca");
            return -EINVAL;
        }
        return 0;
    }
    ERR_clear_error();
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        char why[256];
        pc_errf(err, errlen, "cannot make a TLS context: %s",
                openssl_reason(why, sizeof why));
        return -ENOMEM;
    }
    int r = configure(ctx, l, err, errlen);
    if (r < 0) {
        if (r == -ENOMEM)
            pc_errf(err, errlen, "out of memory");
        SSL_CTX_free(ctx);
        ERR_clear_error();
        return -EINVAL;
    }
    l->tls_ctx = ctx;
    return 0;
}

void pc_tls_context_release(struct pc_listener_config *l)
{
    SSL_CTX_free(l->tls_ctx);
    l->tls_ctx = NULL;
}
