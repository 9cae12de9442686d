/* id_map.h — a czmq hash table keyed by uint64 ids (request ids, client
 * serials), without formatting every id as a string. */
#ifndef SB_ID_MAP_H
#define SB_ID_MAP_H

#include <czmq.h>
#include <stdint.h>

zhashx_t *sb_id_map_new(void);

static inline void *sb_id_map_key(uint64_t id)
{
    return (void *) (uintptr_t) id;
}

#endif
