/* percore-bench's TLS options, checked against the mode. Apart from
 * args.c so that it stays one screenful per concern; like it, no OpenSSL
 * here: the unit tests link the parser alone. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int pcb_parse_tls_version(const char *s, unsigned *out)
{
    if (strcmp(s, "1.2") == 0 || strcmp(s, "TLSv1.2") == 0)
        *out = 12;
    else if (strcmp(s, "1.3") == 0 || strcmp(s, "TLSv1.3") == 0)
        *out = 13;
    else
        return -EINVAL;
    return 0;
}

int pcb_check_tls(struct pcb_config *cfg, bool tls_given, char *err,
                  size_t errlen)
{
    const char *mode = pcb_mode_name(cfg->mode);
    if (cfg->mode == PCB_HANDSHAKE) {
        cfg->tls = true;
        return 0;
    }
    if (cfg->resume) {
        snprintf(err, errlen, "%s: --resume is for handshake mode", mode);
        return -EINVAL;
    }
    /* echo is where a message's cost with and without TLS is compared;
     * the other modes would measure handshakes, which handshake mode
     * does on its own. */
    if (tls_given && cfg->mode != PCB_ECHO) {
        snprintf(err, errlen,
                 "%s: --tls, --tls-version and --sni are for echo and "
                 "handshake",
                 mode);
        return -EINVAL;
    }
    if (tls_given)
        cfg->tls = true;
    return 0;
}
