/* Module options: parsing a module's declared keys for one listener, and
 * pc_section_*, through which a module reads them (and the framework's
 * own listener keys). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config_keys.h"
#include "core/section.h"

const struct pc_option *pc_option_find(const struct pc_option *o,
                                           const char *name, unsigned *idx)
{
    for (unsigned i = 0; o && o[i].name; i++)
        if (strcmp(o[i].name, name) == 0)
            return *idx = i, &o[i];
    return NULL;
}

int pc_option_apply(struct pc_section *s, unsigned idx, const char *value,
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
            pc_errf(err, errlen, "%s: [%s] %s: '%s' is not %s", where, section,
                 o->name, value,
                 o->type == PC_OPT_INT ? "a whole number" : "a size");
            return -EINVAL;
        }
        if (pc_key_range((double)i, o->min, o->max, where, section, o->name,
                        err, errlen) < 0)
            return -ERANGE;
        s->values[idx].i = i;
        s->values[idx].d = (double)i;
        return 0;
    case PC_OPT_SECONDS:
        if (pc_parse_seconds(value, &d) < 0) {
            pc_errf(err, errlen, "%s: [%s] %s: '%s' is not a duration", where,
                 section, o->name, value);
            return -EINVAL;
        }
        if (pc_key_range(d, o->min, o->max, where, section, o->name, err,
                        errlen) < 0)
            return -ERANGE;
        s->values[idx].d = d;
        return 0;
    case PC_OPT_BOOL:
        if (pc_parse_bool(value, &b) < 0) {
            pc_errf(err, errlen, "%s: [%s] %s: '%s' is not yes or no", where,
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
    return s && pc_option_find(s->options, name, idx) ? s : NULL;
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
    /* [cluster] is a section of no listener (listener NULL). */
    const struct key_spec *k =
        s && s->listener ? pc_key_find(pc_listener_keys, name) : NULL;
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
