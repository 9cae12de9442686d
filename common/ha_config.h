/* ha_config.h — the `ha_*` keys of a [device NAME] section, and of an
 * [ha NAME] section (a topic of the hub): how the device or topic is
 * announced to Home Assistant by MQTT discovery (docs/home-assistant.md).
 * Read by config.c, checked as a whole by config_check.c, used by the
 * device gateway's ha_discovery.c. */
#ifndef SB_HA_CONFIG_H
#define SB_HA_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

typedef enum {
    SB_HA_NONE = 0,          /* not announced */
    SB_HA_SWITCH,
    SB_HA_SENSOR,
    SB_HA_BINARY_SENSOR,
    SB_HA_BUTTON,
} sb_ha_component_t;

#define SB_HA_COMPONENTS "switch sensor binary_sensor button"

typedef struct {
    sb_ha_component_t component;
    char *name;              /* ha_name: what Home Assistant shows; NULL: the device's name */
    char *unit;              /* ha_unit (sensor), or NULL */
    char *device_class;      /* ha_device_class, or NULL */
    char *command_on;        /* ha_command_on: the line ON (switch) or PRESS (button) writes;
                              * of a topic, the payload Home Assistant publishes */
    char *command_off;       /* ha_command_off: the line (payload) of OFF (switch) */
    bool command_call;       /* ha_command_mode = call (else send) */
    char *state_pattern;     /* ha_state_pattern: POSIX extended regex, at most one group */
    char *state_on;          /* ha_state_on / ha_state_off: the states that mean on and off */
    char *state_off;
    bool topic;              /* an [ha NAME] section: a topic, not a device */
    char *state_topic;       /* ha_state_topic / ha_command_topic: a topic's own topics */
    char *command_topic;
    int line;                /* where the first ha_ key is (0: none) */
} sb_ha_config_t;

/* "switch", ... ("" for SB_HA_NONE). */
const char *sb_ha_component_name(sb_ha_component_t component);

/* Sets one `ha_*` key; false with a reason for a bad value or an unknown key. */
bool sb_ha_config_set(sb_ha_config_t *self, const char *key, const char *value, int line,
                      char *reason, size_t size);

void sb_ha_config_free(sb_ha_config_t *self);

/* Whether the keys fit together (a switch has both commands, ...); false
 * with a reason. A section without ha_ keys is fine. */
bool sb_ha_config_check(const sb_ha_config_t *self, char *reason, size_t size);

/* A name that may be part of an MQTT discovery object id: 1 to 64 ASCII
 * letters, digits, `_` or `-` (`allow_underscore` false: no `_`, for the
 * hub's name, so "switchboard_HUB_" never starts another hub's ids). */
bool sb_ha_id_is_valid(const char *name, bool allow_underscore);

#endif
