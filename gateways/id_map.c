/* id_map.c — uint64-keyed czmq hash tables (see id_map.h). Ids are never 0. */
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

zhashx_t *sb_id_map_new(void)
{
    zhashx_t *map = zhashx_new();
    zhashx_set_key_hasher(map, hash_id);
    zhashx_set_key_comparator(map, compare_ids);
    zhashx_set_key_duplicator(map, NULL);
    zhashx_set_key_destructor(map, NULL);
    return map;
}
