/* broker_link.h — a gateway's ZeroMQ link to the broker, inside a libuv loop.
 *
 * ZMQ_FD is edge-triggered and signals readability only: it fires when the
 * socket's state changes, and a zmq send or recv can consume that change.
 * So the link drains (reads until ZMQ_EVENTS has no POLLIN) both when the
 * fd fires and whenever the gateway is about to block: the gateway calls
 * sb_broker_link_drain from its uv_prepare callback, after which nothing
 * can be left unread while the loop sleeps.
 *
 * A socket monitor reports when the connection to the broker drops, so a
 * gateway answers its requests in flight at once instead of at their
 * deadlines; heartbeats find a broker that hangs without dropping it.
 *
 * One event can mean thousands of client writes, so reading is bounded:
 * a loop iteration reads for at most a pass's time, then the loop flushes
 * its clients and runs its timers (the heartbeat goes out on time, so the
 * broker never judges a busy gateway silent) and the link goes on reading
 * in the next iteration, without sleeping in between. A pass starts at
 * SB_BROKER_LINK_PASS_MIN_MS, so the first events of a burst go out at
 * once, and doubles while a backlog lasts, up to SB_BROKER_LINK_PASS_MAX_MS:
 * every client write then carries more events (a write to a socket costs
 * far more than the copy of an event into its buffer). */
#ifndef SB_BROKER_LINK_H
#define SB_BROKER_LINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "envelope.h"

typedef struct sb_broker_link sb_broker_link_t;

/* Milliseconds of reading (and delivering) per loop iteration. */
#define SB_BROKER_LINK_PASS_MIN_MS 10
#define SB_BROKER_LINK_PASS_MAX_MS 80

typedef struct {
    /* Each envelope from the broker; it is destroyed after the call. */
    void (*on_envelope)(void *arg, const sb_envelope_t *env);
    /* The connection to the broker broke (it died or restarted): nothing
     * sent before will be answered. ZeroMQ reconnects by itself. */
    void (*on_lost)(void *arg);
    /* The connection to a broker is up (at start, or after a restart) and
     * takes sends (its pipe is attached after the handshake): the
     * gateway tells it its clients and subscriptions again, then sends what
     * it held. */
    void (*on_connected)(void *arg);
    /* Optional (NULL): a broker that fell silent (on_lost was called) is
     * heard again on the same connection; it was hung, not restarted. */
    void (*on_back)(void *arg);
} sb_broker_link_events_t;

typedef struct {
    const char *endpoint;           /* the broker's frontend */
    long heartbeat_interval_ms;     /* how often the broker is asked if it is alive */
    long heartbeat_liveness;        /* intervals without an answer before it counts as lost */
} sb_broker_link_settings_t;

/* Connects to the broker's frontend; NULL with errno on failure. */
sb_broker_link_t *sb_broker_link_new(uv_loop_t *loop, const sb_broker_link_settings_t *settings,
                                     const sb_broker_link_events_t *events, void *arg);

/* Stops watching and closes the socket (the uv handle closes asynchronously). */
void sb_broker_link_destroy(sb_broker_link_t **self_p);

/* Sends without blocking; -1 with errno when the broker cannot take it now. */
int sb_broker_link_send(sb_broker_link_t *self, const sb_envelope_t *env);

/* The same for an envelope encoded before (kept to be sent again). */
int sb_broker_link_send_encoded(sb_broker_link_t *self, const uint8_t *payload, size_t size);

/* Reads and hands on what is waiting, as much as the pass allows (the
 * rest in the next loop iteration). */
void sb_broker_link_drain(sb_broker_link_t *self);

/* Whether a backlog that took several loop iterations has been read to
 * its end since the last call (the gateway gives memory back then). */
bool sb_broker_link_burst_over(sb_broker_link_t *self);

/* Connected to a broker that takes sends and answers heartbeats (health
 * checks; while false, gateways hold what their clients send). */
bool sb_broker_link_is_up(const sb_broker_link_t *self);

/* The broker refused this link's handshake (CURVE keys): waiting will not help. */
bool sb_broker_link_is_refused(const sb_broker_link_t *self);

/* Envelopes from the broker that failed validation and were dropped. */
uint64_t sb_broker_link_malformed(const sb_broker_link_t *self);

#endif
