/* subscriptions.c — clients' topic filters at a gateway (see subscriptions.h). */
#include "subscriptions.h"

#include <czmq.h>

#include "id_map.h"
#include "topic.h"

struct sb_subscriptions {
    size_t max_per_client;
    zhashx_t *by_filter;      /* filter -> id map of clients (a set) */
    zhashx_t *by_client;      /* client -> zlistx of its filters */
};

static void client_set_free(void **item)
{
    zhashx_destroy((zhashx_t **) item);
}

static void filter_list_free(void **item)
{
    zlistx_destroy((zlistx_t **) item);
}

sb_subscriptions_t *sb_subscriptions_new(size_t max_per_client)
{
    sb_subscriptions_t *self = calloc(1, sizeof *self);
    self->max_per_client = max_per_client;
    self->by_filter = zhashx_new();
    zhashx_set_destructor(self->by_filter, client_set_free);
    self->by_client = sb_id_map_new();
    zhashx_set_destructor(self->by_client, filter_list_free);
    return self;
}

void sb_subscriptions_destroy(sb_subscriptions_t **self_p)
{
    sb_subscriptions_t *self = *self_p;
    if (!self)
        return;
    zhashx_destroy(&self->by_filter);
    zhashx_destroy(&self->by_client);
    free(self);
    *self_p = NULL;
}

static zlistx_t *filters_of(sb_subscriptions_t *self, uint64_t client, bool make)
{
    zlistx_t *filters = zhashx_lookup(self->by_client, sb_id_map_key(client));
    if (!filters && make) {
        filters = zlistx_new();
        zlistx_set_duplicator(filters, (zlistx_duplicator_fn *) strdup);
        zlistx_set_destructor(filters, (zlistx_destructor_fn *) zstr_free);
        zlistx_set_comparator(filters, (zlistx_comparator_fn *) strcmp);
        zhashx_insert(self->by_client, sb_id_map_key(client), filters);
    }
    return filters;
}

sb_subscribe_result_t sb_subscriptions_add(sb_subscriptions_t *self, uint64_t client,
                                           const char *filter)
{
    zlistx_t *filters = filters_of(self, client, true);
    if (zlistx_find(filters, (void *) filter))
        return SB_ALREADY_SUBSCRIBED;
    if (zlistx_size(filters) >= self->max_per_client)
        return SB_TOO_MANY_FILTERS;
    zlistx_add_end(filters, (void *) filter);
    zhashx_t *clients = zhashx_lookup(self->by_filter, filter);
    bool first = !clients;
    if (first) {
        clients = sb_id_map_new();
        zhashx_insert(self->by_filter, filter, clients);
    }
    zhashx_insert(clients, sb_id_map_key(client), (void *) "");
    return first ? SB_SUBSCRIBED_FIRST : SB_SUBSCRIBED;
}

sb_unsubscribe_result_t sb_subscriptions_remove(sb_subscriptions_t *self, uint64_t client,
                                                const char *filter)
{
    zlistx_t *filters = filters_of(self, client, false);
    void *handle = filters ? zlistx_find(filters, (void *) filter) : NULL;
    if (!handle)
        return SB_NOT_SUBSCRIBED;
    zlistx_delete(filters, handle);
    zhashx_t *clients = zhashx_lookup(self->by_filter, filter);
    zhashx_delete(clients, sb_id_map_key(client));
    if (zhashx_size(clients) > 0)
        return SB_UNSUBSCRIBED;
    zhashx_delete(self->by_filter, filter);
    return SB_UNSUBSCRIBED_LAST;
}

void sb_subscriptions_drop_client(sb_subscriptions_t *self, uint64_t client,
                                  void (*on_unused)(void *arg, const char *filter), void *arg)
{
    zlistx_t *filters = filters_of(self, client, false);
    if (!filters)
        return;
    const char *filter;
    while ((filter = zlistx_first(filters))) {
        char *kept = strdup(filter);
        if (sb_subscriptions_remove(self, client, kept) == SB_UNSUBSCRIBED_LAST)
            on_unused(arg, kept);
        free(kept);
    }
    zhashx_delete(self->by_client, sb_id_map_key(client));
}

void sb_subscriptions_each_client(sb_subscriptions_t *self, const char *topic,
                                  void (*fn)(void *arg, uint64_t client), void *arg)
{
    zhashx_t *seen = sb_id_map_new();   /* a client with two matching filters gets it once */
    zlistx_t *matching = zlistx_new();
    for (zhashx_t *clients = zhashx_first(self->by_filter); clients;
         clients = zhashx_next(self->by_filter))
        if (sb_topic_matches(zhashx_cursor(self->by_filter), topic))
            for (void *item = zhashx_first(clients); item; item = zhashx_next(clients)) {
                const void *key = zhashx_cursor(clients);
                if (zhashx_insert(seen, key, (void *) "") == 0)
                    zlistx_add_end(matching, (void *) key);
            }
    /* Delivered after the walk: a delivery may close a client and change the maps. */
    for (void *key = zlistx_first(matching); key; key = zlistx_next(matching))
        fn(arg, (uint64_t) (uintptr_t) key);
    zlistx_destroy(&matching);
    zhashx_destroy(&seen);
}

void sb_subscriptions_each_filter(sb_subscriptions_t *self,
                                  void (*fn)(void *arg, const char *filter), void *arg)
{
    for (void *item = zhashx_first(self->by_filter); item; item = zhashx_next(self->by_filter))
        fn(arg, zhashx_cursor(self->by_filter));
}
