/* Module options of one listener: what core/config.c needs of
 * core/section.c to read them. Internal to core/; main thread. */
#ifndef PC_CORE_SECTION_H
#define PC_CORE_SECTION_H

#include "core/config.h"

/* The option `name` of o (terminated by a NULL name) and its index. */
const struct pc_option *pc_option_find(const struct pc_option *o,
                                       const char *name, unsigned *idx);
/* Parses value for option idx of s into s->values (strings are copied and
 * freed by pc_config_free). 0 or -errno with a message naming where. */
int pc_option_apply(struct pc_section *s, unsigned idx, const char *value,
                    const char *where, const char *section, char *err,
                    size_t errlen);

#endif
