/* ha_discovery.h — announces the devices with `ha_component` to Home
 * Assistant by MQTT discovery (docs/home-assistant.md).
 *
 * For device NAME on hub HUB it keeps, retained:
 *   PREFIX/COMPONENT/switchboard_HUB_NAME/config   the discovery config (JSON)
 *   switchboard/HUB/NAME/availability              online | offline (from the link)
 *   switchboard/HUB/NAME/state                     what ha_state_pattern takes from its lines
 * and turns ON, OFF or PRESS on switchboard/HUB/NAME/set into the line the
 * config names, written to the device (`send`, or `call` with its answer
 * read as a state). It announces again when Home Assistant says `online`
 * on PREFIX/status, and clears the configs of this hub that the config no
 * longer has. An [ha NAME] section announces a topic of the hub the same
 * way, with its own state and command topics, which Home Assistant reads
 * and publishes directly (no availability, nothing for the hub to map).
 *
 * It knows no socket: the device gateway hands it events and gives it the
 * functions that publish, subscribe, ask the broker and write to devices,
 * so the unit test drives it the same way. */
#ifndef SB_HA_DISCOVERY_H
#define SB_HA_DISCOVERY_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"

typedef struct {
    const char *hub;       /* --hub-name */
    const char *prefix;    /* --ha-prefix */
} sb_ha_settings_t;

typedef struct {
    /* Publishes `payload` on `topic`, retained ("" clears it). */
    void (*publish)(void *arg, const char *topic, const char *payload);
    /* The gateway wants the events on `filter` (to sb_ha_discovery_event). */
    void (*subscribe)(void *arg, const char *filter);
    /* Asks the broker `topics FILTER`; its reply goes to sb_ha_discovery_retained. */
    void (*list_retained)(void *arg, const char *filter);
    /* Writes `line` to `device` (`call`: waits for its answer, which the gateway hands to
     * sb_ha_discovery_line as it does every answer and unasked line). */
    void (*command)(void *arg, const char *device, const char *line, bool call);
} sb_ha_ops_t;

typedef struct sb_ha_discovery sb_ha_discovery_t;

/* NULL after logging why, when the hub name or prefix is not usable. */
sb_ha_discovery_t *sb_ha_discovery_new(const sb_config_t *config, const sb_ha_settings_t *settings,
                                       const sb_ha_ops_t *ops, void *arg);
void sb_ha_discovery_destroy(sb_ha_discovery_t **self_p);

/* Devices announced. */
size_t sb_ha_discovery_count(const sb_ha_discovery_t *self);

/* The broker link is (again) up: subscribes, announces, and asks which old configs to clear. */
void sb_ha_discovery_start(sb_ha_discovery_t *self);

/* An event on one of the subscribed filters. */
void sb_ha_discovery_event(sb_ha_discovery_t *self, const char *topic, const char *payload);

/* The broker's `topics` reply: "N TOPIC VALUE ...". */
void sb_ha_discovery_retained(sb_ha_discovery_t *self, const char *reply);

/* A device's link state ("connected", "backoff:1.2s", ...) and its lines:
 * unasked ones and answers to anyone's call (keepalive answers are not). */
void sb_ha_discovery_link_state(sb_ha_discovery_t *self, const char *device, const char *state);
void sb_ha_discovery_line(sb_ha_discovery_t *self, const char *device, const char *line);

/* Every device offline (the gateway stops). */
void sb_ha_discovery_stop(sb_ha_discovery_t *self);

/* The discovery config of the device or [ha] topic `name` on `hub`
 * (malloc'd JSON), or NULL when it is not announced. */
char *sb_ha_discovery_json(const char *name, const sb_ha_config_t *ha, const char *hub);

#endif
