/* event_frame.h — the WebSocket frame of an event, encoded once for all
 * the clients it goes to.
 *
 * Delivering one event to thousands of subscribers would otherwise build
 * the same JSON, check the same UTF-8 and frame the same bytes once per
 * client. The last event's frame is kept and reused while the events that
 * come are the same (topic, payload, retained): every delivery of one
 * event in a row, which is how presence.c hands them out. */
#ifndef SB_WS_EVENT_FRAME_H
#define SB_WS_EVENT_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct sb_ws_event_frame sb_ws_event_frame_t;

sb_ws_event_frame_t *sb_ws_event_frame_new(void);
void sb_ws_event_frame_destroy(sb_ws_event_frame_t **self_p);

/* The text frame ({"event":TOPIC,"data":...}, see sb_ws_json_event) of
 * this event; valid until the next call. */
const uint8_t *sb_ws_event_frame_of(sb_ws_event_frame_t *self, const char *topic,
                                    const char *payload, bool retained, size_t *length);

#endif
