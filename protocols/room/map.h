/* A small open-addressing hash map from a key to a pointer, for the room
 * core's worker-local registries (rooms, nicks, connections). The key
 * lives inside the value: the map keeps (hash, value) pairs and asks an
 * `eq` callback whether a value has a given key. One worker owns a map;
 * nothing here is thread-safe. */
#ifndef PC_ROOM_MAP_H
#define PC_ROOM_MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct room_map_slot {
    uint64_t hash;
    void *value; /* NULL: empty */
};

struct room_map {
    struct room_map_slot *slots;
    size_t cap; /* 0 or a power of two */
    size_t len;
};

typedef bool room_map_eq(const void *value, const void *key);

uint64_t room_hash_str(const char *s);
uint64_t room_hash_u64(uint64_t x);

/* The value with `key`, or NULL. */
void *room_map_get(const struct room_map *m, uint64_t hash, const void *key,
                   room_map_eq *eq);
/* Adds value (whose key must not be in the map yet). 0 or -ENOMEM. */
int room_map_put(struct room_map *m, uint64_t hash, void *value);
/* Removes and returns the value with `key`, or NULL. */
void *room_map_del(struct room_map *m, uint64_t hash, const void *key,
                   room_map_eq *eq);
/* Frees the table, not the values. */
void room_map_free(struct room_map *m);

/* Visits every value: for (size_t i = 0; i < m->cap; i++) if
 * (m->slots[i].value) ... — the map must not change meanwhile. */

#endif
