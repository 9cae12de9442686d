/* mqtt_internal.h — what the files of sb-gateway-mqtt share: the gateway,
 * a connection's MQTT state, the router's reply slots, and the functions
 * one file calls in another. Not an API: mqtt_gateway.h is. */
#ifndef SB_MQTT_INTERNAL_H
#define SB_MQTT_INTERNAL_H

#include <czmq.h>
#include <stdbool.h>
#include <stdint.h>

#include "mqtt_client.h"
#include "mqtt_gateway.h"
#include "mqtt_packet.h"
#include "mqtt_session.h"
#include "mqtt_store.h"
#include "router.h"

#define TOPIC_ALIASES 16
#define CONNECT_TIMEOUT_MS 10000
#define SWEEP_INTERVAL_MS 250
#define SAVE_EVERY_SWEEPS 4     /* changed sessions are written once a second */
/* Sockets beyond --max-connections still allowed to say CONNECT (and be refused). */
#define MAX_REFUSING 16

#define CMD_PREFIX "$switchboard/cmd/"
#define MSG_PREFIX "$switchboard/msg/"
#define REPLY_PREFIX "$switchboard/reply/"
#define OWN_PREFIX "$switchboard/"
/* Client ids are put into topics and `clients`: bounded. */
#define MAX_CLIENT_ID 256

typedef struct {
    uint64_t accepted, refused, publishes_in, publishes_out, denied, dropped, malformed,
        keep_alive_timeouts, takeovers, wills, commands, undeliverable;
    uint64_t evicted;   /* away sessions ended to make room (--max-sessions) */
} mqtt_counters_t;

struct sb_mqtt_gateway {
    sb_mqtt_gateway_settings_t settings;
    sb_gateway_base_t base;        /* listeners, connections by serial, router, stop */
    zhashx_t *sessions;            /* serial -> sb_mqtt_session_t */
    zhashx_t *sessions_by_id;      /* MQTT client id -> sb_mqtt_session_t */
    zhashx_t *shares;              /* "$share/GROUP/FILTER" -> its group's session */
    uv_timer_t sweep;              /* wills with a delay, sessions that expire */
    uv_tcp_t ws_listener;          /* --ws-listen, when set */
    uv_tcp_t wss_listener;         /* --wss-listen (TLS with the --tls-listen certificate) */
    sb_ws_stream_limits_t ws_limits;
    size_t sockets, connected;
    mqtt_counters_t counters;
    sb_mqtt_buffer_t scratch;      /* the packet being encoded */
    sb_mqtt_store_t *store;        /* persistent sessions, or NULL */
    unsigned sweeps;
    zlistx_t *expired;             /* while loading: client ids of sessions whose time is up */
    char captured[64];             /* the status of an answer given at once (sub, unsub) */
};

/* One network connection's MQTT state (the client's data). */
typedef struct {
    sb_mqtt_gateway_t *gateway;
    sb_mqtt_client_t *client;
    sb_mqtt_session_t *session;    /* after CONNECT */
    sb_mqtt_version_t version;     /* 0 before CONNECT */
    uint16_t window;               /* the client's Receive Maximum */
    uint32_t max_packet_out;       /* the client's Maximum Packet Size, 0: none */
    uint16_t incoming;             /* its QoS 1 and 2 PUBLISHes not acknowledged yet */
    bool expiry_was_zero;          /* v5: a DISCONNECT may not then set one */
    char *aliases[TOPIC_ALIASES + 1];        /* the client's topic aliases */
    char *out_aliases[TOPIC_ALIASES + 1];    /* ours towards it (v5), first come first kept */
    uint16_t out_alias_max, out_alias_used;
    char peer[80];
} link_t;

/* What a router answer is for (a reply slot's request). */
typedef enum { SLOT_CAPTURE, SLOT_PUBLISH, SLOT_COMMAND, SLOT_IGNORE } slot_kind_t;

typedef struct {
    slot_kind_t kind;
    uint64_t link_serial;          /* SLOT_PUBLISH: the connection that sent it */
    uint16_t packet_id;
    uint8_t qos;
    size_t correlation_length;     /* SLOT_COMMAND: then the reply topic, NUL, the data */
    char text[];
} slot_t;

/* mqtt_output.c: what goes to a connected client (packets, PUBLISH in its window, DISCONNECT) */
bool mqtt_is_v5(const link_t *link);
bool mqtt_send_packet(link_t *link, const sb_mqtt_packet_t *packet);
void mqtt_send_ack(link_t *link, sb_mqtt_type_t type, uint16_t packet_id, uint8_t reason);
void mqtt_close_with(link_t *link, uint8_t reason, const char *detail);
void mqtt_pump(link_t *link);
void mqtt_deliver(sb_mqtt_session_t *session, sb_mqtt_message_t *message);
void mqtt_resend_in_flight(link_t *link);

/* mqtt_sessions.c: sessions as hub clients (requests as the session, wills, expiry, saving and restoring) */
void mqtt_add_slot_request(sb_mqtt_session_t *session, slot_t *request, sb_reply_slot_t **slot);
slot_t *mqtt_slot_new(slot_kind_t kind, size_t extra);
const char *mqtt_filter_command(sb_mqtt_gateway_t *self, sb_mqtt_session_t *session,
                                  const char *command, const char *filter);
void mqtt_publish_as(sb_mqtt_gateway_t *self, sb_mqtt_session_t *session, slot_t *request,
                       const char *topic, const char *payload, bool retain, uint8_t qos,
                     const char *mqtt, uint32_t expiry_s);
void mqtt_publish_will(sb_mqtt_gateway_t *self, sb_mqtt_session_t *session);
void mqtt_end_session(sb_mqtt_gateway_t *self, sb_mqtt_session_t *session);
void mqtt_session_left(sb_mqtt_gateway_t *self, sb_mqtt_session_t *session);
void mqtt_save_sessions(sb_mqtt_gateway_t *self, bool all);
void mqtt_on_sweep(uv_timer_t *timer);
void mqtt_hub_address(const char *peer, const char *client_id, char *buffer, size_t size);
bool mqtt_open_store(sb_mqtt_gateway_t *self);

/* mqtt_connect.c: CONNECT (credentials, the session, take-over, CONNACK) */
void mqtt_refuse_connect(link_t *link, sb_mqtt_version_t version, uint8_t reason,
                           const char *detail);
void mqtt_on_connect(link_t *link, const sb_mqtt_connect_t *connect);

/* mqtt_publish.c: PUBLISH and its acknowledgements from the client, and $switchboard/cmd */
void mqtt_answer_publish(sb_mqtt_gateway_t *self, sb_mqtt_session_t *session, const slot_t *slot,
                           const char *status);
void mqtt_answer_command(sb_mqtt_gateway_t *self, sb_mqtt_session_t *session, const slot_t *slot,
                           const char *status, const char *text);
void mqtt_on_publish(link_t *link, const sb_mqtt_publish_t *publish);
void mqtt_on_ack(link_t *link, sb_mqtt_type_t type, const sb_mqtt_ack_t *ack);

/* mqtt_subscribe.c: SUBSCRIBE and UNSUBSCRIBE, shared subscriptions */
bool mqtt_is_own_filter(const char *filter);
uint8_t mqtt_hub_subscribe(sb_mqtt_gateway_t *self, sb_mqtt_session_t *session, const char *filter);
uint8_t mqtt_join_share(sb_mqtt_gateway_t *self, sb_mqtt_session_t *member, const char *name);
bool mqtt_is_share(const char *filter);
void mqtt_leave_shares(sb_mqtt_gateway_t *self, sb_mqtt_session_t *session);
sb_mqtt_session_t *mqtt_next_member(sb_mqtt_gateway_t *self, sb_mqtt_session_t *group,
                                      const sb_mqtt_filter_t **filter);
void mqtt_on_subscribe(link_t *link, const sb_mqtt_subscribe_t *subscribe, bool add);

#endif
