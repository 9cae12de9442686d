/* mqtt_frame.c — the fixed header's length (see mqtt_frame.h). */
#include "mqtt_frame.h"

sb_mqtt_frame_status_t sb_mqtt_frame(const uint8_t *data, size_t length, size_t *header,
                                     size_t *remaining)
{
    size_t value = 0;
    *header = 0;
    *remaining = 0;
    for (size_t i = 1; i <= 4; i++) {
        if (i >= length)
            return SB_MQTT_FRAME_PARTIAL;
        value |= (size_t) (data[i] & 0x7f) << (7 * (i - 1));
        if (!(data[i] & 0x80)) {
            *header = i + 1;
            *remaining = value;
            return length - *header >= value ? SB_MQTT_FRAME_WHOLE : SB_MQTT_FRAME_PARTIAL;
        }
    }
    return SB_MQTT_FRAME_MALFORMED;
}
