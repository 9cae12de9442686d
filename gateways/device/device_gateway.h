/* device_gateway.h — sb-gateway-device: the hub's links to the home's
 * devices (§3.3), one per [device NAME] section, served to every client as
 * the service `device` (`devices`, `device NAME`, `device NAME call|send
 * LINE`). Lines a device sends unasked are published on device/NAME, link
 * state changes on $sys/devices/NAME. Devices with `ha_component` are
 * announced to Home Assistant (ha_discovery.h).
 *
 * The gateway is one provider at the broker with a credit of `slots`:
 * that many device commands run at once (a call waiting for a slow device
 * holds one slot). */
#ifndef SB_DEVICE_GATEWAY_H
#define SB_DEVICE_GATEWAY_H

#include <stddef.h>

#include "config.h"

typedef struct {
    const char *broker;            /* frontend: where events are published */
    const char *backend;           /* where the `device` service is provided */
    const char *listen;            /* HOST:PORT for devices that dial in, or "off" */
    long heartbeat_interval_ms;
    long heartbeat_liveness;
    size_t slots;
    size_t max_line;
    long hello_timeout_ms;
    long broker_wait_ms;           /* events held while the broker is away, this long */
    size_t broker_wait_max;        /* at most this many */
    const char *hub_name;          /* Home Assistant discovery: ids and topics */
    const char *ha_prefix;
    const sb_config_t *config;
} sb_device_gateway_settings_t;

typedef struct sb_device_gateway sb_device_gateway_t;

/* Links to the broker, listens if asked, starts every device; NULL after logging why. */
sb_device_gateway_t *sb_device_gateway_new(const sb_device_gateway_settings_t *settings);
void sb_device_gateway_destroy(sb_device_gateway_t **self_p);

/* Runs until SIGTERM or SIGINT. */
void sb_device_gateway_run(sb_device_gateway_t *self);

#endif
