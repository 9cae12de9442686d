/* mqtt_codec.h — what the codec's files share inside sb-mqtt-protocol and
 * nobody else uses: the reader over a packet's bytes (with the arena the
 * decoded packet's copies live in), the writer that counts or writes, and
 * the v5 property block in both directions. */
#ifndef SB_MQTT_CODEC_H
#define SB_MQTT_CODEC_H

#include "mqtt_packet.h"

/* Bit of a packet type in a property's set of allowed packets; the Will
 * Properties use bit 0, since type 0 is reserved. */
#define SB_MQTT_IN(type) ((uint16_t) (1u << (type)))
#define SB_MQTT_IN_WILL SB_MQTT_IN(0)

/* Memory of one decoded packet's copies: first the room allocated with
 * the packet itself (usually enough: strings take no more than the
 * packet's bytes), then chunks, all freed together. */
typedef struct sb_mqtt_chunk sb_mqtt_chunk_t;
typedef struct {
    unsigned char *room;       /* not owned */
    size_t room_used;
    size_t room_size;
    sb_mqtt_chunk_t *chunks;
} sb_mqtt_arena_t;

void sb_mqtt_arena_init(sb_mqtt_arena_t *arena, void *room, size_t size);
/* Aligned for any type; _text for bytes, unaligned. */
void *sb_mqtt_arena_alloc(sb_mqtt_arena_t *arena, size_t size);
char *sb_mqtt_arena_alloc_text(sb_mqtt_arena_t *arena, size_t size);
/* A NUL-terminated copy. */
sb_mqtt_str_t sb_mqtt_arena_copy(sb_mqtt_arena_t *arena, const void *data, size_t length);
void sb_mqtt_arena_free(sb_mqtt_arena_t *arena);

/* Reads one packet's body; the first failure is kept in *error and every
 * later read fails too, so a decoder may check once at the end of a step. */
typedef struct {
    const uint8_t *p;
    size_t left;
    sb_mqtt_arena_t *arena;
    sb_mqtt_error_t *error;
} sb_mqtt_reader_t;

bool sb_mqtt_fail(sb_mqtt_reader_t *r, uint8_t reason, const char *detail);
bool sb_mqtt_read_byte(sb_mqtt_reader_t *r, uint8_t *value);
bool sb_mqtt_read_u16(sb_mqtt_reader_t *r, uint16_t *value);
bool sb_mqtt_read_u32(sb_mqtt_reader_t *r, uint32_t *value);
bool sb_mqtt_read_varint(sb_mqtt_reader_t *r, uint32_t *value);
/* Binary Data: a 2-byte length and bytes, copied NUL-terminated. */
bool sb_mqtt_read_binary(sb_mqtt_reader_t *r, sb_mqtt_str_t *value, const char *what);
/* A UTF-8 Encoded String, checked with sb_mqtt_string_is_valid (0x81). */
bool sb_mqtt_read_string(sb_mqtt_reader_t *r, sb_mqtt_str_t *value, const char *what);
/* The rest of the body, copied NUL-terminated. */
bool sb_mqtt_read_rest(sb_mqtt_reader_t *r, sb_mqtt_str_t *value);
/* An array slot appended to *items (grown in the arena by doubling). */
void *sb_mqtt_push(sb_mqtt_reader_t *r, void **items, size_t *count, size_t *capacity, size_t size);

/* A v5 property block (its length and properties) for a packet of `type`
 * (or SB_MQTT_IN_WILL's bit 0 for a will), each checked: allowed in that
 * packet (0x81), at most once where the standard says so (0x82), in range
 * (0x82). */
bool sb_mqtt_read_properties(sb_mqtt_reader_t *r, int type, sb_mqtt_properties_t *props);

/* Counts bytes when `out` is NULL, else writes them (the room is known). */
typedef struct {
    uint8_t *out;
    size_t length;
    bool invalid;              /* something the packet cannot carry */
} sb_mqtt_writer_t;

void sb_mqtt_put_byte(sb_mqtt_writer_t *w, uint8_t value);
void sb_mqtt_put_u16(sb_mqtt_writer_t *w, uint16_t value);
void sb_mqtt_put_u32(sb_mqtt_writer_t *w, uint32_t value);
void sb_mqtt_put_varint(sb_mqtt_writer_t *w, uint32_t value);
void sb_mqtt_put_bytes(sb_mqtt_writer_t *w, const void *data, size_t length);
/* A 2-byte length and bytes (a string or binary data). */
void sb_mqtt_put_string(sb_mqtt_writer_t *w, sb_mqtt_str_t value);
size_t sb_mqtt_varint_length(uint32_t value);

/* The property block (length and properties) for a packet of `type`. */
void sb_mqtt_put_properties(sb_mqtt_writer_t *w, int type, const sb_mqtt_properties_t *props);

#endif
