/* The state of a room across nodes (cluster_room.c: membership of the
 * room's channel, the lines this home sent; cluster_order.c: delivering
 * in offset order, gaps). Internal to those two files; one worker's. */
#ifndef PC_ROOM_CLUSTER_ROOM_H
#define PC_ROOM_CLUSTER_ROOM_H

#include "protocols/room/cluster.h"

#define HELD_MAX 4096   /* lines waiting for Redis, per worker */
#define EARLY_MAX 4096  /* lines received ahead of a gap, per room */
#define RANGE_COUNT 512 /* stream entries per XRANGE */
#define SUB_BATCH 128   /* channels per SUBSCRIBE after a reconnect */
#define CL_RECENT 256   /* origins of lines delivered lately, per room */

enum sub_state { SUB_NONE, SUB_WAIT, SUB_SYNC, SUB_LIVE, SUB_LEAVING };

/* A join that waits until the room's subscription is live, so that the
 * joiner, once answered, gets every line said after its join. */
struct cl_join {
    struct cl_join *next;
    struct room_msg *m;
};

/* A line received ahead of its turn. */
struct cl_entry {
    struct cl_entry *next;
    uint64_t offset;
    size_t len;
    char data[];
};

/* A line this home sent, until it is seen coming back. */
struct cl_out {
    struct cl_out *next;
    uint64_t seq;
    double queued;
    bool sent;            /* on the current link */
    bool line;            /* the sender waits for it (not a JOIN...) */
    unsigned worker;      /* the sender */
    uint64_t id;
    size_t len;
    char data[];
};

struct cl_room {
    char key[ROOM_NAME_MAX + 1]; /* first: the map's key */
    char name[ROOM_NAME_MAX + 1];
    uint8_t sub;          /* enum sub_state */
    bool wanted;          /* the room has a home (members) here */
    bool synced;          /* caught up after (re)subscribing: send */
    bool filling;         /* an XRANGE is out */
    char epoch[32];
    uint64_t next;        /* the next offset to deliver */
    struct cl_entry *early;
    unsigned nearly;
    struct cl_out *out, *out_tail;
    unsigned nout;
    struct cl_join *joins;  /* joins waiting for the subscription */
    /* Lines not yet sent wait for the worker's batch timer (cl->batch):
     * the rooms with such lines, linked. */
    struct cl_room *flush_next;
    bool flush_queued;
    /* Lines delivered lately, by origin: one sent again after a Redis
     * that lost it came back is not shown twice. */
    uint64_t recent[CL_RECENT];
    unsigned recent_at;
};

/* A reply names its room by key: the room may be gone when it comes. */
struct room_ref {
    struct room_cluster *cl;
    char key[ROOM_NAME_MAX + 1];
    uint64_t n;     /* the XRANGE's last offset, a batch's first serial */
    uint64_t last;  /* a batch's last serial */
    unsigned count; /* the lines of a batch */
};

/* cluster_room.c */
struct cl_room *cl_room_find(struct room_cluster *cl, const char *key);
void cl_room_early_clear(struct cl_room *cr);
struct room_ref *cl_room_ref(struct room_cluster *cl, struct cl_room *cr,
                             uint64_t n);
bool cl_is_line(enum room_event_kind k);
/* The line o of cr left this home for good: it is freed. */
void cl_room_out_remove(struct room_cluster *cl, struct cl_room *cr,
                        struct cl_out *o);
/* Sends cr's lines not yet sent on this link, in order, CL_BATCH_MAX to
 * a CL_PUBLISH. */
void cl_room_flush(struct room_cluster *cl, struct cl_room *cr);
/* Lets the joins that waited for cr's subscription in (at once, without
 * the subscription, when the link is down). */
void cl_room_let_in(struct room_cluster *cl, struct cl_room *cr);
/* Leaves (unsubscribes, frees) cr if nothing needs it; may free it. */
void cl_room_maybe_leave(struct room_cluster *cl, struct cl_room *cr);

/* cluster_order.c */
/* Tells cr's members here that some lines may be lost. */
void cl_room_missed(struct room_cluster *cl, struct cl_room *cr);
/* Delivers what waits in order, reads gaps; once caught up, sends cr's
 * own lines. May free cr. */
void cl_order_drain(struct room_cluster *cl, struct cl_room *cr);
/* "OFFSET EPOCH PAYLOAD" from the room's channel. */
void cl_order_message(struct room_cluster *cl, struct cl_room *cr,
                      const char *data, size_t len);
/* Subscribed: asks where the room is (CL_META), then catches up. */
void cl_order_sync(struct room_cluster *cl, struct cl_room *cr);

#endif
