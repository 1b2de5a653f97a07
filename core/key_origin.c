/* Which key an after-the-fact check blames, and where the user set it. */
#include "core/key_origin.h"

#include <ctype.h>
#include <errno.h>
#include <string.h>

#include "core/config_keys.h"

const char *pc_key_origin(const struct pc_key_origins *o, const char *key,
                          size_t klen)
{
    /* The last setting wins, as it does for the value (--set after the
     * file). */
    for (size_t i = o->raw ? o->raw->n : 0; i-- > 0;) {
        const struct raw_entry *e = &o->raw->v[i];
        if (strlen(e->key) == klen && strncmp(e->key, key, klen) == 0 &&
            strcmp(e->section, o->section) == 0)
            return e->where;
    }
    return NULL;
}

static bool key_char(char c)
{
    return islower((unsigned char)c) || isdigit((unsigned char)c) || c == '_';
}

int pc_key_blame(const struct pc_key_origins *o, const char *why, char *err,
                 size_t errlen)
{
    size_t lead = 0;
    while (key_char(why[lead]))
        lead++;
    if (lead && why[lead] == ':' && why[lead + 1] == ' ') {
        const char *at = pc_key_origin(o, why, lead);
        if (at)
            pc_errf(err, errlen, "%s: [%s] %s", at, o->section, why);
        else
            pc_errf(err, errlen, "%s: [%s]: %s", o->fallback, o->section, why);
        return -EINVAL;
    }
    /* A sentence about several keys: the first one the user set. */
    for (const char *p = why; *p;) {
        if (!key_char(*p) || (p > why && key_char(p[-1]))) {
            p++;
            continue;
        }
        size_t n = 0;
        while (key_char(p[n]))
            n++;
        const char *at = pc_key_origin(o, p, n);
        if (at) {
            pc_errf(err, errlen, "%s: [%s] %.*s: %s", at, o->section, (int)n,
                    p, why);
            return -EINVAL;
        }
        p += n;
    }
    pc_errf(err, errlen, "%s: [%s]: %s", o->fallback, o->section, why);
    return -EINVAL;
}
