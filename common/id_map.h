/* id_map.h — czmq hash tables keyed by what is not text: uint64 ids
 * (request ids, client serials) and ZeroMQ routing ids (the bytes of a
 * zframe_t), so the hot path never formats a key as a string.
 *
 * The tables neither copy nor free their keys: a key points into (or is)
 * what the item holds, and lives as long as the item does. */
#ifndef SB_ID_MAP_H
#define SB_ID_MAP_H

#include <czmq.h>
#include <stdint.h>

/* Keys are sb_id_map_key(id); ids are never 0. */
zhashx_t *sb_id_map_new(void);

static inline void *sb_id_map_key(uint64_t id)
{
    return (void *) (uintptr_t) id;
}

/* Keys are zframe_t routing ids, compared by their bytes. */
zhashx_t *sb_routing_id_map_new(void);

#endif
