/* mqtt_framer.c — cuts a connection's byte stream into whole MQTT packets
 * (fixed header, Remaining Length, body), refusing one over the limit as
 * soon as its length is known. A packet that arrives whole in one read is
 * handed out where it lies; only a packet split across reads is copied. */
#include <stdlib.h>
#include <string.h>

#include "mqtt_packet.h"

/* A buffer this big or bigger is not kept between packets, so an idle
 * connection holds no memory for the one large packet it once got. */
#define KEEP_MAX 4096

struct sb_mqtt_framer {
    size_t max_packet_size;
    uint8_t header[5];
    size_t header_used;
    size_t total;              /* the packet's whole length, 0 until the header is whole */
    uint8_t *buffer;
    size_t capacity;
    size_t used;
    sb_mqtt_frame_status_t failed;   /* NEED_MORE while all is well */
};

sb_mqtt_framer_t *sb_mqtt_framer_new(size_t max_packet_size)
{
    sb_mqtt_framer_t *self = calloc(1, sizeof *self);
    if (!self)
        abort();
    self->max_packet_size = max_packet_size && max_packet_size < SB_MQTT_MAX_PACKET_SIZE
                                ? max_packet_size
                                : SB_MQTT_MAX_PACKET_SIZE;
    return self;
}

void sb_mqtt_framer_destroy(sb_mqtt_framer_t **self_p)
{
    if (!*self_p)
        return;
    free((*self_p)->buffer);
    free(*self_p);
    *self_p = NULL;
}

size_t sb_mqtt_framer_buffered(const sb_mqtt_framer_t *self)
{
    return self->total ? self->used : self->header_used;
}

typedef enum { HEADER_PARTIAL, HEADER_WHOLE, HEADER_BAD } header_state_t;

/* Reads a fixed header from `bytes`: its length and the packet's. */
static header_state_t parse_header(const uint8_t *bytes, size_t length, size_t *header_length,
                                   size_t *total)
{
    uint32_t remaining = 0;
    for (size_t i = 1; i < length && i <= 4; i++) {
        remaining |= (uint32_t) (bytes[i] & 0x7F) << (7 * (i - 1));
        if (!(bytes[i] & 0x80)) {
            *header_length = i + 1;
            *total = i + 1 + remaining;
            return HEADER_WHOLE;
        }
    }
    return length >= 5 ? HEADER_BAD : HEADER_PARTIAL;
}

static sb_mqtt_frame_status_t fail(sb_mqtt_framer_t *self, sb_mqtt_frame_status_t status)
{
    self->failed = status;
    return status;
}

static void make_frame(sb_mqtt_frame_t *frame, const uint8_t *data, size_t total, size_t header_length)
{
    frame->type = data[0] >> 4;
    frame->flags = data[0] & 0x0F;
    frame->data = data;
    frame->length = total;
    frame->header_length = header_length;
}

/* A packet begins at *input with nothing buffered: hand it out in place
 * when it is all there. */
static bool take_in_place(sb_mqtt_framer_t *self, const uint8_t **input, size_t *left,
                          sb_mqtt_frame_t *frame, sb_mqtt_frame_status_t *status)
{
    size_t header_length, total;
    header_state_t state = parse_header(*input, *left, &header_length, &total);
    if (state == HEADER_BAD)
        return *status = fail(self, SB_MQTT_FRAME_MALFORMED), true;
    if (state != HEADER_WHOLE)
        return false;
    if (total > self->max_packet_size)
        return *status = fail(self, SB_MQTT_FRAME_TOO_LARGE), true;
    if (*left < total)
        return false;
    make_frame(frame, *input, total, header_length);
    *input += total;
    *left -= total;
    *status = SB_MQTT_FRAME_READY;
    return true;
}

/* Room for `more` bytes of the packet. The buffer grows with the bytes
 * that come, not with the length a header claims, so a client cannot
 * make the framer hold its maximum by sending a header alone. */
static void make_room(sb_mqtt_framer_t *self, size_t more)
{
    size_t needed = self->used + more;
    if (needed <= self->capacity)
        return;
    size_t capacity = self->capacity * 2 > needed ? self->capacity * 2 : needed;
    if (capacity > self->total)
        capacity = self->total;
    uint8_t *buffer = realloc(self->buffer, capacity);
    if (!buffer)
        abort();
    self->buffer = buffer;
    self->capacity = capacity;
}

/* The header is whole in self->header: the packet's length is known. */
static sb_mqtt_frame_status_t start_body(sb_mqtt_framer_t *self)
{
    size_t header_length;
    parse_header(self->header, self->header_used, &header_length, &self->total);
    if (self->total > self->max_packet_size)
        return fail(self, SB_MQTT_FRAME_TOO_LARGE);
    self->used = 0;
    make_room(self, self->header_used);
    memcpy(self->buffer, self->header, self->header_used);
    self->used = self->header_used;
    return SB_MQTT_FRAME_NEED_MORE;
}

sb_mqtt_frame_status_t sb_mqtt_framer_next(sb_mqtt_framer_t *self, const uint8_t **input,
                                           size_t *left, sb_mqtt_frame_t *frame)
{
    if (self->failed != SB_MQTT_FRAME_NEED_MORE)
        return self->failed;
    if (self->capacity >= KEEP_MAX && self->total == 0) {
        free(self->buffer);
        self->buffer = NULL;
        self->capacity = 0;
    }
    sb_mqtt_frame_status_t status;
    if (self->header_used == 0 && *left > 0 && take_in_place(self, input, left, frame, &status))
        return status;
    while (*left > 0 && self->total == 0) {
        self->header[self->header_used++] = *(*input)++;
        (*left)--;
        size_t header_length, total;
        header_state_t state = parse_header(self->header, self->header_used, &header_length, &total);
        if (state == HEADER_BAD)
            return fail(self, SB_MQTT_FRAME_MALFORMED);
        if (state == HEADER_WHOLE && start_body(self) != SB_MQTT_FRAME_NEED_MORE)
            return self->failed;
    }
    if (self->total == 0)
        return SB_MQTT_FRAME_NEED_MORE;
    size_t want = self->total - self->used;
    size_t step = *left < want ? *left : want;
    if (step) {
        make_room(self, step);
        memcpy(self->buffer + self->used, *input, step);
        self->used += step;
        *input += step;
        *left -= step;
    }
    if (self->used < self->total)
        return SB_MQTT_FRAME_NEED_MORE;
    make_frame(frame, self->buffer, self->total, self->header_used);
    self->header_used = 0;
    self->total = 0;
    self->used = 0;
    return SB_MQTT_FRAME_READY;
}
