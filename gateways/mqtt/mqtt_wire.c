/* mqtt_wire.c — MQTT's data representations (§1.5: integers, Variable
 * Byte Integers, strings, binary data) read from and written to packet
 * bodies, and the arena decoded packets keep their copies in. */
#include <stdalign.h>
#include <stdlib.h>

#include "mqtt_codec.h"

struct sb_mqtt_chunk {
    sb_mqtt_chunk_t *next;
    size_t used;
    size_t size;
    alignas(max_align_t) unsigned char data[];
};

#define CHUNK_MIN 1024

static size_t align_up(size_t size)
{
    return (size + alignof(max_align_t) - 1) & ~(alignof(max_align_t) - 1);
}

void sb_mqtt_arena_init(sb_mqtt_arena_t *arena, void *room, size_t size)
{
    *arena = (sb_mqtt_arena_t) { room, 0, size, NULL };
}

/* Takes `size` bytes at *used in a region of `capacity`, or NULL. */
static void *take_from(unsigned char *region, size_t *used, size_t capacity, size_t size, bool aligned)
{
    size_t at = aligned ? align_up(*used) : *used;
    if (at > capacity || capacity - at < size)
        return NULL;
    *used = at + size;
    return region + at;
}

static void *arena_take(sb_mqtt_arena_t *arena, size_t size, bool aligned)
{
    void *memory = take_from(arena->room, &arena->room_used, arena->room_size, size, aligned);
    sb_mqtt_chunk_t *chunk = arena->chunks;
    if (!memory && chunk)
        memory = take_from(chunk->data, &chunk->used, chunk->size, size, aligned);
    if (memory)
        return memory;
    size_t room = size > CHUNK_MIN ? size : CHUNK_MIN;
    chunk = malloc(sizeof *chunk + room);
    if (!chunk)
        abort();
    chunk->next = arena->chunks;
    chunk->used = size;
    chunk->size = room;
    arena->chunks = chunk;
    return chunk->data;
}

void *sb_mqtt_arena_alloc(sb_mqtt_arena_t *arena, size_t size)
{
    return arena_take(arena, size, true);
}

char *sb_mqtt_arena_alloc_text(sb_mqtt_arena_t *arena, size_t size)
{
    return arena_take(arena, size, false);
}

void sb_mqtt_arena_free(sb_mqtt_arena_t *arena)
{
    while (arena->chunks) {
        sb_mqtt_chunk_t *next = arena->chunks->next;
        free(arena->chunks);
        arena->chunks = next;
    }
}

bool sb_mqtt_fail(sb_mqtt_reader_t *r, uint8_t reason, const char *detail)
{
    if (r->error->reason == 0) {
        r->error->reason = reason;
        r->error->detail = detail;
    }
    r->left = 0;
    return false;
}

static bool take(sb_mqtt_reader_t *r, size_t length, const uint8_t **bytes)
{
    if (r->error->reason != 0)
        return false;
    if (r->left < length)
        return sb_mqtt_fail(r, SB_MQTT_RC_MALFORMED_PACKET, "the packet ends early");
    *bytes = r->p;
    r->p += length;
    r->left -= length;
    return true;
}

bool sb_mqtt_read_byte(sb_mqtt_reader_t *r, uint8_t *value)
{
    const uint8_t *b;
    if (!take(r, 1, &b))
        return false;
    *value = b[0];
    return true;
}

bool sb_mqtt_read_u16(sb_mqtt_reader_t *r, uint16_t *value)
{
    const uint8_t *b;
    if (!take(r, 2, &b))
        return false;
    *value = (uint16_t) (b[0] << 8 | b[1]);
    return true;
}

bool sb_mqtt_read_u32(sb_mqtt_reader_t *r, uint32_t *value)
{
    const uint8_t *b;
    if (!take(r, 4, &b))
        return false;
    *value = (uint32_t) b[0] << 24 | (uint32_t) b[1] << 16 | (uint32_t) b[2] << 8 | b[3];
    return true;
}

bool sb_mqtt_read_varint(sb_mqtt_reader_t *r, uint32_t *value)
{
    uint32_t result = 0;
    for (int i = 0; i < 4; i++) {
        uint8_t byte;
        if (!sb_mqtt_read_byte(r, &byte))
            return false;
        result |= (uint32_t) (byte & 0x7F) << (7 * i);
        if (!(byte & 0x80)) {
            *value = result;
            return true;
        }
    }
    return sb_mqtt_fail(r, SB_MQTT_RC_MALFORMED_PACKET, "a Variable Byte Integer of more than 4 bytes");
}

sb_mqtt_str_t sb_mqtt_arena_copy(sb_mqtt_arena_t *arena, const void *data, size_t length)
{
    char *copy = sb_mqtt_arena_alloc_text(arena, length + 1);
    if (length)
        memcpy(copy, data, length);
    copy[length] = '\0';
    return (sb_mqtt_str_t) { copy, length };
}

bool sb_mqtt_read_binary(sb_mqtt_reader_t *r, sb_mqtt_str_t *value, const char *what)
{
    uint16_t length;
    const uint8_t *bytes;
    if (!sb_mqtt_read_u16(r, &length))
        return false;
    if (r->left < length)
        return sb_mqtt_fail(r, SB_MQTT_RC_MALFORMED_PACKET, what);
    take(r, length, &bytes);
    *value = sb_mqtt_arena_copy(r->arena, bytes, length);
    return true;
}

bool sb_mqtt_read_string(sb_mqtt_reader_t *r, sb_mqtt_str_t *value, const char *what)
{
    if (!sb_mqtt_read_binary(r, value, what))
        return false;
    if (!sb_mqtt_string_is_valid(value->data, value->length))
        return sb_mqtt_fail(r, SB_MQTT_RC_MALFORMED_PACKET, what);
    return true;
}

bool sb_mqtt_read_rest(sb_mqtt_reader_t *r, sb_mqtt_str_t *value)
{
    const uint8_t *bytes;
    size_t length = r->left;
    if (!take(r, length, &bytes))
        return false;
    *value = sb_mqtt_arena_copy(r->arena, bytes, length);
    return true;
}

void *sb_mqtt_push(sb_mqtt_reader_t *r, void **items, size_t *count, size_t *capacity, size_t size)
{
    if (*count == *capacity) {
        size_t grown = *capacity ? *capacity * 2 : 4;
        unsigned char *bigger = sb_mqtt_arena_alloc(r->arena, grown * size);
        if (*count)
            memcpy(bigger, *items, *count * size);
        *items = bigger;
        *capacity = grown;
    }
    void *slot = (unsigned char *) *items + (*count)++ * size;
    memset(slot, 0, size);
    return slot;
}

void sb_mqtt_put_bytes(sb_mqtt_writer_t *w, const void *data, size_t length)
{
    if (w->out && length)
        memcpy(w->out + w->length, data, length);
    w->length += length;
}

void sb_mqtt_put_byte(sb_mqtt_writer_t *w, uint8_t value)
{
    sb_mqtt_put_bytes(w, &value, 1);
}

void sb_mqtt_put_u16(sb_mqtt_writer_t *w, uint16_t value)
{
    uint8_t b[2] = { (uint8_t) (value >> 8), (uint8_t) value };
    sb_mqtt_put_bytes(w, b, 2);
}

void sb_mqtt_put_u32(sb_mqtt_writer_t *w, uint32_t value)
{
    uint8_t b[4] = { (uint8_t) (value >> 24), (uint8_t) (value >> 16), (uint8_t) (value >> 8),
                     (uint8_t) value };
    sb_mqtt_put_bytes(w, b, 4);
}

size_t sb_mqtt_varint_length(uint32_t value)
{
    return value < 128 ? 1 : value < 16384 ? 2 : value < 2097152 ? 3 : 4;
}

void sb_mqtt_put_varint(sb_mqtt_writer_t *w, uint32_t value)
{
    if (value > SB_MQTT_MAX_REMAINING_LENGTH) {
        w->invalid = true;
        return;
    }
    do {
        uint8_t byte = value & 0x7F;
        value >>= 7;
        sb_mqtt_put_byte(w, value ? byte | 0x80 : byte);
    } while (value);
}

void sb_mqtt_put_string(sb_mqtt_writer_t *w, sb_mqtt_str_t value)
{
    if (value.length > 0xFFFF) {
        w->invalid = true;
        return;
    }
    sb_mqtt_put_u16(w, (uint16_t) value.length);
    sb_mqtt_put_bytes(w, value.data, value.length);
}
