/* mqtt_frame.h — where one MQTT packet ends in a byte stream: the fixed
 * header's remaining length (a variable byte integer of 1 to 4 bytes).
 * The transport needs only this much to cut the stream into packets and
 * to refuse an oversized one before its body arrives; what is inside a
 * packet is the codec's (mqtt_packet.h). */
#ifndef SB_MQTT_FRAME_H
#define SB_MQTT_FRAME_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    SB_MQTT_FRAME_WHOLE,      /* *header + *remaining bytes are one packet */
    SB_MQTT_FRAME_PARTIAL,    /* more bytes needed; *header is 0 while the length is unknown */
    SB_MQTT_FRAME_MALFORMED,  /* the remaining length takes more than 4 bytes */
} sb_mqtt_frame_status_t;

sb_mqtt_frame_status_t sb_mqtt_frame(const uint8_t *data, size_t length, size_t *header,
                                     size_t *remaining);

#endif
