/* The cluster's metrics (docs/scaling.md), through the module metrics
 * API: the worker's counters (struct cl_stats, which the log line also
 * shows) are copied into the series once a tick, as deltas, so the hot
 * paths only bump a plain counter. One series per worker summed by the
 * exposition: percore_cluster_link_up is the number of workers whose
 * link is up. The publish-to-delivery lag is a counter per bucket (the
 * API has no histogram type): buckets are not cumulative. */
#include <stdlib.h>

#include "protocols/room/cluster.h"

static const char *const link_events[] = {"connect", "failure", "timeout",
                                          NULL};
static const char *const publish_results[] = {"ok", "failed", NULL};
static const char *const origins[] = {"this_node", "other_node", NULL};
static const char *const gap_ends[] = {"filled", "announced", NULL};
static const char *const nick_events[] = {"claimed", "lost", NULL};
static const char *const directions[] = {"out", "in", NULL};
static const char *const lag_buckets[] = {"1ms", "2ms", "5ms", "10ms",
                                          "50ms", "100ms", "1s", "more",
                                          NULL};

enum { M_UP, M_LINK, M_PUBLISH, M_DELIVERED, M_GAPS, M_HELD, M_LOST_LINES,
       M_NICKS, M_PRIVATE, M_LAG, M_COUNT };

static const struct pc_metric_def defs[M_COUNT] = {
    [M_UP] = {"percore_cluster_link_up", PC_METRIC_GAUGE,
              "Workers whose Redis link is up", NULL, NULL},
    [M_LINK] = {"percore_cluster_link_events_total", PC_METRIC_COUNTER,
                "Redis links made, lost, and lost to a timeout", "event",
                link_events},
    [M_PUBLISH] = {"percore_cluster_published_total", PC_METRIC_COUNTER,
                   "Room events sent to Redis, by result", "result",
                   publish_results},
    [M_DELIVERED] = {"percore_cluster_delivered_total", PC_METRIC_COUNTER,
                     "Room events delivered in Redis's order, by the node "
                     "they were said on", "from", origins},
    [M_GAPS] = {"percore_cluster_gap_lines_total", PC_METRIC_COUNTER,
                "Lines read from a room's stream to fill a gap, and gaps "
                "announced to members as possibly lost", "end", gap_ends},
    [M_HELD] = {"percore_cluster_held_lines", PC_METRIC_GAUGE,
                "Lines waiting for Redis now", NULL, NULL},
    [M_LOST_LINES] = {"percore_cluster_not_delivered_total",
                      PC_METRIC_COUNTER,
                      "Lines dropped after waiting for Redis (sender told)",
                      NULL, NULL},
    [M_NICKS] = {"percore_cluster_nicks_total", PC_METRIC_COUNTER,
                 "Nick claims sent to Redis, and nicks lost to another node",
                 "event", nick_events},
    [M_PRIVATE] = {"percore_cluster_private_lines_total", PC_METRIC_COUNTER,
                   "Private lines to and from other nodes", "direction",
                   directions},
    [M_LAG] = {"percore_cluster_delivery_lag_total", PC_METRIC_COUNTER,
               "Lines delivered, by time from said to delivered here "
               "(buckets are not cumulative)", "under", lag_buckets},
};

struct cl_metrics {
    struct pc_metric *m[M_COUNT];
    struct cl_stats last;
    struct cl_link_stats last_link;
};

struct cl_metrics *cl_metrics_new(struct pc_worker *w)
{
    struct cl_metrics *m = calloc(1, sizeof *m);
    for (unsigned i = 0; m && i < M_COUNT; i++)
        m->m[i] = pc_metric_new(w, &defs[i], NULL);
    return m;
}

void cl_metrics_free(struct cl_metrics *m)
{
    free(m); /* the series are the framework's */
}

static void add(struct pc_metric *m, unsigned i, uint64_t now, uint64_t *last)
{
    if (now != *last)
        pc_metric_add(m, i, (int64_t)(now - *last));
    *last = now;
}

void cl_metrics_update(struct cl_metrics *m, const struct room_cluster *cl)
{
    if (!m)
        return;
    const struct cl_stats *s = &cl->stats;
    struct cl_stats *l = &m->last;
    const struct cl_link_stats *ls = cl_link_stats(cl->link);
    pc_metric_set(m->m[M_UP], 0, cl_link_up(cl->link));
    add(m->m[M_LINK], 0, ls->connects, &m->last_link.connects);
    add(m->m[M_LINK], 1, ls->failures, &m->last_link.failures);
    add(m->m[M_LINK], 2, ls->timeouts, &m->last_link.timeouts);
    add(m->m[M_PUBLISH], 0, s->published, &l->published);
    add(m->m[M_PUBLISH], 1, s->publish_failed, &l->publish_failed);
    uint64_t here = s->delivered - s->remote_delivered;
    uint64_t last_here = l->delivered - l->remote_delivered;
    add(m->m[M_DELIVERED], 0, here, &last_here);
    add(m->m[M_DELIVERED], 1, s->remote_delivered, &l->remote_delivered);
    l->delivered = s->delivered;
    add(m->m[M_GAPS], 0, s->gaps_filled, &l->gaps_filled);
    add(m->m[M_GAPS], 1, s->gaps_announced, &l->gaps_announced);
    pc_metric_set(m->m[M_HELD], 0, cl->held);
    add(m->m[M_LOST_LINES], 0, s->not_delivered, &l->not_delivered);
    add(m->m[M_NICKS], 0, s->nick_claims, &l->nick_claims);
    add(m->m[M_NICKS], 1, s->nick_lost, &l->nick_lost);
    add(m->m[M_PRIVATE], 0, s->tells_out, &l->tells_out);
    add(m->m[M_PRIVATE], 1, s->tells_in, &l->tells_in);
    for (unsigned i = 0; i < CL_LAG_BUCKETS; i++)
        add(m->m[M_LAG], i, s->lag[i], &l->lag[i]);
}

void cl_stats_lag(struct cl_stats *s, int64_t lag_ms)
{
    static const int64_t under[CL_LAG_BUCKETS - 1] = {1, 2, 5, 10, 50, 100,
                                                     1000};
    unsigned i = 0;
    while (i < CL_LAG_BUCKETS - 1 && lag_ms >= under[i])
        i++;
    s->lag[i]++;
}
