/* The framework's config keys: value parsers, the [server] and listener
 * schemas, and applying a value to its field with a clear error. */
#include "core/config_keys.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/log.h"
#include "workers/backend.h"

void pc_errf(char *err, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, len, fmt, ap);
    va_end(ap);
}

/* ---- value parsers --------------------------------------------------- */

int pc_parse_int(const char *text, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (end == text || *end != '\0')
        return -EINVAL;
    if (errno == ERANGE)
        return -ERANGE;
    *out = v;
    return 0;
}

int pc_parse_size(const char *text, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (end == text || v < 0)
        return -EINVAL;
    if (errno == ERANGE)
        return -ERANGE;
    int shift = 0;
    switch (*end) {
    case '\0': break;
    case 'k': case 'K': shift = 10; end++; break;
    case 'm': case 'M': shift = 20; end++; break;
    case 'g': case 'G': shift = 30; end++; break;
    default: return -EINVAL;
    }
    if ((*end == 'b' || *end == 'B') && shift)
        end++;
    if (*end != '\0')
        return -EINVAL;
    if (v > (INT64_MAX >> shift))
        return -ERANGE;
    *out = (int64_t)v << shift;
    return 0;
}

int pc_parse_seconds(const char *text, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (end == text || !isfinite(v) || v < 0)
        return -EINVAL;
    if (strcmp(end, "s") == 0)
        end++;
    else if (strcmp(end, "ms") == 0) {
        v /= 1000;
        end += 2;
    }
    if (*end != '\0')
        return -EINVAL;
    *out = v;
    return 0;
}

int pc_parse_bool(const char *text, bool *out)
{
    static const char *const yes[] = {"1", "yes", "true", "on"};
    static const char *const no[] = {"0", "no", "false", "off"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(text, yes[i]) == 0)
            return *out = true, 0;
        if (strcasecmp(text, no[i]) == 0)
            return *out = false, 0;
    }
    return -EINVAL;
}

/* ---- schemas --------------------------------------------------------- */

/* ---- schemas --------------------------------------------------------- */

static const char *const dist_names[] = {"reuseport", "acceptor", NULL};
static const char *const verify_names[] = {"require", "optional", NULL};
static const char *const balance_names[] = {"round-robin",
                                            "least-connections", NULL};

#define S(f) offsetof(struct pc_config, f)
#define L(f) offsetof(struct pc_listener_config, f)
#define SZ(t, f) sizeof(((t *)0)->f)

const struct key_spec pc_server_keys[] = {
    {"workers", K_WORKERS, S(workers), 0, 0, 1024, NULL, "auto"},
    {"distribution", K_ENUM, S(distribution), 0, 0, 0, dist_names,
     "reuseport"},
    {"balance", K_ENUM, S(balance), 0, 0, 0, balance_names, "round-robin"},
    {"backend", K_BACKEND, S(backend), SZ(struct pc_config, backend), 0, 0,
     NULL, "auto"},
    {"max_connections", K_INT, S(max_connections), 0, 0, 1e9, NULL, "0"},
    {"max_connections_per_worker", K_INT, S(max_connections_per_worker), 0,
     0, 1e9, NULL, "0"},
    {"drain_timeout", K_SECONDS, S(drain_timeout), 0, 0, 86400, NULL, "10"},
    {"log_level", K_LOGLEVEL, S(log_level), 0, 0, 0, NULL, "info"},
    {"modules", K_STRING, S(modules), SZ(struct pc_config, modules), 0, 0,
     NULL, ""},
    {"pid_file", K_STRING, S(pid_file), SZ(struct pc_config, pid_file), 0, 0,
     NULL, ""},
    {"module_dir", K_STRING, S(module_dir), SZ(struct pc_config, module_dir),
     0, 0, NULL, ""},
    {NULL, 0, 0, 0, 0, 0, NULL, NULL},
};

/* distribution's default comes from [server], so it has none here. */
const struct key_spec pc_listener_keys[] = {
    {"listen", K_STRING, L(listen), SZ(struct pc_listener_config, listen), 0,
     0, NULL, NULL},
    {"protocol", K_STRING, L(protocol),
     SZ(struct pc_listener_config, protocol), 0, 0, NULL, NULL},
    {"backlog", K_INT, L(backlog), 0, 1, 1 << 20, NULL, "511"},
    {"distribution", K_ENUM, L(distribution), 0, 0, 0, dist_names, NULL},
    {"idle_timeout", K_SECONDS, L(idle_timeout), 0, 0, 1e7, NULL, "300"},
    {"flush_delay", K_SECONDS, L(flush_delay), 0, 0, 1, NULL, "0"},
    {"max_connections", K_INT, L(max_connections), 0, 0, 1e9, NULL, "0"},
    {"max_input", K_SIZE, L(max_input), 0, 64, 1LL << 32, NULL, "1M"},
    {"max_output", K_SIZE, L(max_output), 0, 64, 1LL << 34, NULL, "4M"},
    {"high_watermark", K_SIZE, L(high_watermark), 0, 1, 1LL << 34, NULL,
     "256K"},
    {"low_watermark", K_SIZE, L(low_watermark), 0, 0, 1LL << 34, NULL,
     "64K"},
    {"sndbuf", K_SIZE, L(sndbuf), 0, 0, 1LL << 30, NULL, "0"},
    {"rcvbuf", K_SIZE, L(rcvbuf), 0, 0, 1LL << 30, NULL, "0"},
    {"access_log", K_STRING, L(access_log),
     SZ(struct pc_listener_config, access_log), 0, 0, NULL, ""},
    /* TLS (core/tls_context.c checks the files and the lists). */
    {"tls_certificate", K_STRING, L(tls.certificate),
     SZ(struct pc_listener_config, tls.certificate), 0, 0, NULL, ""},
    {"tls_key", K_STRING, L(tls.key), SZ(struct pc_listener_config, tls.key),
     0, 0, NULL, ""},
    {"tls_protocols", K_STRING, L(tls.protocols),
     SZ(struct pc_listener_config, tls.protocols), 0, 0, NULL,
     "TLSv1.2 TLSv1.3"},
    /* Forward secrecy and AEAD only: Mozilla's "intermediate" list less
     * the DHE suites (which would need a dhparam file). */
    {"tls_ciphers", K_STRING, L(tls.ciphers),
     SZ(struct pc_listener_config, tls.ciphers), 0, 0, NULL,
     "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
     "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
     "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"},
    {"tls_ciphersuites", K_STRING, L(tls.ciphersuites),
     SZ(struct pc_listener_config, tls.ciphersuites), 0, 0, NULL,
     "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:"
     "TLS_CHACHA20_POLY1305_SHA256"},
    {"tls_alpn", K_STRING, L(tls.alpn), SZ(struct pc_listener_config, tls.alpn),
     0, 0, NULL, ""},
    {"tls_client_ca", K_STRING, L(tls.client_ca),
     SZ(struct pc_listener_config, tls.client_ca), 0, 0, NULL, ""},
    {"tls_client_verify", K_ENUM, L(tls.client_verify), 0, 0, 0, verify_names,
     "require"},
    {"tls_handshake_timeout", K_SECONDS, L(tls.handshake_timeout), 0, 0.001,
     3600, NULL, "10"},
    {"tls_session_cache", K_BOOL, L(tls.session_cache), 0, 0, 0, NULL, "on"},
    {"tls_session_timeout", K_SECONDS, L(tls.session_timeout), 0, 1, 86400,
     NULL, "3600"},
    {"tls_max_handshakes", K_INT, L(tls.max_handshakes), 0, 1, 1e6, NULL,
     "256"},
    {"tls_ktls", K_BOOL, L(tls.ktls), 0, 0, 0, NULL, "on"},
    {NULL, 0, 0, 0, 0, 0, NULL, NULL},
};

const struct key_spec *pc_key_find(const struct key_spec *t,
                                        const char *name)
{
    for (; t->name; t++)
        if (strcmp(t->name, name) == 0)
            return t;
    return NULL;
}

int pc_key_range(double v, double min, double max, const char *where,
                       const char *section, const char *key, char *err,
                       size_t errlen)
{
    if (v < min || v > max) {
        pc_errf(err, errlen, "%s: [%s] %s: %g is out of range (%g to %g)",
             where, section, key, v, min, max);
        return -ERANGE;
    }
    return 0;
}

int pc_key_apply(const struct key_spec *k, void *base, const char *value,
                      const char *where, const char *section, char *err,
                      size_t errlen)
{
    char *p = (char *)base + k->off;
    int64_t i;
    double d;
    int r;
    switch (k->type) {
    case K_INT:
    case K_SIZE:
        r = k->type == K_INT ? pc_parse_int(value, &i)
                             : pc_parse_size(value, &i);
        if (r < 0) {
            pc_errf(err, errlen, "%s: [%s] %s: '%s' is not %s", where, section,
                 k->name, value,
                 k->type == K_INT ? "a whole number"
                                  : "a size (like 4096, 64K, 1M)");
            return -EINVAL;
        }
        if ((r = pc_key_range((double)i, k->min, k->max, where, section,
                             k->name, err, errlen)) < 0)
            return r;
        *(int64_t *)p = i;
        return 0;
    case K_SECONDS:
        if (pc_parse_seconds(value, &d) < 0) {
            pc_errf(err, errlen, "%s: [%s] %s: '%s' is not a duration in "
                 "seconds (like 30, 0.5, 250ms)", where, section, k->name,
                 value);
            return -EINVAL;
        }
        if ((r = pc_key_range(d, k->min, k->max, where, section, k->name, err,
                             errlen)) < 0)
            return r;
        /* cppcheck-suppress invalidPointerCast ; p is a double (k->off) */
        *(double *)p = d;
        return 0;
    case K_STRING:
        if (strlen(value) >= k->len) {
            pc_errf(err, errlen, "%s: [%s] %s: value is too long (max %zu)",
                 where, section, k->name, k->len - 1);
            return -EINVAL;
        }
        memcpy(p, value, strlen(value) + 1);
        return 0;
    case K_ENUM:
        for (int c = 0; k->choices[c]; c++)
            if (strcmp(value, k->choices[c]) == 0)
                return *(int *)p = c, 0;
        pc_errf(err, errlen, "%s: [%s] %s: '%s' is not one of:", where, section,
             k->name, value);
        for (int c = 0; k->choices[c]; c++)
            snprintf(err + strlen(err), errlen - strlen(err), " %s",
                     k->choices[c]);
        return -EINVAL;
    case K_WORKERS:
        if (strcmp(value, "auto") == 0)
            return *(int64_t *)p = 0, 0;
        if (pc_parse_int(value, &i) < 0 || i < 1 || i > (int64_t)k->max) {
            pc_errf(err, errlen, "%s: [%s] %s: '%s' must be 'auto' or 1 to %g",
                 where, section, k->name, value, k->max);
            return -EINVAL;
        }
        *(int64_t *)p = i;
        return 0;
    case K_LOGLEVEL:
        if ((r = pc_log_level_parse(value)) < 0) {
            pc_errf(err, errlen, "%s: [%s] %s: '%s' is not one of: err warning "
                 "notice info debug", where, section, k->name, value);
            return -EINVAL;
        }
        *(int *)p = r;
        return 0;
    case K_BOOL: {
        bool b;
        if (pc_parse_bool(value, &b) < 0) {
            pc_errf(err, errlen, "%s: [%s] %s: '%s' is not on or off (yes/no, "
                    "true/false, 1/0)", where, section, k->name, value);
            return -EINVAL;
        }
        *(bool *)p = b;
        return 0;
    }
    case K_BACKEND:
        if (pc_backend_parse(value, NULL, err, errlen) < 0) {
            char why[PC_ERR_MAX / 2];
            snprintf(why, sizeof why, "%s", err);
            pc_errf(err, errlen, "%s: [%s] %s: %s", where, section, k->name,
                 why);
            return -EINVAL;
        }
        snprintf(p, k->len, "%s", value);
        return 0;
    }
    return -EINVAL;
}

int pc_key_defaults(const struct key_spec *t, void *base,
                         const char *section, char *err, size_t errlen)
{
    for (; t->name; t++)
        if (t->dflt) {
            int r = pc_key_apply(t, base, t->dflt, "built-in default", section,
                               err, errlen);
            if (r < 0)
                return r;
        }
    return 0;
}

/* ---- module options -------------------------------------------------- */
