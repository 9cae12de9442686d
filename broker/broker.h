/* broker.h — sb-broker's core: routes each request by service name to the
 * least recently used idle provider, routes the reply back to the gateway
 * and client it came from, and answers every request exactly once: with
 * the provider's reply, or with ERR timeout / busy / no-service. */
#ifndef SB_BROKER_H
#define SB_BROKER_H

#include <stdint.h>

#include "history.h"
#include "retained.h"

/* Pending retained changes that are written at once, without waiting for
 * --retained-flush. */
#define SB_BROKER_RETAINED_BATCH 1000

typedef struct {
    const char *frontend;          /* endpoint gateways connect to (bound) */
    const char *backend;           /* endpoint providers connect to (bound) */
    long request_timeout_ms;       /* deadline of a request that names none */
    long max_timeout_ms;           /* no request may ask for longer */
    long queue_max;                /* requests waiting per service before ERR busy */
    long startup_grace_ms;         /* how long an unknown service may still appear */
    long heartbeat_interval_ms;    /* how often providers are told the broker is alive */
    long heartbeat_liveness;       /* intervals of silence before a provider is dead */
    sb_retained_settings_t retained;
    sb_history_settings_t history;
} sb_broker_settings_t;

typedef struct sb_broker sb_broker_t;

/* Binds both sockets and loads the retained values; NULL (after logging
 * why) when a socket cannot be bound or the retained store not opened. */
sb_broker_t *sb_broker_new(const sb_broker_settings_t *settings);
void sb_broker_destroy(sb_broker_t **self_p);

/* Serves until interrupted (SIGINT/SIGTERM through czmq). */
void sb_broker_run(sb_broker_t *self);

#endif
