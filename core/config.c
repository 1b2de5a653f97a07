#include "core/config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ini.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/config_keys.h"
#include "core/config_raw.h"
#include "core/key_origin.h"
#include "core/listener.h"
#include "core/log.h"
#include "core/cluster_config.h"
#include "core/section.h"
#include "core/tls_context.h"

/* Phase one collects every key of the file and of the command line as
 * text with its origin (config_raw.h); phase two interprets them against
 * the schemas below. Two phases because a listener's valid keys depend on
 * its protocol, which may be named after its options or come from a
 * module loaded by the [server] section. */
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
/* ---- reading the file ------------------------------------------------ */

/* inih as Debian builds it does not pass line numbers to the handler, but
 * it calls the reader once per line, so the reader counts them. */
struct file_reader {
    FILE *f;
    struct raw_list *raw;
    int max_line;  /* inih's line buffer, less the terminator */
    int too_long;  /* the number of a line that did not fit, or 0 */
    /* A section that comes back after another one (inih would merge the
     * two silently, the later keys winning): where, and where it began. */
    bool dup;
    char dup_section[PC_NAME_MAX + 16];
    char dup_first[PC_ADDR_MAX + 16], dup_where[PC_ADDR_MAX + 16];
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
    struct raw_list *raw = fr->raw;
    char where[PC_ADDR_MAX + 16];
    snprintf(where, sizeof where, "%s:%d", raw->file, raw->line);
    if (fr->dup)
        return 0; /* inih reads on after an error: the first one counts */
    if (raw->n && strcmp(raw->v[raw->n - 1].section, section) != 0)
        for (size_t i = 0; i < raw->n; i++)
            if (strcmp(raw->v[i].section, section) == 0) {
                fr->dup = true;
                snprintf(fr->dup_section, sizeof fr->dup_section, "%s",
                         section);
                snprintf(fr->dup_first, sizeof fr->dup_first, "%s",
                         raw->v[i].where);
                snprintf(fr->dup_where, sizeof fr->dup_where, "%s", where);
                return 0;
            }
    return raw_add(raw, section, name, value, where) == 0;
}

static int read_file(struct raw_list *raw, const char *file, char *err,
                     size_t errlen)
{
    FILE *f = fopen(file, "r");
    if (!f) {
        int e = errno;
        pc_errf(err, errlen, "%s: cannot open config file: %s", file,
             strerror(e));
        return -e;
    }
    struct file_reader fr = {.f = f, .raw = raw};
    raw->file = file;
    raw->line = 0;
    int r = ini_parse_stream(line_reader, &fr, ini_entry, &fr);
    fclose(f);
    if (fr.too_long) {
        pc_errf(err, errlen, "%s:%d: line longer than %d characters", file,
             fr.too_long, fr.max_line);
        return -EINVAL;
    }
    if (fr.dup) {
        pc_errf(err, errlen, "%s: [%s]: a second section of that name (the "
                "first is at %s); put its keys in one section",
                fr.dup_where, fr.dup_section, fr.dup_first);
        return -EINVAL;
    }
    if (r > 0) {
        pc_errf(err, errlen, "%s:%d: syntax error (expected [section] or "
             "key = value)", file, r);
        return -EINVAL;
    }
    if (r < 0) {
        pc_errf(err, errlen, "%s: cannot read config file", file);
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
        pc_errf(err, errlen, "--listen %s: expected PROTOCOL@ADDRESS, like "
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

/* --set SECTION.KEY=VALUE, or a shortcut for one (`as`: "--backend", as
 * typed; NULL for --set itself), which is what its errors then name. */
static int add_set_override(struct raw_list *raw, const char *spec,
                            const char *as, char *err, size_t errlen)
{
    const char *eq = strchr(spec, '=');
    const char *dot = eq ? memchr(spec, '.', (size_t)(eq - spec)) : NULL;
    if (!eq || !dot || dot == spec) {
        pc_errf(err, errlen, "--set %s: expected SECTION.KEY=VALUE, like "
             "server.workers=4 or echo.idle_timeout=60", spec);
        return -EINVAL;
    }
    char section[PC_NAME_MAX + 16], key[PC_NAME_MAX];
    if ((size_t)(dot - spec) == 6 && strncmp(spec, "server", 6) == 0)
        snprintf(section, sizeof section, "server");
    else if ((size_t)(dot - spec) == 7 && strncmp(spec, "cluster", 7) == 0)
        snprintf(section, sizeof section, "cluster");
    else
        snprintf(section, sizeof section, "listener %.*s",
                 (int)(dot - spec), spec);
    snprintf(key, sizeof key, "%.*s", (int)(eq - dot - 1), dot + 1);
    char where[PC_ADDR_MAX + 16];
    if (as)
        snprintf(where, sizeof where, "%s", as);
    else
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
        pc_errf(err, errlen, "%s: too many listeners (max %d)", where,
             PC_MAX_LISTENERS);
        return NULL;
    }
    if (!*name || strlen(name) >= PC_NAME_MAX) {
        pc_errf(err, errlen, "%s: [listener %s]: a listener needs a name of 1 "
             "to %d characters", where, name, PC_NAME_MAX - 1);
        return NULL;
    }
    struct pc_listener_config *l = &cfg->listeners[cfg->nlisteners++];
    memset(l, 0, sizeof *l);
    snprintf(l->name, sizeof l->name, "%s", name);
    snprintf(l->where, sizeof l->where, "%s", where);
    l->distribution = -1;
    if (pc_key_defaults(pc_listener_keys, l, "listener", err, errlen) < 0)
        return NULL;
    return l;
}

static int interpret(struct pc_config *cfg, struct raw_list *raw, char *err,
                     size_t errlen)
{
    int r;
    const char *mods_where = "built-in default";
    /* Server keys first: modules must be loaded before listeners are read. */
    for (size_t i = 0; i < raw->n; i++) {
        struct raw_entry *e = &raw->v[i];
        if (strcmp(e->section, "server") != 0)
            continue;
        const struct key_spec *k = pc_key_find(pc_server_keys, e->key);
        if (!k) {
            pc_errf(err, errlen, "%s: [server] %s: unknown key", e->where,
                 e->key);
            return -EINVAL;
        }
        if ((r = pc_key_apply(k, cfg, e->value, e->where, "server", err,
                            errlen)) < 0)
            return r;
        e->used = true;
        if (strcmp(e->key, "modules") == 0)
            mods_where = e->where;
    }
    char mods[sizeof cfg->modules];
    snprintf(mods, sizeof mods, "%s", cfg->modules);
    for (char *save, *m = strtok_r(mods, " \t,", &save); m;
         m = strtok_r(NULL, " \t,", &save))
        if ((r = pc_proto_load_named(m, cfg->module_dir, err, errlen)) < 0) {
            char why[PC_ERR_MAX / 2];
            snprintf(why, sizeof why, "%s", err);
            pc_errf(err, errlen, "%s: [server] modules: %s", mods_where, why);
            return r;
        }

    /* Listener sections and their standard keys. */
    for (size_t i = 0; i < raw->n; i++) {
        struct raw_entry *e = &raw->v[i];
        if (e->used)
            continue;
        if (strcmp(e->section, "cluster") == 0) {
            if ((r = pc_cluster_config_apply(cfg, e->key, e->value, e->where,
                                             err, errlen)) < 0)
                return r;
            e->used = true;
            continue;
        }
        if (strncmp(e->section, "listener ", 9) != 0) {
            pc_errf(err, errlen, "%s: [%s]: unknown section (expected [server], "
                 "[cluster] or [listener NAME])", e->where, e->section);
            return -EINVAL;
        }
        struct pc_listener_config *l =
            listener_get(cfg, e->section + 9, e->where, err, errlen);
        if (!l)
            return -EINVAL;
        const struct key_spec *k = pc_key_find(pc_listener_keys, e->key);
        if (!k)
            continue; /* a module option, read below */
        if ((r = pc_key_apply(k, l, e->value, e->where, e->section, err,
                            errlen)) < 0)
            return r;
        e->used = true;
        if (strcmp(e->key, "listen") == 0)
            snprintf(l->listen_where, sizeof l->listen_where, "%s", e->where);
    }

    for (unsigned li = 0; li < cfg->nlisteners; li++) {
        struct pc_listener_config *l = &cfg->listeners[li];
        char section[PC_NAME_MAX + 16];
        snprintf(section, sizeof section, "listener %s", l->name);
        const struct pc_key_origins at = {raw, section, l->where};
        char why[PC_ERR_MAX / 2] = "";
        if (!*l->protocol || !*l->listen) {
            pc_errf(err, errlen, "%s: [listener %s]: '%s' is required", l->where,
                 l->name, *l->protocol ? "listen" : "protocol");
            return -EINVAL;
        }
        l->proto = pc_proto_find(l->protocol);
        if (!l->proto) {
            snprintf(why, sizeof why, "protocol: unknown protocol '%s' (built "
                     "in: echo chat metrics; others need [server] modules = "
                     "/path/to/module.so)", l->protocol);
            return pc_key_blame(&at, why, err, errlen);
        }
        if (l->distribution < 0)
            l->distribution = cfg->distribution;
        if (strncmp(l->listen, "unix:", 5) == 0)
            l->distribution = PC_DIST_ACCEPTOR; /* no SO_REUSEPORT for AF_UNIX */
        if (l->low_watermark >= l->high_watermark) {
            snprintf(why, sizeof why, "low_watermark (%lld) must be below "
                     "high_watermark (%lld)", (long long)l->low_watermark,
                     (long long)l->high_watermark);
            return pc_key_blame(&at, why, err, errlen);
        }
        if (*l->access_log && l->access_log[0] != '/' &&
            strcmp(l->access_log, "stderr") != 0 &&
            strcmp(l->access_log, "syslog") != 0) {
            snprintf(why, sizeof why, "access_log: '%s' must be an absolute "
                     "path, stderr or syslog", l->access_log);
            return pc_key_blame(&at, why, err, errlen);
        }
        if (l->high_watermark > l->max_output) {
            snprintf(why, sizeof why, "high_watermark (%lld) must not exceed "
                     "max_output (%lld)", (long long)l->high_watermark,
                     (long long)l->max_output);
            return pc_key_blame(&at, why, err, errlen);
        }
        struct pc_section *s = &l->section;
        s->listener = l->name;
        s->service = li; /* the first config's slots are its indexes */
        l->slot = li;
        s->options = l->proto->options;
        for (s->count = 0; s->options && s->options[s->count].name;
             s->count++) {
            if (s->count == PC_MAX_MODULE_OPTIONS) {
                pc_errf(err, errlen, "module %s declares more than %d options",
                     l->protocol, PC_MAX_MODULE_OPTIONS);
                return -EINVAL;
            }
            if (s->options[s->count].default_value &&
                (r = pc_option_apply(s, s->count,
                                  s->options[s->count].default_value,
                                  "built-in default", l->name, err,
                                  errlen)) < 0)
                return r;
        }
        for (size_t i = 0; i < raw->n; i++) {
            struct raw_entry *e = &raw->v[i];
            if (e->used || strcmp(e->section, section) != 0)
                continue;
            unsigned idx;
            if (!pc_option_find(s->options, e->key, &idx)) {
                pc_errf(err, errlen, "%s: [%s] %s: unknown key for protocol %s",
                     e->where, e->section, e->key, l->protocol);
                return -EINVAL;
            }
            if ((r = pc_option_apply(s, idx, e->value, e->where, e->section,
                                  err, errlen)) < 0)
                return r;
            e->used = true;
        }
        if (l->proto->check && l->proto->check(s, why, sizeof why) != 0)
            return pc_key_blame(&at, *why ? why : "rejected by its protocol "
                                "module", err, errlen);
        if (pc_tls_context_build(l, why, sizeof why) < 0)
            return pc_key_blame(&at, why, err, errlen);
    }
    const struct pc_key_origins cluster = {raw, "cluster", cfg->cluster_where};
    char why[PC_ERR_MAX / 2];
    if (pc_cluster_config_check(cfg, why, sizeof why) < 0)
        return pc_key_blame(&cluster, why, err, errlen);
    return 0;
}

/* ---- listen addresses that overlap ----------------------------------- */

/* An inet address reduced to what a bind compares: the family (IPv4-mapped
 * IPv6 counted as IPv4), the 16 address bytes, whether it is a wildcard,
 * and the port. */
struct bind_key {
    int family;
    unsigned char addr[16];
    bool any;
    unsigned port;
};

static bool bind_key_of(const struct pc_sockaddr *a, struct bind_key *k)
{
    memset(k, 0, sizeof *k);
    if (a->ss.ss_family == AF_INET) {
        const struct sockaddr_in *v4 = (const void *)&a->ss;
        k->family = AF_INET;
        memcpy(k->addr, &v4->sin_addr, 4);
        k->any = v4->sin_addr.s_addr == htonl(INADDR_ANY);
        k->port = ntohs(v4->sin_port);
        return true;
    }
    if (a->ss.ss_family != AF_INET6)
        return false;
    const struct sockaddr_in6 *v6 = (const void *)&a->ss;
    k->port = ntohs(v6->sin6_port);
    if (IN6_IS_ADDR_V4MAPPED(&v6->sin6_addr)) {
        k->family = AF_INET;
        memcpy(k->addr, v6->sin6_addr.s6_addr + 12, 4);
        k->any = memcmp(k->addr, "\0\0\0\0", 4) == 0;
        return true;
    }
    k->family = AF_INET6;
    memcpy(k->addr, &v6->sin6_addr, 16);
    k->any = IN6_IS_ADDR_UNSPECIFIED(&v6->sin6_addr);
    return true;
}

/* Whether two listeners would fight over one port: the same address, or a
 * wildcard covering the other (:: is dual-stack here, so it covers IPv4
 * too). A port of 0 is the kernel's choice and never clashes. */
static bool binds_overlap(const struct pc_sockaddr *a,
                          const struct pc_sockaddr *b)
{
    if (a->ss.ss_family == AF_UNIX || b->ss.ss_family == AF_UNIX)
        return a->ss.ss_family == b->ss.ss_family && a->len == b->len &&
               memcmp(&a->ss, &b->ss, a->len) == 0;
    struct bind_key x, y;
    if (!bind_key_of(a, &x) || !bind_key_of(b, &y) || x.port != y.port ||
        x.port == 0)
        return false;
    if ((x.any && x.family == AF_INET6) || (y.any && y.family == AF_INET6))
        return true;
    if (x.family != y.family)
        return false;
    return x.any || y.any || memcmp(x.addr, y.addr, 16) == 0;
}

static int check_overlaps(const struct pc_config *cfg, char *err,
                          size_t errlen)
{
    struct pc_sockaddr addr[PC_MAX_LISTENERS];
    for (unsigned i = 0; i < cfg->nlisteners; i++) {
        const struct pc_listener_config *l = &cfg->listeners[i];
        char why[PC_ERR_MAX / 2];
        if (pc_listen_parse(l->listen, &addr[i], why, sizeof why) < 0) {
            pc_errf(err, errlen, "%s: [listener %s] listen: %s",
                    l->listen_where, l->name, why);
            return -EINVAL;
        }
        for (unsigned j = 0; j < i; j++)
            if (binds_overlap(&addr[j], &addr[i])) {
                const struct pc_listener_config *o = &cfg->listeners[j];
                pc_errf(err, errlen, "%s: [listener %s] listen: %s overlaps "
                        "[listener %s] listen = %s (%s): both cannot bind",
                        l->listen_where, l->name, l->listen, o->name,
                        o->listen, o->listen_where);
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
    int r = pc_key_defaults(pc_server_keys, cfg, "server", err, errlen);
    if (r == 0)
        r = pc_cluster_config_defaults(cfg, err, errlen);
    if (r < 0) {
        pc_config_free(cfg);
        return r;
    }
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
        if ((r = add_set_override(&raw, ov->set[i], ov->set_as[i], err,
                                  errlen)) < 0)
            goto out;
    r = interpret(cfg, &raw, err, errlen);
    if (r == 0)
        r = check_overlaps(cfg, err, errlen);
out:
    free(raw.v);
    if (r < 0)
        pc_config_free(cfg);
    return r;
}

void pc_config_free(struct pc_config *cfg)
{
    for (unsigned i = 0; i < PC_MAX_MODULE_OPTIONS; i++) {
        free(cfg->cluster.values[i].s);
        cfg->cluster.values[i].s = NULL;
    }
    for (unsigned li = 0; li < cfg->nlisteners; li++) {
        pc_tls_context_release(&cfg->listeners[li]);
        struct pc_section *s = &cfg->listeners[li].section;
        for (unsigned i = 0; i < PC_MAX_MODULE_OPTIONS; i++) {
            free(s->values[i].s);
            s->values[i].s = NULL;
        }
    }
}
