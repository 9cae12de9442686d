/* id_map.c — hash tables keyed by ids and routing ids (see id_map.h). */
#include "id_map.h"

static size_t hash_id(const void *key)
{
    uint64_t x = (uint64_t) (uintptr_t) key;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return (size_t) x;
}

static int compare_ids(const void *a, const void *b)
{
    uintptr_t left = (uintptr_t) a, right = (uintptr_t) b;
    return left < right ? -1 : left > right;
}

/* FNV-1a over the routing id's bytes. */
static size_t hash_routing_id(const void *key)
{
    zframe_t *frame = (zframe_t *) key;
    const uint8_t *data = zframe_data(frame);
    size_t hash = 2166136261u;
    for (size_t i = 0; i < zframe_size(frame); i++)
        hash = (hash ^ data[i]) * 16777619u;
    return hash;
}

static int compare_routing_ids(const void *a, const void *b)
{
    return zframe_eq((zframe_t *) a, (zframe_t *) b) ? 0 : 1;
}

/* No duplicator and no destructor: czmq stores the key as it is given. */
static zhashx_t *map_new(zhashx_hash_fn *hash, zhashx_comparator_fn *compare)
{
    zhashx_t *map = zhashx_new();
    zhashx_set_key_hasher(map, hash);
    zhashx_set_key_comparator(map, compare);
    zhashx_set_key_duplicator(map, NULL);
    zhashx_set_key_destructor(map, NULL);
    return map;
}

zhashx_t *sb_id_map_new(void)
{
    return map_new(hash_id, compare_ids);
}

zhashx_t *sb_routing_id_map_new(void)
{
    return map_new(hash_routing_id, compare_routing_ids);
}
