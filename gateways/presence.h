/* presence.h — a gateway's clients as the broker sees them: who is
 * connected here (JOIN/LEAVE, for `clients` and `tell`), which topics they
 * want (SUBSCRIBE/UNSUBSCRIBE once per distinct filter), and delivery of
 * what the broker sends for them (EVENT, MESSAGE). After the broker
 * restarts, everything is told to it again. Every gateway uses it, so a
 * line from a TCP client reaches a browser and back. */
#ifndef SB_PRESENCE_H
#define SB_PRESENCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker_link.h"
#include "subscriptions.h"

typedef struct sb_presence sb_presence_t;

typedef struct {
    /* An EVENT for `client`: live (one of its filters matches) or, with
     * event->retain, a retained value it asked for (sb_router_ask_retained). */
    void (*deliver_event)(void *arg, uint64_t client, const sb_envelope_t *event);
    void (*deliver_message)(void *arg, uint64_t client, const char *from, const char *text);
} sb_presence_events_t;

/* `name` prefixes client ids: "tcp" gives tcp-1, tcp-2, ... */
sb_presence_t *sb_presence_new(sb_broker_link_t *link, const char *name, size_t max_filters,
                               const sb_presence_events_t *events, void *arg);
void sb_presence_destroy(sb_presence_t **self_p);

/* The id the broker and other clients know `client` by. */
void sb_presence_client_id(const sb_presence_t *self, uint64_t client, char *buffer,
                           size_t size);

void sb_presence_join(sb_presence_t *self, uint64_t client, const char *address);
void sb_presence_leave(sb_presence_t *self, uint64_t client);

sb_subscribe_result_t sb_presence_subscribe(sb_presence_t *self, uint64_t client,
                                            const char *filter);
sb_unsubscribe_result_t sb_presence_unsubscribe(sb_presence_t *self, uint64_t client,
                                                const char *filter);

/* The id of one of this gateway's clients ("tcp-7" -> 7), or 0. */
uint64_t sb_presence_client_serial(const sb_presence_t *self, const char *id);

/* EVENT and MESSAGE envelopes are delivered here (an EVENT with `cli` only
 * to that client: a retained value it asked for), and DISCONNECT (the
 * broker does not know this gateway) answered with a resync: true; other
 * envelopes are not ours. */
bool sb_presence_handle(sb_presence_t *self, const sb_envelope_t *env);

/* Tells a (new) broker every client and filter. */
void sb_presence_resync(sb_presence_t *self);

#endif
