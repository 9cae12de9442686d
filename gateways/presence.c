/* presence.c — a gateway's clients and subscriptions at the broker (see presence.h). */
#include "presence.h"

#include <czmq.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "id_map.h"

struct sb_presence {
    sb_broker_link_t *link;
    char name[32];
    sb_subscriptions_t *subscriptions;
    zhashx_t *addresses;            /* client -> its address (a string) */
    const sb_presence_events_t *events;
    void *arg;
};

static void address_free(void **item)
{
    free(*item);
    *item = NULL;
}

sb_presence_t *sb_presence_new(sb_broker_link_t *link, const char *name, size_t max_filters,
                               const sb_presence_events_t *events, void *arg)
{
    sb_presence_t *self = calloc(1, sizeof *self);
    self->link = link;
    snprintf(self->name, sizeof self->name, "%s", name);
    self->subscriptions = sb_subscriptions_new(max_filters);
    self->addresses = sb_id_map_new();
    zhashx_set_destructor(self->addresses, address_free);
    self->events = events;
    self->arg = arg;
    return self;
}

void sb_presence_destroy(sb_presence_t **self_p)
{
    sb_presence_t *self = *self_p;
    if (!self)
        return;
    sb_subscriptions_destroy(&self->subscriptions);
    zhashx_destroy(&self->addresses);
    free(self);
    *self_p = NULL;
}

void sb_presence_client_id(const sb_presence_t *self, uint64_t client, char *buffer, size_t size)
{
    snprintf(buffer, size, "%s-%" PRIu64, self->name, client);
}

uint64_t sb_presence_client_serial(const sb_presence_t *self, const char *id)
{
    size_t length = strlen(self->name);
    if (strncmp(id, self->name, length) != 0 || id[length] != '-')
        return 0;
    char *end;
    uint64_t serial = strtoull(id + length + 1, &end, 10);
    return *end ? 0 : serial;
}

static void send_client(sb_presence_t *self, sb_envelope_type_t type, uint64_t client,
                        const char *address)
{
    char id[64];
    sb_presence_client_id(self, client, id, sizeof id);
    sb_envelope_t env = { .type = type, .client = id, .text = (char *) address };
    sb_broker_link_send(self->link, &env);   /* if the broker is away, resync tells it later */
}

static void send_filter(sb_presence_t *self, sb_envelope_type_t type, const char *filter)
{
    sb_envelope_t env = { .type = type, .topic = (char *) filter };
    sb_broker_link_send(self->link, &env);
}

void sb_presence_join(sb_presence_t *self, uint64_t client, const char *address)
{
    zhashx_update(self->addresses, sb_id_map_key(client), strdup(address));
    send_client(self, SB_ENVELOPE_JOIN, client, address);
}

static void unsubscribe_unused(void *arg, const char *filter)
{
    send_filter(arg, SB_ENVELOPE_UNSUBSCRIBE, filter);
}

void sb_presence_leave(sb_presence_t *self, uint64_t client)
{
    sb_subscriptions_drop_client(self->subscriptions, client, unsubscribe_unused, self);
    zhashx_delete(self->addresses, sb_id_map_key(client));
    send_client(self, SB_ENVELOPE_LEAVE, client, NULL);
}

sb_subscribe_result_t sb_presence_subscribe(sb_presence_t *self, uint64_t client,
                                            const char *filter)
{
    sb_subscribe_result_t result = sb_subscriptions_add(self->subscriptions, client, filter);
    if (result == SB_SUBSCRIBED_FIRST)
        send_filter(self, SB_ENVELOPE_SUBSCRIBE, filter);
    return result;
}

sb_unsubscribe_result_t sb_presence_unsubscribe(sb_presence_t *self, uint64_t client,
                                                const char *filter)
{
    sb_unsubscribe_result_t result = sb_subscriptions_remove(self->subscriptions, client, filter);
    if (result == SB_UNSUBSCRIBED_LAST)
        send_filter(self, SB_ENVELOPE_UNSUBSCRIBE, filter);
    return result;
}

typedef struct {
    sb_presence_t *self;
    const sb_envelope_t *event;
} delivery_t;

static void deliver_event(void *arg, uint64_t client)
{
    delivery_t *delivery = arg;
    delivery->self->events->deliver_event(delivery->self->arg, client, delivery->event);
}

/* A client still here: a reply or event for one that left is dropped. */
static uint64_t present_client(const sb_presence_t *self, const char *id)
{
    uint64_t client = sb_presence_client_serial(self, id);
    return client && zhashx_lookup(self->addresses, sb_id_map_key(client)) ? client : 0;
}

bool sb_presence_handle(sb_presence_t *self, const sb_envelope_t *env)
{
    if (env->type == SB_ENVELOPE_DISCONNECT) {   /* the broker does not know us */
        sb_presence_resync(self);
        return true;
    }
    if (env->type == SB_ENVELOPE_EVENT && env->client) {
        uint64_t client = present_client(self, env->client);
        if (client)
            self->events->deliver_event(self->arg, client, env);
        return true;
    }
    if (env->type == SB_ENVELOPE_EVENT) {
        delivery_t delivery = { self, env };
        sb_subscriptions_each_client(self->subscriptions, env->topic, deliver_event, &delivery);
        return true;
    }
    if (env->type == SB_ENVELOPE_MESSAGE) {
        uint64_t client = present_client(self, env->client);
        if (client)
            self->events->deliver_message(self->arg, client, env->from, env->text ? env->text : "");
        return true;
    }
    return false;
}

static void resubscribe(void *arg, const char *filter)
{
    send_filter(arg, SB_ENVELOPE_SUBSCRIBE, filter);
}

void sb_presence_resync(sb_presence_t *self)
{
    for (const char *address = zhashx_first(self->addresses); address;
         address = zhashx_next(self->addresses))
        send_client(self, SB_ENVELOPE_JOIN, (uint64_t) (uintptr_t) zhashx_cursor(self->addresses),
                    address);
    sb_subscriptions_each_filter(self->subscriptions, resubscribe, self);
}
