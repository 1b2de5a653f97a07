/* A room's line as it travels through Redis (see cluster.h): text
 * fields joined by tabs, the line's own text last and untouched. Names
 * never hold tabs (faces refuse control characters in them), so only
 * the text needs no escaping. Input from Redis is checked like any
 * network input: a malformed payload is refused, never trusted. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocols/room/cluster.h"

#define FIELDS 13 /* before the text */

int cl_line_encode(const struct cl_line *ln, char **out, size_t *len)
{
    size_t size = 256 + sizeof ln->node + sizeof ln->nick + sizeof ln->user +
                  sizeof ln->host + sizeof ln->target + ln->len;
    char *p = malloc(size);
    if (!p)
        return -ENOMEM;
    int n = snprintf(p, size,
                     "1\t%s\t%08" PRIx32 "\t%u\t%" PRIu64 "\t%d\t%" PRId64
                     "\t%" PRIu64 "\t%" PRIu64 "\t%s\t%s\t%s\t%s\t",
                     ln->node, ln->run, ln->worker, ln->seq, (int)ln->kind,
                     ln->time_ms, ln->dedup, ln->from, ln->nick, ln->user,
                     ln->host, ln->target);
    if (n < 0 || (size_t)n + ln->len >= size) {
        free(p);
        return -EINVAL;
    }
    memcpy(p + n, ln->text, ln->len);
    *out = p;
    *len = (size_t)n + ln->len;
    return 0;
}

static int copy_field(char *dst, size_t size, const char *s, size_t n)
{
    if (n >= size)
        return -EINVAL;
    memcpy(dst, s, n);
    dst[n] = '\0';
    return 0;
}

static int number(const char *s, size_t n, int base, uint64_t *out)
{
    char buf[24];
    if (copy_field(buf, sizeof buf, s, n) < 0 || !n)
        return -EINVAL;
    char *end;
    *out = strtoull(buf, &end, base);
    return *end ? -EINVAL : 0;
}

int cl_line_decode(struct cl_line *ln, const char *data, size_t len)
{
    const char *f[FIELDS];
    size_t fl[FIELDS];
    const char *p = data, *end = data + len;
    for (unsigned i = 0; i < FIELDS; i++) {
        const char *tab = memchr(p, '\t', (size_t)(end - p));
        if (!tab)
            return -EINVAL;
        f[i] = p;
        fl[i] = (size_t)(tab - p);
        p = tab + 1;
    }
    uint64_t run, worker, kind, t;
    memset(ln, 0, sizeof *ln);
    if (fl[0] != 1 || f[0][0] != '1' ||
        copy_field(ln->node, sizeof ln->node, f[1], fl[1]) < 0 ||
        number(f[2], fl[2], 16, &run) < 0 ||
        number(f[3], fl[3], 10, &worker) < 0 ||
        number(f[4], fl[4], 10, &ln->seq) < 0 ||
        number(f[5], fl[5], 10, &kind) < 0 || kind > ROOM_EV_MISSED ||
        number(f[6], fl[6], 10, &t) < 0 ||
        number(f[7], fl[7], 10, &ln->dedup) < 0 ||
        number(f[8], fl[8], 10, &ln->from) < 0 ||
        copy_field(ln->nick, sizeof ln->nick, f[9], fl[9]) < 0 ||
        copy_field(ln->user, sizeof ln->user, f[10], fl[10]) < 0 ||
        copy_field(ln->host, sizeof ln->host, f[11], fl[11]) < 0 ||
        copy_field(ln->target, sizeof ln->target, f[12], fl[12]) < 0)
        return -EINVAL;
    ln->run = (uint32_t)run;
    ln->worker = (unsigned)worker;
    ln->kind = (enum room_event_kind)kind;
    ln->time_ms = (int64_t)t;
    ln->text = p;
    ln->len = (size_t)(end - p);
    return 0;
}
