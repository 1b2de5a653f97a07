/* Linear probing with backward-shift deletion: no tombstones, so lookups
 * stay short however many joins and parts a long-lived room has seen. */
#include "protocols/room/map.h"

#include <errno.h>
#include <stdlib.h>

uint64_t room_hash_str(const char *s)
{
    uint64_t h = 0xcbf29ce484222325u; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3u;
    return h ^ (h >> 29);
}

uint64_t room_hash_u64(uint64_t x)
{
    x ^= x >> 33; /* murmur3's finaliser */
    x *= 0xff51afd7ed558ccdu;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53u;
    return x ^ (x >> 33);
}

void *room_map_get(const struct room_map *m, uint64_t hash, const void *key,
                   room_map_eq *eq)
{
    if (m->cap == 0)
        return NULL;
    for (size_t i = hash & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        const struct room_map_slot *s = &m->slots[i];
        if (!s->value)
            return NULL;
        if (s->hash == hash && eq(s->value, key))
            return s->value;
    }
}

static void insert(struct room_map_slot *slots, size_t cap, uint64_t hash,
                   void *value)
{
    size_t i = hash & (cap - 1);
    while (slots[i].value)
        i = (i + 1) & (cap - 1);
    slots[i].hash = hash;
    slots[i].value = value;
}

int room_map_put(struct room_map *m, uint64_t hash, void *value)
{
    if ((m->len + 1) * 4 > m->cap * 3) { /* keep the load under 3/4 */
        size_t cap = m->cap ? m->cap * 2 : 16;
        struct room_map_slot *slots = calloc(cap, sizeof *slots);
        if (!slots)
            return -ENOMEM;
        for (size_t i = 0; i < m->cap; i++)
            if (m->slots[i].value)
                insert(slots, cap, m->slots[i].hash, m->slots[i].value);
        free(m->slots);
        m->slots = slots;
        m->cap = cap;
    }
    insert(m->slots, m->cap, hash, value);
    m->len++;
    return 0;
}

void *room_map_del(struct room_map *m, uint64_t hash, const void *key,
                   room_map_eq *eq)
{
    if (m->cap == 0)
        return NULL;
    size_t mask = m->cap - 1, i = hash & mask;
    while (m->slots[i].value &&
           !(m->slots[i].hash == hash && eq(m->slots[i].value, key)))
        i = (i + 1) & mask;
    void *value = m->slots[i].value;
    if (!value)
        return NULL;
    /* Shift back every following entry that may no longer be reachable
     * from its home slot across the hole. */
    for (size_t j = (i + 1) & mask; m->slots[j].value; j = (j + 1) & mask) {
        size_t home = m->slots[j].hash & mask;
        bool movable = i <= j ? (home <= i || home > j) : (home <= i && home > j);
        if (movable) {
            m->slots[i] = m->slots[j];
            i = j;
        }
    }
    m->slots[i].value = NULL;
    m->len--;
    return value;
}

void room_map_free(struct room_map *m)
{
    free(m->slots);
    m->slots = NULL;
    m->cap = m->len = 0;
}
