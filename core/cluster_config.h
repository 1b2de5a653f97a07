/* The [cluster] section: several percored nodes sharing rooms through
 * Redis (docs/scaling.md). The framework parses and checks it, like the
 * other sections, so a bad value is reported with file and line before
 * anything starts, and `percored -t` checks it; the room core reads it
 * with pc_cluster_section(). It is a process-wide section, not a
 * listener's option: one node name and one Redis for every face that
 * shares the room core. Main thread. */
#ifndef PC_CORE_CLUSTER_CONFIG_H
#define PC_CORE_CLUSTER_CONFIG_H

#include <stddef.h>

#include "core/config.h"

/* The section's keys (terminated by a NULL name), for percored.ini(5). */
extern const struct pc_option pc_cluster_options[];

/* Sets the [cluster] defaults in cfg->cluster (node: the host name).
 * 0 or -errno with a message in err. */
int pc_cluster_config_defaults(struct pc_config *cfg, char *err,
                               size_t errlen);
/* Applies one `key = value` of [cluster]. 0 or -EINVAL with a message
 * naming where. */
int pc_cluster_config_apply(struct pc_config *cfg, const char *key,
                            const char *value, const char *where, char *err,
                            size_t errlen);
/* Checks the section as a whole once read (the redis address's form).
 * Returns 0, or -EINVAL with the reason in why, led by the key at fault
 * ("redis: ..."); the caller names its line (key_origin.h). */
int pc_cluster_config_check(const struct pc_config *cfg, char *why,
                            size_t size);
/* Whether a reload changed [cluster] (which needs a restart). */
int pc_cluster_config_changed(const struct pc_config *a,
                              const struct pc_config *b);

#endif
