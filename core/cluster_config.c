/* The [cluster] section's schema and checks (see cluster_config.h). The
 * values live in a struct pc_section, the type modules already read their
 * options from, so the room core reads them with pc_section_* and no new
 * public struct (and no ABI change) is needed. */
#include "core/cluster_config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/config_keys.h"
#include "core/section.h"

const struct pc_option pc_cluster_options[] = {
    {"redis", PC_OPT_STRING, "", 0, 0,
     "Redis as host:port, [v6]:port or unix:/path (required)"},
    {"node", PC_OPT_STRING, NULL, 0, 0,
     "this node's name, unique in the cluster"},
    {"history", PC_OPT_INT, "1000", 10, 10000000,
     "lines kept per room in Redis for gap recovery"},
    {"nick_ttl", PC_OPT_SECONDS, "30", 2, 86400,
     "seconds a dead node's nicks stay taken"},
    {"password", PC_OPT_STRING, "", 0, 0, "AUTH password, if Redis wants one"},
    {"user", PC_OPT_STRING, "", 0, 0, "ACL user for AUTH (Redis 6+)"},
    {"tls", PC_OPT_BOOL, "no", 0, 0, "TLS to Redis (not with hiredis 0.14)"},
    {"timeout", PC_OPT_SECONDS, "2", 0.05, 60,
     "seconds a Redis reply may take before the link counts as down"},
    {"hold", PC_OPT_SECONDS, "30", 0, 3600,
     "seconds a line said while Redis is away waits before its sender is "
     "told it was not delivered"},
    {"batch_delay", PC_OPT_SECONDS, "0", 0, 0.1,
     "seconds a room's line waits for more lines to go to Redis with it "
     "(0: those of the same loop pass)"},
    {NULL, 0, NULL, 0, 0, NULL},
};

int pc_cluster_config_defaults(struct pc_config *cfg, char *err,
                               size_t errlen)
{
    struct pc_section *s = &cfg->cluster;
    s->listener = NULL; /* not a listener's: no framework keys behind it */
    s->service = 0;
    s->options = pc_cluster_options;
    s->count = 0;
    for (; pc_cluster_options[s->count].name; s->count++) {
        int r = 0;
        if (pc_cluster_options[s->count].default_value)
            r = pc_option_apply(s, s->count,
                                pc_cluster_options[s->count].default_value,
                                "built-in default", "cluster", err, errlen);
        if (r < 0)
            return r;
    }
    char host[256] = "";
    if (gethostname(host, sizeof host - 1) != 0 || !host[0])
        snprintf(host, sizeof host, "percored");
    unsigned idx;
    pc_option_find(pc_cluster_options, "node", &idx);
    return pc_option_apply(s, idx, host, "built-in default", "cluster", err,
                           errlen);
}

int pc_cluster_config_apply(struct pc_config *cfg, const char *key,
                            const char *value, const char *where, char *err,
                            size_t errlen)
{
    unsigned idx;
    if (!pc_option_find(pc_cluster_options, key, &idx)) {
        pc_errf(err, errlen, "%s: [cluster] %s: unknown key (expected redis, "
                "node, history, nick_ttl, password, user, tls, timeout, "
                "hold or batch_delay)", where, key);
        return -EINVAL;
    }
    cfg->has_cluster = true;
    if (!*cfg->cluster_where) /* the section's first key */
        snprintf(cfg->cluster_where, sizeof cfg->cluster_where, "%s", where);
    return pc_option_apply(&cfg->cluster, idx, value, where, "cluster", err,
                           errlen);
}

/* host:port, [v6]:port or unix:/absolute/path. */
static int check_address(const char *a, char *why, size_t size)
{
    if (strncmp(a, "unix:", 5) == 0) {
        if (a[5] != '/') {
            snprintf(why, size, "unix: needs an absolute path");
            return -EINVAL;
        }
        return 0;
    }
    const char *colon = strrchr(a, ':');
    if (!a[0] || !colon || colon == a) {
        snprintf(why, size, "expected host:port or unix:/path");
        return -EINVAL;
    }
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end || port < 1 || port > 65535) {
        snprintf(why, size, "the port must be 1 to 65535");
        return -EINVAL;
    }
    return 0;
}

int pc_cluster_config_check(const struct pc_config *cfg, char *why,
                            size_t size)
{
    if (!cfg->has_cluster)
        return 0;
    const struct pc_section *s = &cfg->cluster;
    char bad[128];
    const char *redis = pc_section_string(s, "redis");
    if (!redis || !redis[0]) {
        snprintf(why, size, "redis: required (host:port or unix:/path)");
        return -EINVAL;
    }
    if (check_address(redis, bad, sizeof bad) < 0) {
        snprintf(why, size, "redis: '%s': %s", redis, bad);
        return -EINVAL;
    }
    const char *node = pc_section_string(s, "node");
    if (!node[0] || strlen(node) > 64 || strpbrk(node, " \t\r\n:")) {
        snprintf(why, size, "node: '%s' must be 1 to 64 characters without "
                 "spaces or ':'", node);
        return -EINVAL;
    }
    if (pc_section_bool(s, "tls")) {
        /* hiredis gained TLS in 1.0; Debian 12 ships 0.14. */
        snprintf(why, size, "tls: this build's hiredis (0.14) has no TLS; "
                 "reach Redis over a Unix socket or a TLS tunnel (stunnel, "
                 "spiped)");
        return -EINVAL;
    }
    return 0;
}

int pc_cluster_config_changed(const struct pc_config *a,
                              const struct pc_config *b)
{
    if (a->has_cluster != b->has_cluster)
        return 1;
    if (!a->has_cluster)
        return 0;
    for (unsigned i = 0; pc_cluster_options[i].name; i++) {
        const char *n = pc_cluster_options[i].name;
        const struct pc_section *x = &a->cluster, *y = &b->cluster;
        switch (pc_cluster_options[i].type) {
        case PC_OPT_STRING:
            if (strcmp(pc_section_string(x, n), pc_section_string(y, n)) != 0)
                return 1;
            break;
        case PC_OPT_SECONDS:
            if (pc_section_seconds(x, n) != pc_section_seconds(y, n))
                return 1;
            break;
        case PC_OPT_BOOL:
            if (pc_section_bool(x, n) != pc_section_bool(y, n))
                return 1;
            break;
        default:
            if (pc_section_int(x, n) != pc_section_int(y, n))
                return 1;
            break;
        }
    }
    return 0;
}
