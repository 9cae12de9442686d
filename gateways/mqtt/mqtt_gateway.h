/* mqtt_gateway.h — sb-gateway-mqtt: an MQTT 3.1.1 and 5.0 server on the
 * hub's topics. Owns the listeners (gateway_base.h: plain and TLS), the
 * network connections (mqtt_client.c), the sessions by client id
 * (mqtt_session.c), and how MQTT maps onto the hub: each session is one
 * hub client (mqtt-N), its SUBSCRIBEs are the hub's subscriptions, its
 * PUBLISHes the hub's `pub`, a PUBLISH to $switchboard/cmd/COMMAND runs
 * COMMAND, and `tell` arrives on $switchboard/msg/<client id>/<sender>
 * (docs/mqtt.md). */
#ifndef SB_MQTT_GATEWAY_H
#define SB_MQTT_GATEWAY_H

#include <stddef.h>
#include <stdint.h>

#include "gateway_base.h"

typedef struct {
    sb_gateway_base_settings_t base;   /* listen, TLS, broker, name (mqtt gives mqtt-1, ...) */
    const char *ws_listen;             /* HOST:PORT for MQTT over WebSocket, or NULL */
    const char *wss_listen;            /* the same over TLS (the base's certificate), or NULL */
    const char *session_store;         /* SQLite file of persistent sessions, or NULL */
    size_t max_connections;
    size_t max_packet;                 /* whole packet, both ways' announcement */
    size_t max_output;
    size_t max_queued;                 /* per session */
    size_t max_sessions;
    size_t max_subscriptions;          /* filters per session, $switchboard/ and $share/ ones too */
    uint16_t receive_maximum;          /* QoS 1/2 in flight from a client (and to a 3.1.1 one) */
    uint32_t max_session_expiry_s;
    uint16_t max_keep_alive_s;         /* 0: no cap */
} sb_mqtt_gateway_settings_t;

typedef struct sb_mqtt_gateway sb_mqtt_gateway_t;

/* Listens and connects; NULL (after logging why) on failure. */
sb_mqtt_gateway_t *sb_mqtt_gateway_new(const sb_mqtt_gateway_settings_t *settings);
void sb_mqtt_gateway_destroy(sb_mqtt_gateway_t **self_p);

/* Serves until SIGTERM or SIGINT (then v5 clients get DISCONNECT 0x8B). */
void sb_mqtt_gateway_run(sb_mqtt_gateway_t *self);

#endif
