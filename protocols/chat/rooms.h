/* Room registries of one worker, for the chat module.
 *
 * A room has one home worker (chat_room_home: a hash of its name). The
 * home keeps the room's members, wherever they live, and how many live on
 * each worker, so it can number the room's lines and send each line once
 * to every worker that has members. Every worker keeps, per room, the list
 * of its own connections that are members, to write each line it receives
 * for the room to them. Both registries belong to one worker thread. */
#ifndef PC_CHAT_ROOMS_H
#define PC_CHAT_ROOMS_H

#include <stddef.h>
#include <stdint.h>

#include "protocols/chat/line.h"
#include "protocols/chat/map.h"

/* Which worker of `nworkers` is the home of a room (or owns a nick). */
unsigned chat_home_of(const char *name, unsigned nworkers);

/* ---- at the home worker --------------------------------------------- */

struct chat_member {
    uint64_t conn;   /* pc_conn_id of the member */
    unsigned worker; /* where the member's connection lives */
    char nick[CHAT_NICK_MAX + 1];
};

struct chat_home_room {
    char name[CHAT_ROOM_MAX + 1];
    uint64_t lines;      /* lines numbered so far */
    unsigned members;
    struct chat_map by_conn; /* conn id -> struct chat_member */
    unsigned per_worker[];   /* members on each worker */
};

struct chat_home {
    unsigned nworkers;
    struct chat_map rooms; /* name -> struct chat_home_room */
};

void chat_home_init(struct chat_home *h, unsigned nworkers);
/* Frees every room and member. */
void chat_home_fini(struct chat_home *h);
struct chat_home_room *chat_home_find(struct chat_home *h, const char *room);
/* Adds a member to room (created if new). Returns the room, or NULL on
 * out of memory. A conn already in the room only has its nick updated. */
struct chat_home_room *chat_home_join(struct chat_home *h, const char *room,
                                      uint64_t conn, unsigned worker,
                                      const char *nick);
/* Removes a member; a room left empty is deleted (*room set to NULL).
 * Returns whether conn was a member. */
int chat_home_leave(struct chat_home *h, struct chat_home_room **room,
                    uint64_t conn);
struct chat_member *chat_home_member(struct chat_home_room *r, uint64_t conn);
/* "OK who ROOM N: a b c\n", nicks sorted, into a new string the caller
 * frees; NULL on out of memory. */
char *chat_home_who(struct chat_home_room *r);
/* Appends " name(members)" for each home room to a new string (the caller
 * frees it; "" when there are none). NULL on out of memory. */
char *chat_home_list(struct chat_home *h);

/* ---- at every worker ------------------------------------------------ */

struct chat_link {
    struct chat_link *prev, *next;
};

struct chat_local_room {
    char name[CHAT_ROOM_MAX + 1];
    unsigned members;
    struct chat_link head; /* circular list of member links */
};

struct chat_local {
    struct chat_map rooms; /* name -> struct chat_local_room */
};

/* Puts link (embedded in a connection's state) on room's local list,
 * creating the list. Returns the room, or NULL on out of memory. */
struct chat_local_room *chat_local_add(struct chat_local *l, const char *room,
                                       struct chat_link *link);
/* Takes link off its room's list; an emptied room is freed. */
void chat_local_remove(struct chat_local *l, struct chat_local_room *r,
                       struct chat_link *link);
struct chat_local_room *chat_local_find(struct chat_local *l, const char *room);
void chat_local_fini(struct chat_local *l);

#endif
