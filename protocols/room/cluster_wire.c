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

/* Appenders for cl_line_encode: it runs for every line a home sends, and
 * snprintf's format parsing was a tenth of a node's CPU at full load. */
static char *put_str(char *p, const char *s)
{
    size_t n = strlen(s);
    memcpy(p, s, n);
    p[n] = '\t';
    return p + n + 1;
}

static char *put_u64(char *p, uint64_t v)
{
    char tmp[20];
    unsigned n = 0;
    do
        tmp[n++] = (char)('0' + v % 10);
    while ((v /= 10));
    while (n)
        *p++ = tmp[--n];
    *p = '\t';
    return p + 1;
}

static char *put_hex32(char *p, uint32_t v)
{
    static const char hex[] = "0123456789abcdef";
    for (int i = 7; i >= 0; i--)
        *p++ = hex[(v >> (4 * i)) & 15];
    *p = '\t';
    return p + 1;
}

int cl_line_encode(const struct cl_line *ln, char **out, size_t *len)
{
    /* Every field is bounded: its array's size or 20 digits. */
    size_t size = 2 + 9 + 6 * 21 + strnlen(ln->node, sizeof ln->node) +
                  strnlen(ln->nick, sizeof ln->nick) +
                  strnlen(ln->user, sizeof ln->user) +
                  strnlen(ln->host, sizeof ln->host) +
                  strnlen(ln->target, sizeof ln->target) + 6 + ln->len;
    if (ln->time_ms < 0 || memchr(ln->node, 0, sizeof ln->node) == NULL ||
        memchr(ln->nick, 0, sizeof ln->nick) == NULL ||
        memchr(ln->user, 0, sizeof ln->user) == NULL ||
        memchr(ln->host, 0, sizeof ln->host) == NULL ||
        memchr(ln->target, 0, sizeof ln->target) == NULL)
        return -EINVAL;
    char *buf = malloc(size);
    if (!buf)
        return -ENOMEM;
    char *p = buf;
    *p++ = '1';
    *p++ = '\t';
    p = put_str(p, ln->node);
    p = put_hex32(p, ln->run);
    p = put_u64(p, ln->worker);
    p = put_u64(p, ln->seq);
    p = put_u64(p, (uint64_t)ln->kind);
    p = put_u64(p, (uint64_t)ln->time_ms);
    p = put_u64(p, ln->dedup);
    p = put_u64(p, ln->from);
    p = put_str(p, ln->nick);
    p = put_str(p, ln->user);
    p = put_str(p, ln->host);
    p = put_str(p, ln->target);
    memcpy(p, ln->text, ln->len);
    *out = buf;
    *len = (size_t)(p - buf) + ln->len;
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
    uint64_t v = 0;
    if (!n || n > (base == 16 ? 16u : 20u))
        return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        unsigned d = s[i] >= '0' && s[i] <= '9'   ? (unsigned)(s[i] - '0')
                     : s[i] >= 'a' && s[i] <= 'f' ? (unsigned)(s[i] - 'a' + 10)
                                                  : 99;
        if (d >= (unsigned)base ||
            v > (UINT64_MAX - d) / (uint64_t)base)
            return -EINVAL;
        v = v * (uint64_t)base + d;
    }
    *out = v;
    return 0;
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
