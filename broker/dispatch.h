/* dispatch.h — the broker's routing core for requests: services, the
 * providers that serve them and the requests in flight.
 *
 * A provider may hold several requests at once, up to the credit it
 * announced in READY (a worker's prefetch, the device gateway's slots).
 * A request goes to the provider of its service that holds the fewest,
 * least recently used first, so work spreads before it queues. A request
 * that runs as a job (sleep, an external program: `job` in the envelope)
 * goes only to a provider that holds no other job: a provider runs one
 * job at a time and its fast commands beside it, so nothing waits behind
 * a slow command while another provider could take it.
 *
 * Every request gets exactly one answer: its provider's reply, or ERR
 * timeout / busy / no-service / worker-died. A provider lost while it
 * holds requests has the retry-safe ones run again elsewhere (bounded)
 * and the rest answered at once; one that leaves on purpose has answered
 * everything it started, so what it still holds goes back to the queue. */
#ifndef SB_DISPATCH_H
#define SB_DISPATCH_H

#include <czmq.h>

#include "broker.h"
#include "envelope.h"
#include "envelope_io.h"

typedef struct sb_dispatch sb_dispatch_t;

typedef struct {
    uint64_t requests, replies, timeouts, busy, no_service;
    uint64_t unmatched_replies, undeliverable;
} sb_dispatch_counters_t;

/* Replies go out through `frontend`, requests through `backend` (the
 * outboxes of the broker's two sockets, flushed by its loop). */
sb_dispatch_t *sb_dispatch_new(const sb_broker_settings_t *settings, sb_outbox_t *frontend,
                               sb_outbox_t *backend);
void sb_dispatch_destroy(sb_dispatch_t **self_p);

/* A REQUEST from `*gateway`: queued and dispatched, or refused at once.
 * Takes *gateway and *env_p when it keeps them (sets them to NULL). */
void sb_dispatch_request(sb_dispatch_t *self, zframe_t **gateway, sb_envelope_t **env_p);

/* An envelope from a provider on the backend (READY, REPLY, HEARTBEAT,
 * DISCONNECT). Takes *routing_id when it registers a new provider. False
 * for an envelope of a type providers do not send (logged; the caller
 * counts it as malformed). */
bool sb_dispatch_from_provider(sb_dispatch_t *self, zframe_t **routing_id,
                               const sb_envelope_t *env);

/* What time and the last pass bring: expired deadlines, the end of the
 * start-up grace, requests queued again. Call after every pass. */
void sb_dispatch_tick(sb_dispatch_t *self);

/* Milliseconds until sb_dispatch_tick has a deadline or the grace to end. */
long sb_dispatch_timeout_ms(const sb_dispatch_t *self);

/* A flush of the backend could not reach `routing_id`: if it is a
 * provider, it is gone (removed; what it held run again or answered). */
void sb_dispatch_provider_lost(sb_dispatch_t *self, zframe_t *routing_id);

/* Every heartbeat interval: a heartbeat to each provider (a send to one
 * that has gone fails at once, which finds a killed worker within an
 * interval), and providers silent past their liveness are removed. */
void sb_dispatch_heartbeat(sb_dispatch_t *self);

/* The broker itself did not run for a while: every provider gets a fresh
 * liveness period (their silence was the broker's own). */
void sb_dispatch_forgive(sb_dispatch_t *self);

sb_dispatch_counters_t sb_dispatch_counters(const sb_dispatch_t *self);

/* ` requests=N ... queue_SVC=N idle_SVC=N workers_SVC=N dispatched_SVC=N
 * p99_us_SVC=N ...` (providers holding nothing, all providers, requests
 * handed out so far, the 99th percentile of arrival-to-answer over the last
 * whole 10 s, or the one under way) appended to `text` (of
 * `size` bytes, NUL-terminated) for `stats broker`; the per-service list
 * is cut before it would leave less than `reserve` bytes. */
void sb_dispatch_describe(const sb_dispatch_t *self, char *text, size_t size, size_t reserve);

/* Queues the one reply a gateway's request gets; -1 (errno set) if it
 * cannot be encoded. Used by the broker's own commands too. */
int sb_dispatch_answer_send(sb_outbox_t *frontend, zframe_t *gateway, uint64_t id, bool ok,
                            const char *code, const char *text);

#endif
