/* bridge_hub.h — sb-bridge: every [bridge NAME] of the config in one
 * process, on the hub's side a gateway without sockets of its own. Each
 * bridge is a client of the hub (bridge-1, bridge-2, ... in `clients`)
 * that subscribes to what its out/both rules take and publishes what
 * comes in; its state is published retained on $sys/bridges/NAME and its
 * counters on $sys/bridges/NAME/stats.
 *
 * No loops: what a bridge publishes on the hub carries its client id
 * (the envelope's `from`, which the broker copies into the events, as for
 * MQTT's No Local), and the hub's events from it are not sent back out of
 * that bridge. */
#ifndef SB_BRIDGE_HUB_H
#define SB_BRIDGE_HUB_H

#include <stddef.h>

#include "config.h"

typedef struct {
    const char *broker;            /* the broker's frontend */
    long heartbeat_interval_ms;
    long heartbeat_liveness;
    long broker_wait_ms;           /* what comes in is held this long while the broker is away */
    size_t broker_wait_max;
    long stats_interval_ms;        /* how often changed counters are published */
    const sb_config_t *config;
} sb_bridge_hub_settings_t;

typedef struct sb_bridge_hub sb_bridge_hub_t;

/* NULL after logging why (no broker link, a password file that cannot be read). */
sb_bridge_hub_t *sb_bridge_hub_new(const sb_bridge_hub_settings_t *settings);
void sb_bridge_hub_destroy(sb_bridge_hub_t **self_p);

/* Runs until SIGTERM or SIGINT. */
void sb_bridge_hub_run(sb_bridge_hub_t *self);

#endif
