/* A worker's part of the cluster: made by the room core when the config
 * has [cluster], it owns the worker's Redis link and hands what the link
 * reports to the rooms (cluster_room.c) and nicks (cluster_nick.c). One
 * link per worker, not per node: the room's home worker is its node's
 * sequencer, and with its own connections it talks to Redis from its own
 * loop, with no hop through another thread. Two connections per worker
 * is the cost. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "protocols/room/cluster.h"

#define TICK 1.0        /* seconds between housekeeping passes */
#define LOG_EVERY 60.0  /* seconds between counter lines in the log */

int cl_room_key(char *out, size_t size, const char *key, char what)
{
    int n = snprintf(out, size, "pcr:{%s}:%c", key, what);
    return n < 0 || (size_t)n >= size ? 0 : n;
}

int cl_nick_value(const struct room_cluster *cl, char *out, size_t size,
                  unsigned worker, uint64_t id)
{
    int n = snprintf(out, size, "%s\t%08" PRIx32 "\t%u\t%" PRIu64, cl->node,
                     cl->run, worker, id);
    return n < 0 || (size_t)n >= size ? 0 : n;
}

/* ---- what the link reports ----------------------------------------------- */

static void on_up(void *owner)
{
    struct room_cluster *cl = owner;
    const char *chans[] = {cl->self_channel};
    size_t lens[] = {strlen(cl->self_channel)};
    cl_subscribe(cl->link, true, 1, chans, lens);
    cl_rooms_up(cl);
    cl_nicks_refresh(cl); /* claims the nicks given while Redis was away */
    cl_members_refresh(cl, true);
    cl->next_refresh = pc_worker_now(cl->core->w) + cl->nick_ttl / 3;
    cl_metrics_update(cl->metrics, cl);
}

static void on_down(void *owner)
{
    struct room_cluster *cl = owner;
    cl_rooms_down(cl);
    cl_metrics_update(cl->metrics, cl);
}

static void on_sub(void *owner, const char *channel, size_t clen,
                   const char *data, size_t len, enum cl_sub_kind kind)
{
    struct room_cluster *cl = owner;
    if (clen == strlen(cl->self_channel) &&
        memcmp(channel, cl->self_channel, clen) == 0) {
        if (kind == CL_MESSAGE)
            cl_self_message(cl, data, len);
        return;
    }
    /* pcr:{KEY}:c */
    if (clen < 8 || memcmp(channel, "pcr:{", 5) != 0 ||
        memcmp(channel + clen - 3, "}:c", 3) != 0 ||
        clen - 8 > ROOM_NAME_MAX)
        return;
    char key[ROOM_NAME_MAX + 1];
    memcpy(key, channel + 5, clen - 8);
    key[clen - 8] = '\0';
    cl_room_sub(cl, key, data, len, kind);
}

/* ---- housekeeping ----------------------------------------------------------- */

static void log_counters(struct room_cluster *cl)
{
    const struct cl_stats *s = &cl->stats;
    const struct cl_link_stats *ls = cl_link_stats(cl->link);
    pc_log(PC_LOG_INFO,
           "cluster: worker %u: link %s, connects %" PRIu64 ", failures %"
           PRIu64 ", timeouts %" PRIu64 "; published %" PRIu64 " (failed %"
           PRIu64 "), delivered %" PRIu64 " (from other nodes %" PRIu64
           "), gaps filled %" PRIu64 ", announced %" PRIu64 ", held %" PRIu64
           ", not delivered %" PRIu64 "; nicks claimed %" PRIu64 ", lost %"
           PRIu64 "; private lines out %" PRIu64 ", in %" PRIu64,
           cl->core->id, cl_link_up(cl->link) ? "up" : "down", ls->connects,
           ls->failures, ls->timeouts, s->published, s->publish_failed,
           s->delivered, s->remote_delivered, s->gaps_filled,
           s->gaps_announced, s->lines_held, s->not_delivered, s->nick_claims,
           s->nick_lost, s->tells_out, s->tells_in);
}

static void tick(struct pc_timer *t)
{
    struct room_cluster *cl = t->data;
    double now = pc_worker_now(cl->core->w);
    cl_rooms_tick(cl);
    if (now >= cl->next_refresh && cl_link_up(cl->link)) {
        cl_nicks_refresh(cl);
        cl_members_refresh(cl, false);
        cl->next_refresh = now + cl->nick_ttl / 3;
    }
    cl_metrics_update(cl->metrics, cl);
    if (now >= cl->next_log) {
        log_counters(cl);
        cl->next_log = now + LOG_EVERY;
    }
    pc_timer_start(cl->core->w, &cl->tick, TICK);
}

/* ---- life ------------------------------------------------------------------- */

struct room_cluster *room_cluster_new(struct room_core *core,
                                      const struct pc_section *cfg)
{
    struct room_cluster *cl = calloc(1, sizeof *cl);
    if (!cl)
        return NULL;
    cl->core = core;
    snprintf(cl->node, sizeof cl->node, "%s", pc_section_string(cfg, "node"));
    cl->history = pc_section_int(cfg, "history");
    cl->nick_ttl = pc_section_seconds(cfg, "nick_ttl");
    cl->hold = pc_section_seconds(cfg, "hold");
    cl->batch_delay = pc_section_seconds(cfg, "batch_delay");
    cl->node_hash = (uint32_t)room_hash_str(cl->node);
    /* A process's own: its lines are told from an earlier run's. */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    cl->run = (uint32_t)room_hash_u64((uint64_t)ts.tv_nsec ^
                                      ((uint64_t)ts.tv_sec << 30) ^
                                      (uint64_t)getpid());
    snprintf(cl->self_channel, sizeof cl->self_channel, "pcw:%s:%u", cl->node,
             core->id);
    struct cl_link_config lc = {
        .redis = pc_section_string(cfg, "redis"),
        .password = pc_section_string(cfg, "password"),
        .user = pc_section_string(cfg, "user"),
        .timeout = pc_section_seconds(cfg, "timeout"),
    };
    struct cl_link_events ev = {.owner = cl, .up = on_up, .down = on_down,
                                .sub = on_sub};
    pc_timer_init(&cl->tick, tick, cl);
    pc_timer_init(&cl->batch, cl_rooms_flush_timer, cl);
    ev_prepare_init(&cl->batch_now, cl_rooms_flush_prepare);
    cl->batch_now.data = cl;
    cl->metrics = cl_metrics_new(core->w);
    cl->next_log = pc_worker_now(core->w) + LOG_EVERY;
    cl->link = cl_link_new(core->w, &lc, &ev);
    if (!cl->link) {
        cl_metrics_free(cl->metrics);
        free(cl);
        return NULL;
    }
    pc_timer_start(core->w, &cl->tick, TICK);
    if (core->id == 0)
        pc_log(PC_LOG_INFO, "cluster: node %s, Redis %s, history %" PRId64
               ", nick_ttl %.1f s, batch_delay %.4f s", cl->node, lc.redis,
               cl->history, cl->nick_ttl, cl->batch_delay);
    return cl;
}

void room_cluster_free(struct room_cluster *cl)
{
    if (!cl)
        return;
    log_counters(cl);
    pc_timer_stop(cl->core->w, &cl->tick);
    pc_timer_stop(cl->core->w, &cl->batch);
    ev_prepare_stop(pc_worker_loop(cl->core->w), &cl->batch_now);
    cl_link_free(cl->link); /* pending replies come back NULL first */
    cl_rooms_free(cl);
    cl_metrics_free(cl->metrics);
    free(cl);
}
