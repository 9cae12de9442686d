/* directory.c — gateways, their clients and subscriptions (see directory.h). */
#include "directory.h"

#include <stdlib.h>
#include <string.h>

#include "envelope_io.h"
#include "topic.h"

struct sb_gateway_entry {
    char key[64];             /* routing id as hex */
    zframe_t *routing_id;
    zhashx_t *filters;        /* filter -> itself (a set) */
    int64_t expires_ms;
    bool forgotten;           /* silent: its clients are forgotten, its filters kept */
};

/* A forgotten gateway's filters are kept this many liveness periods. */
#define FORGOTTEN_PERIODS 10

typedef struct {
    char *id;
    char *address;
    int64_t since;
    sb_gateway_entry_t *gateway;
} client_t;

struct sb_directory {
    long liveness_ms;
    zhashx_t *gateways;       /* key -> sb_gateway_entry_t */
    zhashx_t *clients;        /* id -> client_t */
};

static void gateway_free(void **item)
{
    sb_gateway_entry_t *gateway = *item;
    zframe_destroy(&gateway->routing_id);
    zhashx_destroy(&gateway->filters);
    free(gateway);
    *item = NULL;
}

static void client_free(void **item)
{
    client_t *client = *item;
    free(client->id);
    free(client->address);
    free(client);
    *item = NULL;
}

sb_directory_t *sb_directory_new(long liveness_ms)
{
    sb_directory_t *self = calloc(1, sizeof *self);
    self->liveness_ms = liveness_ms;
    self->gateways = zhashx_new();
    zhashx_set_destructor(self->gateways, gateway_free);
    self->clients = zhashx_new();
    zhashx_set_destructor(self->clients, client_free);
    return self;
}

void sb_directory_destroy(sb_directory_t **self_p)
{
    sb_directory_t *self = *self_p;
    if (!self)
        return;
    zhashx_destroy(&self->clients);
    zhashx_destroy(&self->gateways);
    free(self);
    *self_p = NULL;
}

sb_gateway_entry_t *sb_directory_touch(sb_directory_t *self, zframe_t *routing_id,
                                       sb_gateway_state_t *state)
{
    char key[64];
    sb_routing_id_text(routing_id, key, sizeof key);
    sb_gateway_entry_t *gateway = zhashx_lookup(self->gateways, key);
    *state = !gateway ? SB_GATEWAY_NEW : gateway->forgotten ? SB_GATEWAY_FORGOTTEN : SB_GATEWAY_KNOWN;
    if (gateway)
        gateway->forgotten = false;
    else {
        gateway = calloc(1, sizeof *gateway);
        snprintf(gateway->key, sizeof gateway->key, "%s", key);
        gateway->routing_id = zframe_dup(routing_id);
        gateway->filters = zhashx_new();   /* values are the keys: nothing to free */
        zhashx_insert(self->gateways, key, gateway);
    }
    gateway->expires_ms = zclock_mono() + self->liveness_ms;
    return gateway;
}

void sb_directory_subscribe(sb_directory_t *self, sb_gateway_entry_t *gateway, const char *filter)
{
    (void) self;
    zhashx_update(gateway->filters, filter, (void *) "");
}

void sb_directory_unsubscribe(sb_directory_t *self, sb_gateway_entry_t *gateway,
                              const char *filter)
{
    (void) self;
    zhashx_delete(gateway->filters, filter);
}

bool sb_directory_join(sb_directory_t *self, sb_gateway_entry_t *gateway, const char *client,
                       const char *address)
{
    client_t *known = zhashx_lookup(self->clients, client);
    if (known && known->gateway == gateway)
        return false;   /* a resync repeats what the broker knows */
    if (known) {
        /* Ids are unique per gateway name: another gateway claiming one is
         * that gateway restarted, and its old self is gone. */
        known->gateway = gateway;
        free(known->address);
        known->address = strdup(address ? address : "");
        known->since = zclock_time();
        return true;
    }
    client_t *entry = calloc(1, sizeof *entry);
    entry->id = strdup(client);
    entry->address = strdup(address ? address : "");
    entry->since = zclock_time();
    entry->gateway = gateway;
    zhashx_insert(self->clients, client, entry);
    return true;
}

bool sb_directory_leave(sb_directory_t *self, sb_gateway_entry_t *gateway, const char *client)
{
    client_t *known = zhashx_lookup(self->clients, client);
    if (!known || known->gateway != gateway)
        return false;
    zhashx_delete(self->clients, client);
    return true;
}

bool sb_directory_client(const sb_directory_t *self, const char *client, sb_client_info_t *out)
{
    client_t *known = zhashx_lookup(self->clients, client);
    if (!known)
        return false;
    *out = (sb_client_info_t) { known->id, known->address, known->since,
                                known->gateway->routing_id };
    return true;
}

static int compare_ids(const void *a, const void *b)
{
    return strcmp(a, b);
}

char *sb_directory_client_list(const sb_directory_t *self)
{
    zlistx_t *ids = zhashx_keys(self->clients);
    zlistx_set_comparator(ids, (zlistx_comparator_fn *) compare_ids);
    zlistx_sort(ids);
    size_t length = 1;
    for (const char *id = zlistx_first(ids); id; id = zlistx_next(ids))
        length += strlen(id) + 1;
    char *list = malloc(length), *out = list;
    *out = '\0';
    for (const char *id = zlistx_first(ids); id; id = zlistx_next(ids))
        out += sprintf(out, "%s%s", out == list ? "" : " ", id);
    zlistx_destroy(&ids);
    return list;
}

static bool wants(const sb_gateway_entry_t *gateway, const char *topic)
{
    for (void *item = zhashx_first(gateway->filters); item; item = zhashx_next(gateway->filters))
        if (sb_topic_matches(zhashx_cursor(gateway->filters), topic))
            return true;
    return false;
}

void sb_directory_each_subscriber(sb_directory_t *self, const char *topic,
                                  void (*fn)(void *arg, zframe_t *gateway), void *arg)
{
    for (sb_gateway_entry_t *gateway = zhashx_first(self->gateways); gateway;
         gateway = zhashx_next(self->gateways))
        if (wants(gateway, topic))
            fn(arg, gateway->routing_id);
}

/* Its clients go (`clients` stays true); its filters stay a while, so
 * events still reach a gateway that was only slow until it resyncs. */
static void forget(sb_directory_t *self, sb_gateway_entry_t *gateway,
                   void (*on_left)(void *arg, const char *client), void *arg)
{
    zlistx_t *ids = zhashx_keys(self->clients);
        for (const char *id = zlistx_first(ids); id; id = zlistx_next(ids)) {
            client_t *client = zhashx_lookup(self->clients, id);
            if (client->gateway == gateway) {
                on_left(arg, id);
                zhashx_delete(self->clients, id);
            }
        }
    zlistx_destroy(&ids);
    gateway->forgotten = true;
    gateway->expires_ms = zclock_mono() + self->liveness_ms * FORGOTTEN_PERIODS;
}

size_t sb_directory_expire(sb_directory_t *self, void (*on_left)(void *arg, const char *client),
                           void *arg)
{
    int64_t now = zclock_mono();
    zlistx_t *keys = zhashx_keys(self->gateways);
    size_t gone = 0;
    for (const char *key = zlistx_first(keys); key; key = zlistx_next(keys)) {
        sb_gateway_entry_t *gateway = zhashx_lookup(self->gateways, key);
        if (now < gateway->expires_ms)
            continue;
        if (gateway->forgotten)
            zhashx_delete(self->gateways, key);
        else {
            forget(self, gateway, on_left, arg);
            gone++;
        }
    }
    zlistx_destroy(&keys);
    return gone;
}

void sb_directory_gateway_gone(sb_directory_t *self, zframe_t *routing_id)
{
    char key[64];
    sb_routing_id_text(routing_id, key, sizeof key);
    sb_gateway_entry_t *gateway = zhashx_lookup(self->gateways, key);
    if (gateway && gateway->forgotten)
        zhashx_delete(self->gateways, key);
}

size_t sb_directory_gateway_count(const sb_directory_t *self)
{
    size_t count = 0;
    for (sb_gateway_entry_t *gateway = zhashx_first(self->gateways); gateway;
         gateway = zhashx_next(self->gateways))
        count += !gateway->forgotten;
    return count;
}

size_t sb_directory_client_count(const sb_directory_t *self)
{
    return zhashx_size(self->clients);
}

void sb_directory_extend(sb_directory_t *self)
{
    int64_t expires = zclock_mono() + self->liveness_ms;
    for (sb_gateway_entry_t *gateway = zhashx_first(self->gateways); gateway;
         gateway = zhashx_next(self->gateways))
        if (!gateway->forgotten)
            gateway->expires_ms = expires;
}
