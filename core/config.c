#include "core/config.h"

#include <errno.h>
#include <ini.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/log.h"
#include "workers/backend.h"

/* Phase one collects every key of the file and of the command line as
 * text with its origin; phase two interprets them against the schemas
 * below. Two phases because a listener's valid keys depend on its
 * protocol, which may be named after its options or come from a module
 * loaded by the [server] section. */
struct raw_entry {
    char section[PC_NAME_MAX + 16];
    char key[PC_NAME_MAX];
    char value[PC_ADDR_MAX * 4];
    char where[PC_ADDR_MAX + 16];
    bool used;
};

struct raw_list {
    struct raw_entry *v;
    size_t n, cap;
    const char *file;
    int line;
};

static int raw_add(struct raw_list *r, const char *section, const char *key,
                   const char *value, const char *where)
{
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 64;
        struct raw_entry *v = realloc(r->v, cap * sizeof *v);
        if (!v)
            return -ENOMEM;
        r->v = v;
        r->cap = cap;
    }
    struct raw_entry *e = &r->v[r->n++];
    memset(e, 0, sizeof *e);
    snprintf(e->section, sizeof e->section, "%s", section);
    snprintf(e->key, sizeof e->key, "%s", key);
    snprintf(e->value, sizeof e->value, "%s", value);
    snprintf(e->where, sizeof e->where, "%s", where);
    return 0;
}

static void errf(char *err, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void errf(char *err, size_t len, const char *fmt, ...)
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

enum key_type { K_INT, K_SIZE, K_SECONDS, K_STRING, K_ENUM, K_WORKERS,
                K_LOGLEVEL, K_BACKEND };

struct key_spec {
    const char *name;
    enum key_type type;
    size_t off, len;
    double min, max;
    const char *const *choices; /* K_ENUM: NULL-terminated */
    const char *dflt;           /* NULL: no default (required or optional) */
};

static const char *const dist_names[] = {"reuseport", "acceptor", NULL};
static const char *const balance_names[] = {"round-robin",
                                            "least-connections", NULL};

#define S(f) offsetof(struct pc_config, f)
#define L(f) offsetof(struct pc_listener_config, f)
#define SZ(t, f) sizeof(((t *)0)->f)

static const struct key_spec server_keys[] = {
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
    {NULL, 0, 0, 0, 0, 0, NULL, NULL},
};

/* distribution's default comes from [server], so it has none here. */
static const struct key_spec listener_keys[] = {
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
    {NULL, 0, 0, 0, 0, 0, NULL, NULL},
};

static const struct key_spec *spec_find(const struct key_spec *t,
                                        const char *name)
{
    for (; t->name; t++)
        if (strcmp(t->name, name) == 0)
            return t;
    return NULL;
}

static int range_check(double v, double min, double max, const char *where,
                       const char *section, const char *key, char *err,
                       size_t errlen)
{
    if (v < min || v > max) {
        errf(err, errlen, "%s: [%s] %s: %g is out of range (%g to %g)",
             where, section, key, v, min, max);
        return -ERANGE;
    }
    return 0;
}

static int spec_apply(const struct key_spec *k, void *base, const char *value,
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
            errf(err, errlen, "%s: [%s] %s: '%s' is not %s", where, section,
                 k->name, value,
                 k->type == K_INT ? "a whole number"
                                  : "a size (like 4096, 64K, 1M)");
            return -EINVAL;
        }
        if ((r = range_check((double)i, k->min, k->max, where, section,
                             k->name, err, errlen)) < 0)
            return r;
        *(int64_t *)p = i;
        return 0;
    case K_SECONDS:
        if (pc_parse_seconds(value, &d) < 0) {
            errf(err, errlen, "%s: [%s] %s: '%s' is not a duration in "
                 "seconds (like 30, 0.5, 250ms)", where, section, k->name,
                 value);
            return -EINVAL;
        }
        if ((r = range_check(d, k->min, k->max, where, section, k->name, err,
                             errlen)) < 0)
            return r;
        /* cppcheck-suppress invalidPointerCast ; p is a double (k->off) */
        *(double *)p = d;
        return 0;
    case K_STRING:
        if (strlen(value) >= k->len) {
            errf(err, errlen, "%s: [%s] %s: value is too long (max %zu)",
                 where, section, k->name, k->len - 1);
            return -EINVAL;
        }
        memcpy(p, value, strlen(value) + 1);
        return 0;
    case K_ENUM:
        for (int c = 0; k->choices[c]; c++)
            if (strcmp(value, k->choices[c]) == 0)
                return *(int *)p = c, 0;
        errf(err, errlen, "%s: [%s] %s: '%s' is not one of:", where, section,
             k->name, value);
        for (int c = 0; k->choices[c]; c++)
            snprintf(err + strlen(err), errlen - strlen(err), " %s",
                     k->choices[c]);
        return -EINVAL;
    case K_WORKERS:
        if (strcmp(value, "auto") == 0)
            return *(int64_t *)p = 0, 0;
        if (pc_parse_int(value, &i) < 0 || i < 1 || i > (int64_t)k->max) {
            errf(err, errlen, "%s: [%s] %s: '%s' must be 'auto' or 1 to %g",
                 where, section, k->name, value, k->max);
            return -EINVAL;
        }
        *(int64_t *)p = i;
        return 0;
    case K_LOGLEVEL:
        if ((r = pc_log_level_parse(value)) < 0) {
            errf(err, errlen, "%s: [%s] %s: '%s' is not one of: err warning "
                 "notice info debug", where, section, k->name, value);
            return -EINVAL;
        }
        *(int *)p = r;
        return 0;
    case K_BACKEND:
        if (pc_backend_parse(value, NULL, err, errlen) < 0) {
            char why[PC_ERR_MAX / 2];
            snprintf(why, sizeof why, "%s", err);
            errf(err, errlen, "%s: [%s] %s: %s", where, section, k->name,
                 why);
            return -EINVAL;
        }
        snprintf(p, k->len, "%s", value);
        return 0;
    }
    return -EINVAL;
}

static int spec_defaults(const struct key_spec *t, void *base,
                         const char *section, char *err, size_t errlen)
{
    for (; t->name; t++)
        if (t->dflt) {
            int r = spec_apply(t, base, t->dflt, "built-in default", section,
                               err, errlen);
            if (r < 0)
                return r;
        }
    return 0;
}

/* ---- module options -------------------------------------------------- */

static const struct pc_option *option_find(const struct pc_option *o,
                                           const char *name, unsigned *idx)
{
    for (unsigned i = 0; o && o[i].name; i++)
        if (strcmp(o[i].name, name) == 0)
            return *idx = i, &o[i];
    return NULL;
}

static int option_apply(struct pc_section *s, unsigned idx, const char *value,
                        const char *where, const char *section, char *err,
                        size_t errlen)
{
    const struct pc_option *o = &s->options[idx];
    int64_t i;
    double d;
    bool b;
    switch (o->type) {
    case PC_OPT_INT:
    case PC_OPT_SIZE:
        if ((o->type == PC_OPT_INT ? pc_parse_int(value, &i)
                                   : pc_parse_size(value, &i)) < 0) {
            errf(err, errlen, "%s: [%s] %s: '%s' is not %s", where, section,
                 o->name, value,
                 o->type == PC_OPT_INT ? "a whole number" : "a size");
            return -EINVAL;
        }
        if (range_check((double)i, o->min, o->max, where, section, o->name,
                        err, errlen) < 0)
            return -ERANGE;
        s->values[idx].i = i;
        s->values[idx].d = (double)i;
        return 0;
    case PC_OPT_SECONDS:
        if (pc_parse_seconds(value, &d) < 0) {
            errf(err, errlen, "%s: [%s] %s: '%s' is not a duration", where,
                 section, o->name, value);
            return -EINVAL;
        }
        if (range_check(d, o->min, o->max, where, section, o->name, err,
                        errlen) < 0)
            return -ERANGE;
        s->values[idx].d = d;
        return 0;
    case PC_OPT_BOOL:
        if (pc_parse_bool(value, &b) < 0) {
            errf(err, errlen, "%s: [%s] %s: '%s' is not yes or no", where,
                 section, o->name, value);
            return -EINVAL;
        }
        s->values[idx].i = b;
        return 0;
    case PC_OPT_STRING: {
        char *copy = strdup(value);
        if (!copy)
            return -ENOMEM;
        free(s->values[idx].s);
        s->values[idx].s = copy;
        return 0;
    }
    }
    return -EINVAL;
}

static const struct pc_section *section_value(const struct pc_section *s,
                                              const char *name, unsigned *idx)
{
    return s && option_find(s->options, name, idx) ? s : NULL;
}

/* The framework's keys of the listener a section belongs to. */
static const struct pc_listener_config *section_owner(const struct pc_section *s)
{
    return (const struct pc_listener_config *)(const void *)((const char *)s -
        offsetof(struct pc_listener_config, section));
}

/* A framework listener key (max_input, idle_timeout...) of s's listener,
 * found through the same schema that parsed it: the address of its value,
 * or NULL when name is not a framework key of one of the given types. */
static const void *framework_value(const struct pc_section *s,
                                   const char *name, enum key_type a,
                                   enum key_type b)
{
    const struct key_spec *k = s ? spec_find(listener_keys, name) : NULL;
    if (!k || (k->type != a && k->type != b))
        return NULL;
    return (const char *)section_owner(s) + k->off;
}

int64_t pc_section_int(const struct pc_section *s, const char *name)
{
    unsigned i;
    if (section_value(s, name, &i))
        return s->values[i].i;
    const int64_t *v = framework_value(s, name, K_INT, K_SIZE);
    return v ? *v : 0;
}

double pc_section_seconds(const struct pc_section *s, const char *name)
{
    unsigned i;
    if (section_value(s, name, &i))
        return s->values[i].d;
    const double *v = framework_value(s, name, K_SECONDS, K_SECONDS);
    return v ? *v : 0;
}

bool pc_section_bool(const struct pc_section *s, const char *name)
{
    unsigned i;
    return section_value(s, name, &i) ? s->values[i].i != 0 : false;
}

const char *pc_section_string(const struct pc_section *s, const char *name)
{
    unsigned i;
    return section_value(s, name, &i) ? s->values[i].s : NULL;
}

const char *pc_section_listener(const struct pc_section *s)
{
    return s->listener;
}

unsigned pc_section_service(const struct pc_section *s)
{
    return s->service;
}

/* ---- reading the file ------------------------------------------------ */

/* inih as Debian builds it does not pass line numbers to the handler, but
 * it calls the reader once per line, so the reader counts them. */
struct file_reader {
    FILE *f;
    struct raw_list *raw;
    int max_line;  /* inih's line buffer, less the terminator */
    int too_long;  /* the number of a line that did not fit, or 0 */
};

static char *line_reader(char *str, int num, void *stream)
{
    struct file_reader *fr = stream;
    char *s = fgets(str, num, fr->f);
    if (!s)
        return NULL;
    fr->raw->line++;
    size_t len = strlen(s);
    /* A line longer than inih's buffer would come in pieces, each parsed
     * as a line of its own: stop (as at end of file) and say so. */
    if (len == (size_t)num - 1 && s[len - 1] != '\n' && !feof(fr->f)) {
        /* A line of exactly num - 1 characters fills the buffer too: it
         * fits if its line end (or the file's) comes next. */
        int next = getc(fr->f);
        if (next == '\n' || next == EOF)
            return s;
        (void)ungetc(next, fr->f); /* one byte back after getc: cannot fail */
        fr->max_line = num - 1;
        fr->too_long = fr->raw->line;
        return NULL;
    }
    return s;
}

static int ini_entry(void *user, const char *section, const char *name,
                     const char *value)
{
    struct file_reader *fr = user;
    char where[PC_ADDR_MAX + 16];
    snprintf(where, sizeof where, "%s:%d", fr->raw->file, fr->raw->line);
    return raw_add(fr->raw, section, name, value, where) == 0;
}

static int read_file(struct raw_list *raw, const char *file, char *err,
                     size_t errlen)
{
    FILE *f = fopen(file, "r");
    if (!f) {
        int e = errno;
        errf(err, errlen, "%s: cannot open config file: %s", file,
             strerror(e));
        return -e;
    }
    struct file_reader fr = {f, raw, 0, 0};
    raw->file = file;
    raw->line = 0;
    int r = ini_parse_stream(line_reader, &fr, ini_entry, &fr);
    fclose(f);
    if (fr.too_long) {
        errf(err, errlen, "%s:%d: line longer than %d characters", file,
             fr.too_long, fr.max_line);
        return -EINVAL;
    }
    if (r > 0) {
        errf(err, errlen, "%s:%d: syntax error (expected [section] or "
             "key = value)", file, r);
        return -EINVAL;
    }
    if (r < 0) {
        errf(err, errlen, "%s: cannot read config file", file);
        return -EIO;
    }
    return 0;
}

/* ---- command line ---------------------------------------------------- */

/* --listen [NAME=]PROTO@ADDRESS */
static int add_listen_override(struct raw_list *raw, const char *spec,
                               char *err, size_t errlen)
{
    const char *at = strchr(spec, '@');
    const char *eq = strchr(spec, '=');
    if (!at || at == spec || !at[1] || (eq && eq > at)) {
        errf(err, errlen, "--listen %s: expected PROTOCOL@ADDRESS, like "
             "echo@127.0.0.1:7007", spec);
        return -EINVAL;
    }
    const char *proto = eq ? eq + 1 : spec;
    char name[PC_NAME_MAX], protocol[PC_NAME_MAX], section[PC_NAME_MAX + 16];
    snprintf(protocol, sizeof protocol, "%.*s", (int)(at - proto), proto);
    if (eq)
        snprintf(name, sizeof name, "%.*s", (int)(eq - spec), spec);
    else
        snprintf(name, sizeof name, "%s", protocol);
    /* Unnamed listeners of one protocol get -2, -3 ... */
    for (int n = 2;; n++) {
        bool taken = false;
        snprintf(section, sizeof section, "listener %s", name);
        for (size_t i = 0; i < raw->n; i++)
            if (strcmp(raw->v[i].section, section) == 0)
                taken = true;
        if (!taken || eq)
            break;
        snprintf(name, sizeof name, "%.*s-%d", PC_NAME_MAX - 12, protocol,
                 n);
    }
    int r = raw_add(raw, section, "protocol", protocol, "--listen");
    if (r == 0)
        r = raw_add(raw, section, "listen", at + 1, "--listen");
    return r;
}

/* --set SECTION.KEY=VALUE */
static int add_set_override(struct raw_list *raw, const char *spec,
                            char *err, size_t errlen)
{
    const char *eq = strchr(spec, '=');
    const char *dot = eq ? memchr(spec, '.', (size_t)(eq - spec)) : NULL;
    if (!eq || !dot || dot == spec) {
        errf(err, errlen, "--set %s: expected SECTION.KEY=VALUE, like "
             "server.workers=4 or echo.idle_timeout=60", spec);
        return -EINVAL;
    }
    char section[PC_NAME_MAX + 16], key[PC_NAME_MAX];
    if ((size_t)(dot - spec) == 6 && strncmp(spec, "server", 6) == 0)
        snprintf(section, sizeof section, "server");
    else
        snprintf(section, sizeof section, "listener %.*s",
                 (int)(dot - spec), spec);
    snprintf(key, sizeof key, "%.*s", (int)(eq - dot - 1), dot + 1);
    char where[PC_ADDR_MAX + 16];
    snprintf(where, sizeof where, "--set %.*s", (int)(eq - spec), spec);
    return raw_add(raw, section, key, eq + 1, where);
}

/* ---- interpretation -------------------------------------------------- */

static struct pc_listener_config *listener_get(struct pc_config *cfg,
                                               const char *name,
                                               const char *where, char *err,
                                               size_t errlen)
{
    for (unsigned i = 0; i < cfg->nlisteners; i++)
        if (strcmp(cfg->listeners[i].name, name) == 0)
            return &cfg->listeners[i];
    if (cfg->nlisteners == PC_MAX_LISTENERS) {
        errf(err, errlen, "%s: too many listeners (max %d)", where,
             PC_MAX_LISTENERS);
        return NULL;
    }
    if (!*name || strlen(name) >= PC_NAME_MAX) {
        errf(err, errlen, "%s: [listener %s]: a listener needs a name of 1 "
             "to %d characters", where, name, PC_NAME_MAX - 1);
        return NULL;
    }
    struct pc_listener_config *l = &cfg->listeners[cfg->nlisteners++];
    memset(l, 0, sizeof *l);
    snprintf(l->name, sizeof l->name, "%s", name);
    snprintf(l->where, sizeof l->where, "%s", where);
    l->distribution = -1;
    if (spec_defaults(listener_keys, l, "listener", err, errlen) < 0)
        return NULL;
    return l;
}

static int interpret(struct pc_config *cfg, struct raw_list *raw, char *err,
                     size_t errlen)
{
    int r;
    /* Server keys first: modules must be loaded before listeners are read. */
    for (size_t i = 0; i < raw->n; i++) {
        struct raw_entry *e = &raw->v[i];
        if (strcmp(e->section, "server") != 0)
            continue;
        const struct key_spec *k = spec_find(server_keys, e->key);
        if (!k) {
            errf(err, errlen, "%s: [server] %s: unknown key", e->where,
                 e->key);
            return -EINVAL;
        }
        if ((r = spec_apply(k, cfg, e->value, e->where, "server", err,
                            errlen)) < 0)
            return r;
        e->used = true;
    }
    char mods[sizeof cfg->modules];
    snprintf(mods, sizeof mods, "%s", cfg->modules);
    for (char *save, *m = strtok_r(mods, " \t,", &save); m;
         m = strtok_r(NULL, " \t,", &save))
        if ((r = pc_proto_load(m, err, errlen)) < 0)
            return r;

    /* Listener sections and their standard keys. */
    for (size_t i = 0; i < raw->n; i++) {
        struct raw_entry *e = &raw->v[i];
        if (e->used)
            continue;
        if (strncmp(e->section, "listener ", 9) != 0) {
            errf(err, errlen, "%s: [%s]: unknown section (expected [server] "
                 "or [listener NAME])", e->where, e->section);
            return -EINVAL;
        }
        struct pc_listener_config *l =
            listener_get(cfg, e->section + 9, e->where, err, errlen);
        if (!l)
            return -EINVAL;
        const struct key_spec *k = spec_find(listener_keys, e->key);
        if (!k)
            continue; /* a module option, read below */
        if ((r = spec_apply(k, l, e->value, e->where, e->section, err,
                            errlen)) < 0)
            return r;
        e->used = true;
    }

    for (unsigned li = 0; li < cfg->nlisteners; li++) {
        struct pc_listener_config *l = &cfg->listeners[li];
        if (!*l->protocol || !*l->listen) {
            errf(err, errlen, "%s: [listener %s]: '%s' is required", l->where,
                 l->name, *l->protocol ? "listen" : "protocol");
            return -EINVAL;
        }
        l->proto = pc_proto_find(l->protocol);
        if (!l->proto) {
            errf(err, errlen, "%s: [listener %s] protocol: unknown protocol "
                 "'%s' (built in: echo chat metrics; others need [server] "
                 "modules = /path/to/module.so)", l->where, l->name,
                 l->protocol);
            return -EINVAL;
        }
        if (l->distribution < 0)
            l->distribution = cfg->distribution;
        if (strncmp(l->listen, "unix:", 5) == 0)
            l->distribution = PC_DIST_ACCEPTOR; /* no SO_REUSEPORT for AF_UNIX */
        if (l->low_watermark >= l->high_watermark ||
            l->high_watermark > l->max_output) {
            errf(err, errlen, "%s: [listener %s]: need low_watermark (%lld) "
                 "< high_watermark (%lld) <= max_output (%lld)", l->where,
                 l->name, (long long)l->low_watermark,
                 (long long)l->high_watermark, (long long)l->max_output);
            return -EINVAL;
        }
        struct pc_section *s = &l->section;
        s->listener = l->name;
        s->service = li;
        s->options = l->proto->options;
        for (s->count = 0; s->options && s->options[s->count].name;
             s->count++) {
            if (s->count == PC_MAX_MODULE_OPTIONS) {
                errf(err, errlen, "module %s declares more than %d options",
                     l->protocol, PC_MAX_MODULE_OPTIONS);
                return -EINVAL;
            }
            if (s->options[s->count].default_value &&
                (r = option_apply(s, s->count,
                                  s->options[s->count].default_value,
                                  "built-in default", l->name, err,
                                  errlen)) < 0)
                return r;
        }
        char section[PC_NAME_MAX + 16];
        snprintf(section, sizeof section, "listener %s", l->name);
        for (size_t i = 0; i < raw->n; i++) {
            struct raw_entry *e = &raw->v[i];
            if (e->used || strcmp(e->section, section) != 0)
                continue;
            unsigned idx;
            if (!option_find(s->options, e->key, &idx)) {
                errf(err, errlen, "%s: [%s] %s: unknown key for protocol %s",
                     e->where, e->section, e->key, l->protocol);
                return -EINVAL;
            }
            if ((r = option_apply(s, idx, e->value, e->where, e->section,
                                  err, errlen)) < 0)
                return r;
            e->used = true;
        }
        char why[256] = "";
        if (l->proto->check && l->proto->check(s, why, sizeof why) != 0) {
            errf(err, errlen, "%s: [listener %s]: %s", l->where, l->name,
                 *why ? why : "rejected by its protocol module");
            return -EINVAL;
        }
    }
    return 0;
}

int pc_config_load(struct pc_config *cfg, const char *file,
                   const struct pc_config_overrides *ov, char *err,
                   size_t errlen)
{
    memset(cfg, 0, sizeof *cfg);
    int r = spec_defaults(server_keys, cfg, "server", err, errlen);
    if (r < 0)
        return r;
    struct raw_list raw = {0};
    if (file) {
        snprintf(cfg->file, sizeof cfg->file, "%s", file);
        if ((r = read_file(&raw, file, err, errlen)) < 0)
            goto out;
    }
    for (unsigned i = 0; ov && i < ov->nlisten; i++)
        if ((r = add_listen_override(&raw, ov->listen[i], err, errlen)) < 0)
            goto out;
    bool has_listener = false;
    for (size_t i = 0; i < raw.n; i++)
        if (strncmp(raw.v[i].section, "listener ", 9) == 0)
            has_listener = true;
    if (!has_listener && (r = add_listen_override(&raw, "echo@127.0.0.1:7007",
                                                  err, errlen)) < 0)
        goto out;
    for (unsigned i = 0; ov && i < ov->nset; i++)
        if ((r = add_set_override(&raw, ov->set[i], err, errlen)) < 0)
            goto out;
    r = interpret(cfg, &raw, err, errlen);
out:
    free(raw.v);
    if (r < 0)
        pc_config_free(cfg);
    return r;
}

void pc_config_free(struct pc_config *cfg)
{
    for (unsigned li = 0; li < cfg->nlisteners; li++) {
        struct pc_section *s = &cfg->listeners[li].section;
        for (unsigned i = 0; i < PC_MAX_MODULE_OPTIONS; i++) {
            free(s->values[i].s);
            s->values[i].s = NULL;
        }
    }
}
