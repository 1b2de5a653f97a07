/* A listener's TLS settings as an OpenSSL SSL_CTX: certificate and key
 * (checked to match), versions, ciphers, ALPN, client certificates,
 * session tickets under rotating keys. Built when the config is read, so
 * `percored -t` and a reload refuse a bad file with OpenSSL's reason.
 * Main thread builds and frees; an SSL_CTX is then shared read-only by
 * every worker (OpenSSL makes SSL_new on one context thread-safe). */
#ifndef PC_CORE_TLS_CONTEXT_H
#define PC_CORE_TLS_CONTEXT_H

#include <stdbool.h>
#include <stddef.h>

#include "core/config.h"

/* Sets l->tls_ctx from l->tls when l->tls.certificate is set (else leaves
 * it NULL). Returns 0, or -EINVAL with one line in err led by the key at
 * fault ("tls_key: FILE: what is wrong"); the caller names the key's line
 * (key_origin.h). Main thread. */
int pc_tls_context_build(struct pc_listener_config *l, char *err,
                         size_t errlen);
/* Drops the config's reference to l->tls_ctx; connections accepted with it
 * keep it alive until they close. Main thread. */
void pc_tls_context_release(struct pc_listener_config *l);

/* Whether this kernel offers the "tls" upper-layer protocol (kTLS), read
 * from /proc once. Any thread after the first call on main. */
bool pc_tls_kernel_has_ktls(void);

/* The negotiated ALPN protocol of a connection ("" if none) into buf.
 * Worker thread of the connection. */
struct ssl_st;
const char *pc_tls_alpn_of(struct ssl_st *ssl, char *buf, size_t size);

#endif
