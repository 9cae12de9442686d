/* event_frame.c — one encoding of an event's frame for all its clients (see event_frame.h). */
#include "event_frame.h"

#include <stdlib.h>
#include <string.h>

#include "utf8.h"
#include "ws_json.h"
#include "ws_stream.h"

struct sb_ws_event_frame {
    char *topic;
    char *payload;
    bool retained;
    uint8_t *frame;
    size_t length;
};

sb_ws_event_frame_t *sb_ws_event_frame_new(void)
{
    return calloc(1, sizeof(sb_ws_event_frame_t));
}

static void forget(sb_ws_event_frame_t *self)
{
    free(self->topic);
    free(self->payload);
    free(self->frame);
    *self = (sb_ws_event_frame_t) { 0 };
}

void sb_ws_event_frame_destroy(sb_ws_event_frame_t **self_p)
{
    if (!*self_p)
        return;
    forget(*self_p);
    free(*self_p);
    *self_p = NULL;
}

static void encode(sb_ws_event_frame_t *self, const char *topic, const char *payload,
                   bool retained)
{
    char *text = sb_ws_json_event(topic, payload, retained);
    if (!sb_utf8_is_valid(text, strlen(text))) {   /* a text frame must be UTF-8 */
        char *repaired = sb_utf8_repair(text);
        free(text);
        text = repaired;
    }
    size_t length = strlen(text);
    self->frame = malloc(SB_WS_FRAME_HEADER_MAX + length);
    size_t header = sb_ws_frame_header(self->frame, 0x1 /* text */, length);
    memcpy(self->frame + header, text, length);
    self->length = header + length;
    free(text);
    self->topic = strdup(topic);
    self->payload = strdup(payload);
    self->retained = retained;
}

const uint8_t *sb_ws_event_frame_of(sb_ws_event_frame_t *self, const char *topic,
                                    const char *payload, bool retained, size_t *length)
{
    if (!self->frame || self->retained != retained || strcmp(self->topic, topic) != 0
        || strcmp(self->payload, payload) != 0) {
        forget(self);
        encode(self, topic, payload, retained);
    }
    *length = self->length;
    return self->frame;
}
