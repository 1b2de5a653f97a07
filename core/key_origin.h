/* Naming the line of the key at fault in errors found once every key is
 * read (one key against another, a TLS file, a module's check): the
 * reader keeps where each key was set, and these look it up. Internal to
 * core/; main thread, during pc_config_load only. */
#ifndef PC_CORE_KEY_ORIGIN_H
#define PC_CORE_KEY_ORIGIN_H

#include <stddef.h>

#include "core/config_raw.h"

struct pc_key_origins {
    const struct raw_list *raw;
    const char *section;  /* "server", "cluster" or "listener NAME" */
    const char *fallback; /* the section's own "file:line" */
};

/* Where `key` (klen bytes) of o's section was last set (the setting that
 * won), or NULL when it keeps its default. */
const char *pc_key_origin(const struct pc_key_origins *o, const char *key,
                          size_t klen);

/* Writes into err the error for reason `why` about o's section, named at
 * the key at fault: why's leading "KEY: " if it has one, else the first
 * key why mentions that the user set. With such a key:
 * "f:7: [listener chat] max_input: why" (the leading "KEY: " not
 * repeated); without one, the section: "f:3: [listener chat]: why".
 * Returns -EINVAL. */
int pc_key_blame(const struct pc_key_origins *o, const char *why, char *err,
                 size_t errlen);

#endif
