/* ws mode's command line: which WebSocket server it speaks to. Kept out of
 * args.c, which holds what every mode shares. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "config.h"

int pcb_check_ws(struct pcb_config *cfg, char *err, size_t errlen)
{
    bool ws_target = cfg->target == PCB_TARGET_WEB ||
                     cfg->target == PCB_TARGET_BROADCAST;
    if (cfg->mode != PCB_WS) {
        if (!ws_target)
            return 0;
        snprintf(err, errlen, "--target %s is for ws mode",
                 pcb_target_name(cfg->target));
        return -EINVAL;
    }
    /* "percore" is the default of every mode; over WebSocket percored
     * speaks its web face's JSON. */
    if (cfg->target == PCB_TARGET_PERCORE)
        cfg->target = PCB_TARGET_WEB;
    if (cfg->target != PCB_TARGET_WEB && cfg->target != PCB_TARGET_BROADCAST) {
        snprintf(err, errlen,
                 "ws: --target %s: expected percore (its web face) or "
                 "broadcast",
                 pcb_target_name(cfg->target));
        return -EINVAL;
    }
    /* The web face's room names have no '#' (docs/protocols/web.md), and
     * a line's JSON is written without escaping: keep both plain. */
    if (cfg->target == PCB_TARGET_WEB && strchr(cfg->room, '#')) {
        snprintf(err, errlen, "ws: --room: no '#' in a web room name");
        return -EINVAL;
    }
    return 0;
}
