/* mqtt_session.h — the state of one MQTT session (MQTT 5.0 §4.1), apart
 * from any network connection: its subscriptions with their QoS and v5
 * options, the messages for the client (queued, and QoS 1 and 2 in flight
 * with their packet ids), the QoS 2 packet ids it sent that wait for
 * PUBREL, its will, and when it ends. A session outlives its connection
 * when the client asked for that (clean session 0, or a v5 Session Expiry
 * Interval); the gateway keeps it and reconnects it.
 *
 * No sockets and no hub here: mqtt_gateway.c moves messages in and out
 * (and keeps the router's reply slots in `slots`). */
#ifndef SB_MQTT_SESSION_H
#define SB_MQTT_SESSION_H

#include <czmq.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "reply_queue.h"

/* A message for the client (or a will for the hub). */
typedef struct {
    char *topic;
    char *payload;             /* `length` bytes, NUL-terminated */
    size_t length;
    uint8_t qos;
    bool retain;
    uint32_t subscription_id;  /* v5: the matching subscription's id, 0 for none */
    char *correlation;         /* v5: a command reply's Correlation Data (binary) */
    size_t correlation_length;
    char *status;              /* v5: a command reply's `status` user property */
    char *relayed;             /* v5 properties from the publisher (mqtt_relay.h), or NULL */
    int64_t expires_at_ms;     /* wall clock: its Message Expiry; 0: never */
    uint16_t packet_id;        /* once in flight */
    bool sent;                 /* sent once: DUP when sent again */
    bool released;             /* QoS 2: PUBREC came, PUBREL sent, PUBCOMP awaited */
} sb_mqtt_message_t;

sb_mqtt_message_t *sb_mqtt_message_new(const char *topic, const char *payload, size_t length,
                                       uint8_t qos, bool retain);
void sb_mqtt_message_destroy(sb_mqtt_message_t **self_p);

/* One subscription: a Topic Filter and its Subscription Options. */
typedef struct {
    char *filter;
    uint8_t qos;
    bool no_local, retain_as_published;
    uint8_t retain_handling;
    uint32_t id;               /* v5 Subscription Identifier, 0 for none */
    bool skip_retained;        /* its Retain Handling declines the retained values */
} sb_mqtt_filter_t;

typedef struct sb_mqtt_session sb_mqtt_session_t;

struct sb_mqtt_session {
    char *client_id;
    uint64_t serial;           /* the hub's client (mqtt-N) */
    void *owner;               /* the gateway */
    void *link;                /* the gateway's connection, NULL while the client is away */
    zlistx_t *filters;         /* sb_mqtt_filter_t */
    zlistx_t *queue;           /* messages not sent yet, oldest first */
    zlistx_t *in_flight;       /* sent, QoS 1 and 2, awaiting their acks; oldest first */
    zhashx_t *in_flight_ids;   /* packet id -> its handle in in_flight: ids in use, found at once */
    zhashx_t *awaiting_release;/* QoS 2 packet ids from the client before PUBREL */
    size_t max_queued;
    uint16_t next_packet_id;
    uint64_t dropped;          /* messages dropped from a full queue */

    sb_mqtt_message_t *will;   /* NULL: none (or sent) */
    uint32_t will_delay_s;
    int64_t will_at_ms;        /* monotonic; 0: not due */
    uint32_t expiry_s;         /* kept this long once the client is away; 0: ends with it */
    int64_t expires_at_ms;     /* monotonic; 0: not away */
    sb_reply_queue_t slots;    /* the router's answers it waits for (freed with it) */
    size_t waiting;            /* its PUBLISHes and commands the hub has not answered */
    char *token;               /* the token it logged in with, NULL: anonymous */
    bool dirty;                /* changed since it was last saved (mqtt_store.h) */
    bool restored;             /* loaded from the store, its client not back yet */
    zlistx_t *members;         /* a shared subscription's group ($share/G/F): the serials of
                                * its sessions; NULL for a client's session */
    size_t turn;               /* the group's next member */
};

sb_mqtt_session_t *sb_mqtt_session_new(const char *client_id, uint64_t serial, size_t max_queued);
void sb_mqtt_session_destroy(sb_mqtt_session_t **self_p);

/* Adds or replaces (same filter) a subscription; true when it replaced one. */
bool sb_mqtt_session_subscribe(sb_mqtt_session_t *self, const sb_mqtt_filter_t *filter);
/* Whether the session has exactly this filter. */
bool sb_mqtt_session_match_filter(const sb_mqtt_session_t *self, const char *filter);
/* False when there was no such subscription. */
bool sb_mqtt_session_unsubscribe(sb_mqtt_session_t *self, const char *filter);
/* The subscription matching `topic` with the highest QoS, or NULL; for a
 * `retained` value, only among those that want retained values; for the
 * client's `own` publish, only among those without No Local. */
const sb_mqtt_filter_t *sb_mqtt_session_match(const sb_mqtt_session_t *self, const char *topic,
                                              bool retained, bool own);

/* Queues a message (owned) for the client. When the queue is full the
 * oldest QoS 0 message goes, else the oldest. */
void sb_mqtt_session_push(sb_mqtt_session_t *self, sb_mqtt_message_t *message);

/* The next message that may go while fewer than `window` are in flight:
 * a QoS 0 one is taken off the queue (the caller frees it, *owned set);
 * a QoS 1 or 2 one gets a packet id (or keeps the one it was sent with
 * before, see fit_window) and stays in flight (not owned). NULL when
 * nothing may go. */
sb_mqtt_message_t *sb_mqtt_session_next(sb_mqtt_session_t *self, size_t window, bool *owned);

/* A message restored from the store (owned), in flight or queued. */
void sb_mqtt_session_restore(sb_mqtt_session_t *self, sb_mqtt_message_t *message, bool in_flight);

/* On a reconnect, when the client's window is smaller than what is in
 * flight: the unreleased messages beyond the first `window` go back to the
 * head of the queue, in order and with their packet ids, to be sent again
 * (DUP) as the window opens. Released ones stay: their PUBREL is due. */
void sb_mqtt_session_fit_window(sb_mqtt_session_t *self, size_t window);

/* The message in flight with this packet id, or NULL. */
sb_mqtt_message_t *sb_mqtt_session_find(const sb_mqtt_session_t *self, uint16_t packet_id);

/* Ends a message's flow as if the client had acknowledged it (one it can
 * never get: expired, or over its Maximum Packet Size). */
void sb_mqtt_session_forget(sb_mqtt_session_t *self, uint16_t packet_id);

/* The client's PUBACK (QoS 1), PUBREC (QoS 2: the message is released;
 * send PUBREL) and PUBCOMP; false for an id not in flight in that state. */
bool sb_mqtt_session_acknowledge(sb_mqtt_session_t *self, int type, uint16_t packet_id);

/* QoS 2 from the client: whether `packet_id` already waits for PUBREL;
 * mark it; release it (false when it did not wait). */
bool sb_mqtt_session_awaits_release(const sb_mqtt_session_t *self, uint16_t packet_id);
void sb_mqtt_session_await_release(sb_mqtt_session_t *self, uint16_t packet_id);
bool sb_mqtt_session_release(sb_mqtt_session_t *self, uint16_t packet_id);

/* Messages sent and not yet acknowledged. */
size_t sb_mqtt_session_in_flight(const sb_mqtt_session_t *self);

/* The will (owned), replacing any; NULL clears it. */
void sb_mqtt_session_set_will(sb_mqtt_session_t *self, sb_mqtt_message_t *will, uint32_t delay_s);
/* Takes the will for publishing (NULL when there is none). A will whose
 * payload has a NUL byte cannot be a hub payload: it is dropped and
 * logged, never published. */
sb_mqtt_message_t *sb_mqtt_session_take_will(sb_mqtt_session_t *self);

#endif
