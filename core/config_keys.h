/* The schemas of the framework's config keys ([server] and listener
 * sections) and the value parsers: what core/config.c (reading and
 * interpreting a file) and core/section.c (module options, pc_section_*)
 * share. Internal to core/; main thread, except the tables, which are
 * constant. */
#ifndef PC_CORE_CONFIG_KEYS_H
#define PC_CORE_CONFIG_KEYS_H

#include <stddef.h>

#include "core/config.h"

enum key_type { K_INT, K_SIZE, K_SECONDS, K_STRING, K_ENUM, K_WORKERS,
                K_LOGLEVEL, K_BACKEND, K_BOOL };

struct key_spec {
    const char *name;
    enum key_type type;
    size_t off, len;
    double min, max;
    const char *const *choices; /* K_ENUM: NULL-terminated */
    const char *dflt;           /* NULL: no default (required or optional) */
};

/* Terminated by a NULL name. */
extern const struct key_spec pc_server_keys[];
extern const struct key_spec pc_listener_keys[];

/* snprintf into err (a message for the operator). */
void pc_errf(char *err, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The key `name` of table t, or NULL. */
const struct key_spec *pc_key_find(const struct key_spec *t, const char *name);
/* -ERANGE with a message naming where, section and key when v is outside
 * [min, max]; else 0. */
int pc_key_range(double v, double min, double max, const char *where,
                 const char *section, const char *key, char *err,
                 size_t errlen);
/* Parses value for key k into the struct at base (k->off). 0 or -errno with
 * a message naming where (file:line or the option typed) and section. */
int pc_key_apply(const struct key_spec *k, void *base, const char *value,
                 const char *where, const char *section, char *err,
                 size_t errlen);
/* Applies the default of every key of t that has one. */
int pc_key_defaults(const struct key_spec *t, void *base, const char *section,
                    char *err, size_t errlen);

#endif
