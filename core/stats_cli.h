/* percored --stats: the running server's metrics as a table. */
#ifndef PC_CORE_STATS_CLI_H
#define PC_CORE_STATS_CLI_H

#include <stdio.h>

#include "core/config.h"

/* Scrapes the first metrics listener of cfg and prints one row a worker
 * (open, accepted, bytes in and out, messages, loops, queued, heap) with
 * a total, then one row a listener, to out. Returns 0, or 1 after one
 * error line on stderr (no metrics listener, no answer). */
int pc_stats_print(const struct pc_config *cfg, FILE *out);

#endif
