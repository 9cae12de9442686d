/* guard.c — identities and delayed `auth` answers per client (see guard.h). */
#include "guard.h"

#include <czmq.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

#include "address.h"
#include "auth_delay.h"
#include "id_map.h"
#include "log.h"
#include "protocol.h"

/* Requests one client may have waiting behind a delayed answer. */
#define MAX_HELD 64
/* Addresses whose failures are remembered. */
#define MAX_ADDRESSES 1024

typedef struct {
    sb_reply_slot_t *slot;
    size_t argc;
    char **argv;
} held_t;

typedef struct {
    sb_guard_t *guard;
    uint64_t serial;
    char host[64];
    const sb_identity_t *identity;
    uv_timer_t timer;             /* the delayed answer */
    sb_reply_slot_t *delayed;     /* its slot, while the timer runs */
    /* An `auth` that came while its address was in a delay: tried when the
     * timer ends, the answer of a failure otherwise (both NULL). */
    char *deferred_name, *deferred_secret;
    bool quit;                    /* nothing it asked after `quit` runs */
    zlistx_t *held;               /* held_t, in arrival order */
} client_t;

struct sb_guard {
    uv_loop_t *loop;
    sb_access_t *access;
    sb_auth_delay_t *delays;
    zhashx_t *clients;            /* serial -> client_t */
    const sb_guard_events_t *events;
    void *arg;
    uint64_t failures;
};

static void held_free(held_t **held_p)
{
    held_t *held = *held_p;
    for (size_t i = 0; i < held->argc; i++)
        free(held->argv[i]);
    free(held->argv);
    free(held);
    *held_p = NULL;
}

static void secret_free(char *secret)
{
    if (secret)
        OPENSSL_cleanse(secret, strlen(secret));
    free(secret);
}

static void forget_deferred(client_t *client)
{
    secret_free(client->deferred_secret);
    free(client->deferred_name);
    client->deferred_name = client->deferred_secret = NULL;
}

static void client_free(uv_handle_t *handle)
{
    client_t *client = handle->data;
    forget_deferred(client);
    held_t *held;
    while ((held = zlistx_detach(client->held, NULL)))
        held_free(&held);
    zlistx_destroy(&client->held);
    free(client);
}

static void client_close(client_t *client)
{
    uv_close((uv_handle_t *) &client->timer, client_free);
}

sb_guard_t *sb_guard_new(uv_loop_t *loop, const sb_config_t *config,
                         const sb_guard_events_t *events, void *arg)
{
    sb_guard_t *self = calloc(1, sizeof *self);
    self->loop = loop;
    self->access = sb_access_new(config);
    self->delays = sb_auth_delay_new(MAX_ADDRESSES);
    self->clients = sb_id_map_new();
    self->events = events;
    self->arg = arg;
    return self;
}

void sb_guard_destroy(sb_guard_t **self_p)
{
    sb_guard_t *self = *self_p;
    if (!self)
        return;
    for (client_t *client = zhashx_first(self->clients); client; client = zhashx_next(self->clients))
        client_close(client);
    zhashx_destroy(&self->clients);
    sb_auth_delay_destroy(&self->delays);
    sb_access_destroy(&self->access);
    free(self);
    *self_p = NULL;
}

const sb_access_t *sb_guard_access(const sb_guard_t *self)
{
    return self->access;
}

void sb_guard_join(sb_guard_t *self, uint64_t serial, const char *address)
{
    client_t *client = calloc(1, sizeof *client);
    *client = (client_t) {
        .guard = self, .serial = serial, .identity = sb_access_anonymous(self->access),
        .held = zlistx_new(),
    };
    sb_address_host(address, client->host, sizeof client->host);
    uv_timer_init(self->loop, &client->timer);
    client->timer.data = client;
    client_t *previous = zhashx_lookup(self->clients, sb_id_map_key(serial));
    if (previous)
        client_close(previous);
    zhashx_update(self->clients, sb_id_map_key(serial), client);
}

void sb_guard_leave(sb_guard_t *self, uint64_t serial)
{
    client_t *client = zhashx_lookup(self->clients, sb_id_map_key(serial));
    if (!client)
        return;
    zhashx_delete(self->clients, sb_id_map_key(serial));
    client_close(client);
}

void sb_guard_set_identity(sb_guard_t *self, uint64_t serial, const sb_identity_t *identity)
{
    client_t *client = zhashx_lookup(self->clients, sb_id_map_key(serial));
    if (client && identity)
        client->identity = identity;
}

const sb_identity_t *sb_guard_identity(const sb_guard_t *self, uint64_t serial)
{
    client_t *client = zhashx_lookup(self->clients, sb_id_map_key(serial));
    return client ? client->identity : NULL;
}

bool sb_guard_holds(sb_guard_t *self, uint64_t serial, sb_reply_slot_t *slot, size_t argc,
                    char **argv)
{
    client_t *client = zhashx_lookup(self->clients, sb_id_map_key(serial));
    if (client && client->quit)
        return true;              /* it is leaving: its output is closed */
    if (!client || !client->delayed)
        return false;
    if (zlistx_size(client->held) >= MAX_HELD) {
        self->events->answer(self->arg, serial, slot, "ERR busy",
                             "too many requests behind a delayed auth answer");
        return true;
    }
    held_t *held = calloc(1, sizeof *held);
    *held = (held_t) { slot, argc, calloc(argc + 1, sizeof *held->argv) };
    for (size_t i = 0; i < argc; i++)
        held->argv[i] = strdup(argv[i]);
    zlistx_add_end(client->held, held);
    return true;
}

/* The delayed answer (or the deferred `auth`), then what waited behind
 * it, until another delay makes the rest wait again or the client quits. */
static void on_delay_over(uv_timer_t *timer)
{
    client_t *client = timer->data;
    sb_guard_t *self = client->guard;
    uint64_t serial = client->serial;
    sb_reply_slot_t *slot = client->delayed;
    client->delayed = NULL;
    if (client->deferred_name) {
        char *name = client->deferred_name, *secret = client->deferred_secret;
        client->deferred_name = client->deferred_secret = NULL;
        sb_guard_auth(self, serial, slot, name, secret);   /* it may defer again */
        secret_free(secret);
        free(name);
    }
    else
        self->events->answer(self->arg, serial, slot, "ERR unauthorized",
                             "unknown token or wrong secret");
    while ((client = zhashx_lookup(self->clients, sb_id_map_key(serial)))
           && !client->delayed && !client->quit) {
        held_t *held = zlistx_detach(client->held, NULL);
        if (!held)
            break;
        self->events->run(self->arg, serial, held->slot, held->argc, held->argv);
        held_free(&held);
    }
}

static uint32_t record_failure(sb_guard_t *self, const char *host)
{
    self->failures++;
    return sb_auth_delay_failed(self->delays, host, (int64_t) uv_now(self->loop));
}

static uint32_t delay_remaining(const sb_guard_t *self, const char *host)
{
    return sb_auth_delay_remaining(self->delays, host, (int64_t) uv_now(self->loop));
}

/* While the address is in a delay the attempt is not tried at all, so
 * neither a quick OK nor anything else tells a guess from another
 * connection apart; it waits, in order, as a failure's answer does. */
static void defer(client_t *client, sb_reply_slot_t *slot, const char *name, const char *secret,
                  uint32_t remaining)
{
    client->deferred_name = strdup(name);
    client->deferred_secret = strdup(secret);
    client->delayed = slot;
    sb_log_info("auth waits, its address is in a delay", "address=%s wait_ms=%u", client->host,
                remaining);
    uv_timer_start(&client->timer, on_delay_over, remaining, 0);
}

void sb_guard_auth(sb_guard_t *self, uint64_t serial, sb_reply_slot_t *slot, const char *name,
                   const char *secret)
{
    client_t *client = zhashx_lookup(self->clients, sb_id_map_key(serial));
    uint32_t remaining = client ? delay_remaining(self, client->host) : 0;
    if (remaining > 0) {
        defer(client, slot, name, secret, remaining);
        return;
    }
    const sb_identity_t *identity = sb_access_authenticate(self->access, name, secret);
    if (client && identity) {
        client->identity = identity;
        sb_log_info("client authenticated", "token=%s address=%s", name, client->host);
        self->events->answer(self->arg, serial, slot, "OK", "");
        return;
    }
    uint32_t delay = client ? record_failure(self, client->host) : 0;
    sb_log_warn("auth refused", "token=%s address=%s delay_ms=%u",
                sb_token_name_is_valid(name, strlen(name)) ? name : "(not-a-name)",
                client ? client->host : "?", delay);
    if (!client || delay == 0) {
        self->events->answer(self->arg, serial, slot, "ERR unauthorized",
                             "unknown token or wrong secret");
        return;
    }
    client->delayed = slot;
    uv_timer_start(&client->timer, on_delay_over, delay, 0);
}

void sb_guard_quit(sb_guard_t *self, uint64_t serial)
{
    client_t *client = zhashx_lookup(self->clients, sb_id_map_key(serial));
    if (client)
        client->quit = true;
}

uint64_t sb_guard_failures(const sb_guard_t *self)
{
    return self->failures;
}

const sb_identity_t *sb_guard_authenticate_now(sb_guard_t *self, const char *address,
                                               const char *pair, bool *waiting)
{
    char host[64];
    sb_address_host(address, host, sizeof host);
    *waiting = delay_remaining(self, host) > 0;
    if (*waiting) {
        sb_log_warn("bearer token not tried, its address is in a delay", "address=%s", host);
        return NULL;
    }
    const sb_identity_t *identity = sb_access_authenticate_pair(self->access, pair);
    if (identity)
        return identity;
    uint32_t delay = record_failure(self, host);
    sb_log_warn("bearer token refused", "address=%s delay_ms=%u", host, delay);
    return NULL;
}
