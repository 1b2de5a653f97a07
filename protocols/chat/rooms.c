#include "protocols/chat/rooms.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

unsigned chat_home_of(const char *name, unsigned nworkers)
{
    return (unsigned)(chat_hash_str(name) % nworkers);
}

static bool room_eq(const void *value, const void *key)
{
    return strcmp(value, key) == 0; /* both start with the name */
}

static bool member_eq(const void *value, const void *key)
{
    return ((const struct chat_member *)value)->conn == *(const uint64_t *)key;
}

void chat_home_init(struct chat_home *h, unsigned nworkers)
{
    memset(h, 0, sizeof *h);
    h->nworkers = nworkers;
}

static void free_room(struct chat_home_room *r)
{
    for (size_t i = 0; i < r->by_conn.cap; i++)
        free(r->by_conn.slots[i].value);
    chat_map_free(&r->by_conn);
    free(r);
}

void chat_home_fini(struct chat_home *h)
{
    for (size_t i = 0; i < h->rooms.cap; i++)
        if (h->rooms.slots[i].value)
            free_room(h->rooms.slots[i].value);
    chat_map_free(&h->rooms);
}

struct chat_home_room *chat_home_find(struct chat_home *h, const char *room)
{
    return chat_map_get(&h->rooms, chat_hash_str(room), room, room_eq);
}

struct chat_member *chat_home_member(struct chat_home_room *r, uint64_t conn)
{
    return chat_map_get(&r->by_conn, chat_hash_u64(conn), &conn, member_eq);
}

struct chat_home_room *chat_home_join(struct chat_home *h, const char *room,
                                      uint64_t conn, unsigned worker,
                                      const char *nick)
{
    struct chat_home_room *r = chat_home_find(h, room);
    if (!r) {
        r = calloc(1, sizeof *r + h->nworkers * sizeof r->per_worker[0]);
        if (!r)
            return NULL;
        snprintf(r->name, sizeof r->name, "%s", room);
        if (chat_map_put(&h->rooms, chat_hash_str(r->name), r) < 0) {
            free(r);
            return NULL;
        }
    }
    struct chat_member *m = chat_home_member(r, conn);
    if (!m) {
        m = calloc(1, sizeof *m);
        if (!m || chat_map_put(&r->by_conn, chat_hash_u64(conn), m) < 0) {
            free(m);
            if (r->members == 0) {
                chat_map_del(&h->rooms, chat_hash_str(r->name), r->name,
                             room_eq);
                free_room(r);
            }
            return NULL;
        }
        m->conn = conn;
        m->worker = worker;
        r->members++;
        r->per_worker[worker]++;
    }
    snprintf(m->nick, sizeof m->nick, "%s", nick);
    return r;
}

int chat_home_leave(struct chat_home *h, struct chat_home_room **room,
                    uint64_t conn)
{
    struct chat_home_room *r = *room;
    struct chat_member *m =
        chat_map_del(&r->by_conn, chat_hash_u64(conn), &conn, member_eq);
    if (!m)
        return 0;
    r->members--;
    r->per_worker[m->worker]--;
    free(m);
    if (r->members == 0) {
        chat_map_del(&h->rooms, chat_hash_str(r->name), r->name, room_eq);
        free_room(r);
        *room = NULL;
    }
    return 1;
}

static int cmp_nick(const void *a, const void *b)
{
    return strcmp((*(struct chat_member *const *)a)->nick,
                  (*(struct chat_member *const *)b)->nick);
}

char *chat_home_who(struct chat_home_room *r)
{
    struct chat_member **all = malloc((r->members + 1) * sizeof *all);
    size_t size = 64 + CHAT_ROOM_MAX + (size_t)r->members * (CHAT_NICK_MAX + 1);
    char *out = malloc(size);
    if (!all || !out) {
        free(all);
        free(out);
        return NULL;
    }
    size_t n = 0;
    for (size_t i = 0; i < r->by_conn.cap; i++)
        if (r->by_conn.slots[i].value)
            all[n++] = r->by_conn.slots[i].value;
    qsort(all, n, sizeof *all, cmp_nick);
    size_t len = (size_t)snprintf(out, size, "OK who %s %u:", r->name,
                                  r->members);
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(out + len, size - len, " %s", all[i]->nick);
    snprintf(out + len, size - len, "\n");
    free(all);
    return out;
}

char *chat_home_list(struct chat_home *h)
{
    size_t size = 1 + h->rooms.len * (CHAT_ROOM_MAX + 16), len = 0;
    char *out = malloc(size);
    if (!out)
        return NULL;
    out[0] = '\0';
    for (size_t i = 0; i < h->rooms.cap; i++) {
        struct chat_home_room *r = h->rooms.slots[i].value;
        if (r)
            len += (size_t)snprintf(out + len, size - len, " %s(%u)",
                                    r->name, r->members);
    }
    return out;
}

/* ---- local lists ---------------------------------------------------- */

struct chat_local_room *chat_local_find(struct chat_local *l, const char *room)
{
    return chat_map_get(&l->rooms, chat_hash_str(room), room, room_eq);
}

struct chat_local_room *chat_local_add(struct chat_local *l, const char *room,
                                       struct chat_link *link)
{
    struct chat_local_room *r = chat_local_find(l, room);
    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r)
            return NULL;
        snprintf(r->name, sizeof r->name, "%s", room);
        r->head.prev = r->head.next = &r->head;
        if (chat_map_put(&l->rooms, chat_hash_str(r->name), r) < 0) {
            free(r);
            return NULL;
        }
    }
    /* Appended, so members are written in the order they joined. */
    link->prev = r->head.prev;
    link->next = &r->head;
    r->head.prev->next = link;
    r->head.prev = link;
    r->members++;
    return r;
}

void chat_local_remove(struct chat_local *l, struct chat_local_room *r,
                       struct chat_link *link)
{
    link->prev->next = link->next;
    link->next->prev = link->prev;
    link->prev = link->next = NULL;
    if (--r->members == 0) {
        chat_map_del(&l->rooms, chat_hash_str(r->name), r->name, room_eq);
        free(r);
    }
}

void chat_local_fini(struct chat_local *l)
{
    for (size_t i = 0; i < l->rooms.cap; i++)
        free(l->rooms.slots[i].value);
    chat_map_free(&l->rooms);
}
