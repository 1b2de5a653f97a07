/* A connection's access log line: the record it carries from the accept
 * (time, bytes each way) and the line it leaves at the close. */
#include <stdalign.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/access_log.h"
#include "workers/conn_state.h"
#include "workers/tls.h"
#include "workers/worker.h"

/* After the module state and, for TLS, the TLS state (whose extra bytes
 * already hold its worst-case padding). */
static size_t access_offset(const struct pc_conn *c)
{
    size_t at = sizeof *c + c->svc->proto->conn_size +
                ((c->flags & PC_CONN_TLS) ? pc_tls_conn_extra() : 0);
    size_t a = alignof(struct pc_conn_access);
    return (at + a - 1) / a * a;
}

size_t pc_conn_access_extra(void)
{
    return alignof(struct pc_conn_access) + sizeof(struct pc_conn_access);
}

struct pc_conn_access *pc_conn_access_of(struct pc_conn *c)
{
    if (!(c->flags & PC_CONN_ACCESS))
        return NULL;
    return (struct pc_conn_access *)(void *)((char *)c + access_offset(c));
}

void pc_conn_access_open(struct pc_conn *c)
{
    c->flags |= PC_CONN_ACCESS;
    struct pc_conn_access *a = pc_conn_access_of(c);
    memset(a, 0, sizeof *a);
    a->opened = ev_now(CONN_LOOP(c));
    pc_conn_peer(c, a->peer, sizeof a->peer);
}

void pc_conn_count(struct pc_conn *c, uint64_t in, uint64_t out)
{
    struct pc_conn_access *a = pc_conn_access_of(c);
    if (a) {
        a->in += in;
        a->out += out;
    }
}

/* TLS is flagged before the record is set up, at the accept, and never
 * after: the record's place does not move. */
void pc_conn_access_close(struct pc_conn *c, enum pc_close_reason why)
{
    const struct pc_conn_access *a = pc_conn_access_of(c);
    struct pc_worker *w = c->svc->w;
    /* Wall-clock time in UTC, to the millisecond: lines of every worker
     * and node sort together. */
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    char when[32];
    size_t n = strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(when + n, sizeof when - n, ".%03ldZ", ts.tv_nsec / 1000000);
    struct pc_tls_info tls;
    const char *version = "-";
    uint64_t in = a->in;
    if (pc_conn_tls(c, &tls)) {
        version = (c->flags & PC_CONN_HANDSHAKE) ? "handshake" : tls.version;
        in = pc_tls_bytes_read(c);
    }
    char line[PC_ACCESS_LINE_MAX];
    int len = snprintf(line, sizeof line, "%s listener=%s peer=%s worker=%u "
                       "duration=%.3f in=%llu out=%llu close=%s tls=%s\n",
                       when, c->svc->cfg->name, a->peer, w->id,
                       ev_now(w->loop) - a->opened, (unsigned long long)in,
                       (unsigned long long)a->out,
                       pc_close_reason_name(why), version);
    if (len > 0 && (size_t)len < sizeof line)
        pc_access_log_write(w->access_log, c->svc->slot, line, (size_t)len);
}
