/* router.h — what a gateway does with its clients' requests, whatever
 * protocol they speak: ping, help, quit, stats, sub, unsub and pub here;
 * clients, client and tell at the broker's own service; NAME:dp and NAME:wd
 * as `account`; every other command at the broker, for the service the
 * config assigns it. The router owns the broker link, the presence of the
 * clients at the broker and the requests in flight; the gateway owns the
 * sockets and tells the router how to answer one of its clients. */
#ifndef SB_ROUTER_H
#define SB_ROUTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "access.h"
#include "broker_link.h"
#include "config.h"
#include "latency.h"
#include "requests.h"

/* A place for one reply, kept by the gateway's client (its order, its tag). */
typedef struct sb_reply_slot sb_reply_slot_t;

typedef struct {
    /* The client with this serial, or NULL when it has gone. */
    void *(*find)(void *owner, uint64_t serial);
    uint64_t (*serial)(void *client);
    /* A slot for the reply to the request being handled; `tag` may be NULL. */
    sb_reply_slot_t *(*open_slot)(void *client, const char *tag);
    /* Answers with `status` ("OK", "ERR code", or NULL for `text` alone). */
    void (*answer)(void *client, sb_reply_slot_t *slot, const char *status, const char *text,
                   bool close_after);
    /* An asynchronous line: EVENT TOPIC PAYLOAD, RETAINED TOPIC PAYLOAD, MSG FROM TEXT. */
    void (*write_async)(void *client, const char *kind, const char *word, const char *text);
    /* The gateway's own counters for `stats` ("connections=3 ..."); returns the length. */
    int (*describe)(void *owner, char *buffer, size_t size);
    /* Optional (NULL: write_async with "EVENT", or "RETAINED" for a retained
     * value): every event, with its retain, pubret and qos (MQTT wants them). */
    void (*write_event)(void *client, const sb_envelope_t *event);
} sb_router_client_ops_t;

typedef struct {
    const sb_config_t *config;           /* [command NAME]: service, timeout, retry, help */
    const char *name;                    /* client id prefix: "tcp" gives tcp-1, tcp-2, ... */
    size_t max_filters;                  /* subscriptions per client */
    sb_broker_link_settings_t link;
    sb_requests_settings_t requests;     /* deadlines, broker-wait */
} sb_router_settings_t;

typedef struct sb_router sb_router_t;

/* Connects to the broker; NULL (after logging why) on failure. */
sb_router_t *sb_router_new(uv_loop_t *loop, const sb_router_settings_t *settings,
                           const sb_router_client_ops_t *ops, void *owner);
void sb_router_destroy(sb_router_t **self_p);

/* Handles one request line (§3.1 syntax) of `client`. */
void sb_router_handle_line(sb_router_t *self, void *client, const char *line, size_t length);

/* Handles a request already split into words (argv[0] is the command), to
 * be answered in `slot` (a JSON request, say). */
void sb_router_handle_command(sb_router_t *self, void *client, sb_reply_slot_t *slot,
                              size_t argc, char **argv);

/* Asks the broker for the retained values matching `filter`, for `client`
 * alone (`sub` does it before its OK): they come as events through
 * write_event / write_async, nothing else is answered. A gateway that
 * subscribes its clients some other way (MQTT SUBSCRIBE) calls it after
 * the subscription is in place. */
void sb_router_ask_retained(sb_router_t *self, void *client, const char *filter);

/* A publish that came some other way than a `pub` line (an MQTT PUBLISH):
 * the checks of `pub` (its command rule, the topic, the publish rules),
 * then the broker gets it with MQTT's retain flag, QoS, (NULL: none)
 * MQTT 5 properties (the envelope's `mqtt`) and Message Expiry Interval
 * (0: none; the broker ends a retained value with it); answered in `slot`
 * like `pub`. */
void sb_router_publish(sb_router_t *self, void *client, sb_reply_slot_t *slot, const char *topic,
                       const char *payload, bool retain, uint8_t qos, const char *mqtt,
                       uint32_t expiry_s);

void sb_router_client_joined(sb_router_t *self, uint64_t serial, const char *address);
void sb_router_client_left(sb_router_t *self, uint64_t serial);
void sb_router_client_id(const sb_router_t *self, uint64_t serial, char *buffer, size_t size);

/* The access rules (access.h), for a gateway that checks credentials of
 * its own (a WebSocket upgrade's Bearer header). */
const sb_access_t *sb_router_access(const sb_router_t *self);
/* A joined client proved to be `identity` some other way than `auth`. */
void sb_router_client_authenticated(sb_router_t *self, uint64_t serial,
                                    const sb_identity_t *identity);
/* Credentials ("NAME:SECRET") a client at `address` (HOST:PORT) gives
 * outside `auth`; see sb_guard_authenticate_now. */
const sb_identity_t *sb_router_authenticate_now(sb_router_t *self, const char *address,
                                                const char *pair, bool *waiting);

/* Reads what the broker sent; the gateway calls it before its loop sleeps
 * (see broker_link.h: the ZeroMQ fd is edge-triggered). */
void sb_router_drain(sb_router_t *self);

/* See sb_broker_link_burst_over. */
bool sb_router_burst_over(sb_router_t *self);

typedef struct {
    uint64_t requests, replies, errors;   /* sent to the broker, answered, answered ERR */
    size_t in_flight;                     /* waiting for the broker's answer, held ones too */
    size_t held;                          /* waiting for the broker link */
    uint64_t timeouts, late_replies;      /* answered ERR timeout by the gateway; replies after that */
    uint64_t resent;                      /* sent again to a new broker */
    uint64_t held_total;                  /* requests and publishes held for the broker link */
    uint64_t unavailable;                 /* answered ERR unavailable */
    uint64_t malformed;                   /* envelopes from the broker dropped */
    uint64_t auth_failures;               /* refused `auth` and Bearer credentials */
    bool broker_up;                       /* connected and heard from */
    const sb_latency_t *latency;          /* of requests sent to the broker */
} sb_router_stats_t;

/* For `stats`, /metrics and /healthz. */
sb_router_stats_t sb_router_stats(const sb_router_t *self);

/* Closes the broker link (at the end of a stop; the loop can then end). */
void sb_router_close_link(sb_router_t *self);

#endif
