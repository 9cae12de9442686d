/* bridge_link.h — one [bridge NAME]: the MQTT client link to a remote
 * broker, on Debian's libmosquitto, driven from the process's libuv loop
 * (mosquitto_socket under a uv_poll, mosquitto_loop_read/write when it is
 * readable/writable, mosquitto_loop_misc on a timer for keep alive), so
 * no thread of libmosquitto's own runs and every callback comes on the
 * loop.
 *
 * The link dials the bridge's addresses in turn, reconnects with the
 * project's backoff and jitter, subscribes on the remote to what its
 * in/both rules take (MQTT 5: with No Local), and sends out what the hub
 * hands it on its out/both rules. QoS 1 and 2 messages for the remote are
 * kept until the remote acknowledges them, also while it is away: up to 20
 * sent and unacknowledged, and up to max_queued waiting behind them (then
 * the oldest waiting goes, counted); QoS 0 ones are
 * sent only while connected (else dropped, counted). Nothing here blocks:
 * the hub's traffic never waits for the remote. */
#ifndef SB_BRIDGE_LINK_H
#define SB_BRIDGE_LINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "bridge_config.h"

typedef struct sb_bridge_link sb_bridge_link_t;

typedef struct {
    uint64_t in;             /* messages from the remote handed to the hub */
    uint64_t out;            /* messages the remote took (QoS 0: sent) */
    uint64_t dropped;        /* messages for the remote given up (queue full, QoS 0 while away) */
    uint64_t echoes;         /* the bridge's own messages seen coming back, dropped */
    uint64_t refused;        /* remote messages no rule takes, or that the hub cannot carry */
    uint64_t connects;       /* connections that got a CONNACK */
    size_t queued;           /* messages for the remote not acknowledged yet */
} sb_bridge_counters_t;

typedef struct {
    /* A message from the remote, on its local topic. */
    void (*on_message)(void *owner, sb_bridge_link_t *link, const char *topic,
                       const char *payload, int qos, bool retain);
    /* The link's state changed: "connecting", "connected", "backoff:3.2s", "stopped". */
    void (*on_state)(void *owner, sb_bridge_link_t *link, const char *state);
} sb_bridge_link_events_t;

/* Call once per process before any link. */
void sb_bridge_links_init(void);
void sb_bridge_links_cleanup(void);

/* `password` is the first line of the bridge's password_file, or "". */
sb_bridge_link_t *sb_bridge_link_new(uv_loop_t *loop, const sb_bridge_config_t *config,
                                     const char *password, const sb_bridge_link_events_t *events,
                                     void *owner);
void sb_bridge_link_destroy(sb_bridge_link_t **self_p);

void sb_bridge_link_start(sb_bridge_link_t *self);

/* Says DISCONNECT if connected and stops retrying. */
void sb_bridge_link_stop(sb_bridge_link_t *self);

const char *sb_bridge_link_name(const sb_bridge_link_t *self);
const sb_bridge_config_t *sb_bridge_link_config(const sb_bridge_link_t *self);

/* A hub event on `topic`: sent out when an out/both rule takes it. */
void sb_bridge_link_send(sb_bridge_link_t *self, const char *topic, const char *payload,
                         bool retain);

/* Before the loop sleeps: watch for writability while libmosquitto has output. */
void sb_bridge_link_flush(sb_bridge_link_t *self);

sb_bridge_counters_t sb_bridge_link_counters(const sb_bridge_link_t *self);

#endif
