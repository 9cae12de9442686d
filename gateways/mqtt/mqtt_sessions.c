/* mqtt_sessions.c — MQTT sessions as clients of the hub: requests run as
 * the session (through the router's reply slots), wills, the end of a
 * session and its expiry, and the persistent ones written to and read
 * back from the store (mqtt_store.c). */
#include "mqtt_internal.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "access.h"
#include "cmdline.h"
#include "id_map.h"
#include "log.h"
#include "mqtt_relay.h"
#include "reply_queue.h"

/* ---------------------------------------------------------------- sessions */

void mqtt_add_slot_request(sb_mqtt_session_t *session, slot_t *request, sb_reply_slot_t **slot)
{
    *slot = sb_reply_queue_open(&session->slots, false, NULL, request);
}

slot_t *mqtt_slot_new(slot_kind_t kind, size_t extra)
{
    slot_t *slot = calloc(1, sizeof *slot + extra + 1);
    slot->kind = kind;
    return slot;
}

/* Runs a hub command as the session (argv[0] is the command). */
static void run_as(sb_mqtt_gateway_t *self, sb_mqtt_session_t *session, slot_t *request,
                   size_t argc, char **argv)
{
    sb_reply_slot_t *slot;
    mqtt_add_slot_request(session, request, &slot);
    sb_router_handle_command(self->base.router, session, slot, argc, argv);
}

/* `sub`/`unsub` FILTER as the session: the status the router answered at
 * once; a refusal is always at once, while the OK of `sub` waits for the
 * retained values ("pending": the subscription is in place). */
const char *mqtt_filter_command(sb_mqtt_gateway_t *self, sb_mqtt_session_t *session,
                                  const char *command, const char *filter)
{
    snprintf(self->captured, sizeof self->captured, "pending");
    char *argv[] = { (char *) command, (char *) filter, NULL };
    run_as(self, session, mqtt_slot_new(SLOT_CAPTURE, 0), 2, argv);
    return self->captured;
}

/* Publishes on the hub as the session (a will, a PUBLISH): `mqtt` is the
 * relayed v5 properties (mqtt_relay.h), `expiry_s` their Message Expiry. */
void mqtt_publish_as(sb_mqtt_gateway_t *self, sb_mqtt_session_t *session, slot_t *request,
                       const char *topic, const char *payload, bool retain, uint8_t qos,
                       const char *mqtt, uint32_t expiry_s)
{
    sb_reply_slot_t *slot;
    mqtt_add_slot_request(session, request, &slot);
    sb_router_publish(self->base.router, session, slot, topic, payload, retain, qos, mqtt,
                      expiry_s);
}

void mqtt_publish_will(sb_mqtt_gateway_t *self, sb_mqtt_session_t *session)
{
    sb_mqtt_message_t *will = sb_mqtt_session_take_will(session);
    if (!will)
        return;
    self->counters.wills++;
    char quoted[SB_LOG_QUOTE_MAX];   /* a topic may hold spaces */
    sb_log_info("mqtt will published", "client=%s topic=%s", session->client_id,
                sb_log_quote(quoted, will->topic));
    /* Its Message Expiry counts from now, as the publication's (v5 §3.1.3.2.4). */
    sb_mqtt_packet_t *relayed = will->relayed ? sb_mqtt_relay_decode(will->relayed) : NULL;
    uint32_t expiry_s = relayed ? sb_mqtt_relay_expiry(&relayed->u.publish.properties) : 0;
    if (strlen(will->payload) == will->length)
        mqtt_publish_as(self, session, mqtt_slot_new(SLOT_IGNORE, 0), will->topic, will->payload,
                   will->retain, will->qos, will->relayed, expiry_s);
    sb_mqtt_packet_destroy(&relayed);
    sb_mqtt_message_destroy(&will);
}


void mqtt_end_session(sb_mqtt_gateway_t *self, sb_mqtt_session_t *session)
{
    if (self->store)
        sb_mqtt_store_forget(self->store, session->client_id);
    sb_router_client_left(self->base.router, session->serial);
    mqtt_leave_shares(self, session);
    if (zhashx_lookup(self->sessions_by_id, session->client_id) == session)
        zhashx_delete(self->sessions_by_id, session->client_id);
    if (session->members)
        zhashx_delete(self->shares, session->client_id);
    zhashx_delete(self->sessions, sb_id_map_key(session->serial));   /* destroys it */
}

/* The connection of a session has gone (or been taken over): the will is
 * due now, or after its delay unless the client is back by then; the
 * session ends now, or after its expiry interval. */
void mqtt_session_left(sb_mqtt_gateway_t *self, sb_mqtt_session_t *session)
{
    session->link = NULL;
    session->dirty = true;
    int64_t now = zclock_mono();
    if (session->will) {
        if (session->will_delay_s == 0 || session->expiry_s == 0)
            mqtt_publish_will(self, session);
        else
            session->will_at_ms = now + 1000LL * (session->will_delay_s < session->expiry_s
                                                      ? session->will_delay_s : session->expiry_s);
    }
    if (session->expiry_s == 0)
        mqtt_end_session(self, session);
    else
        session->expires_at_ms = now + 1000LL * session->expiry_s;
}

/* Writes the sessions that changed (all of them when `all`), in one batch:
 * a persistent one is saved, one that no longer is forgotten. */
void mqtt_save_sessions(sb_mqtt_gateway_t *self, bool all)
{
    int64_t now = zclock_mono(), wall = zclock_time();
    bool begun = false;
    for (sb_mqtt_session_t *session = zhashx_first(self->sessions); session;
         session = zhashx_next(self->sessions)) {
        if (!session->dirty && !all)
            continue;
        if (!begun)
            sb_mqtt_store_begin(self->store);
        begun = true;
        int64_t left = session->link || !session->expires_at_ms ? 1000LL * session->expiry_s
                       : session->expires_at_ms > now ? session->expires_at_ms - now : 0;
        if (session->expiry_s)
            sb_mqtt_store_save(self->store, session, session->token, left, wall);
        else
            sb_mqtt_store_forget(self->store, session->client_id);
        session->dirty = false;
    }
    if (begun)
        sb_mqtt_store_commit(self->store);
}

void mqtt_on_sweep(uv_timer_t *timer)
{
    sb_mqtt_gateway_t *self = timer->data;
    if (self->store && ++self->sweeps % SAVE_EVERY_SWEEPS == 0)
        mqtt_save_sessions(self, false);
    int64_t now = zclock_mono();
    /* Serials, looked up again one by one: ending a session can end a
     * shared group's session too (its last member gone), and that one may
     * come later in the list. */
    zlistx_t *all = zhashx_keys(self->sessions);
    zlistx_set_destructor(all, NULL);
    for (void *serial = zlistx_first(all); serial; serial = zlistx_next(all)) {
        sb_mqtt_session_t *session = zhashx_lookup(self->sessions, serial);
        if (!session)
            continue;
        if (session->will_at_ms && now >= session->will_at_ms)
            mqtt_publish_will(self, session);
        if (!session->link && session->expires_at_ms && now >= session->expires_at_ms) {
            sb_log_info("mqtt session expired", "client=%s", session->client_id);
            mqtt_publish_will(self, session);
            mqtt_end_session(self, session);
        }
    }
    zlistx_destroy(&all);
}

/* The address the hub shows in `client ID`: the peer, then the MQTT
 * client id (spaces and colons would confuse the reply's words). */
void mqtt_hub_address(const char *peer, const char *client_id, char *buffer, size_t size)
{
    int used = snprintf(buffer, size, "%s mqtt_id=", peer);
    for (const char *c = client_id; *c && used > 0 && (size_t) used + 1 < size; c++)
        buffer[used++] = (*c > ' ' && *c < 0x7f && *c != ':') ? *c : '_';
    buffer[used < 0 ? 0 : (size_t) used < size ? used : (int) size - 1] = '\0';
}


/* A session from the store: the hub's client again (a new mqtt-N), with
 * its token's rules and its subscriptions; one whose time is up is dropped. */
static void restore_session(void *arg, sb_mqtt_session_t *session, const char *token,
                            int64_t expires_in_ms, int64_t saved_at_ms)
{
    sb_mqtt_gateway_t *self = arg;
    int64_t left = expires_in_ms - (zclock_time() - saved_at_ms);
    if (left <= 0 || zhashx_size(self->sessions) >= self->settings.max_sessions
        || zhashx_lookup(self->sessions_by_id, session->client_id)) {
        session->dirty = false;
        zlistx_add_end(self->expired, strdup(session->client_id));
        sb_mqtt_session_destroy(&session);
        return;
    }
    session->serial = sb_gateway_base_next_serial(&self->base);
    session->owner = self;
    session->restored = true;
    session->token = token ? strdup(token) : NULL;
    session->expires_at_ms = zclock_mono() + left;
    if (session->will)
        session->will_at_ms = zclock_mono() + (1000LL * session->will_delay_s < left
                                                   ? 1000LL * session->will_delay_s : left);
    zhashx_insert(self->sessions, sb_id_map_key(session->serial), session);
    zhashx_insert(self->sessions_by_id, session->client_id, session);
    char address[200];
    mqtt_hub_address("restored", session->client_id, address, sizeof address);
    sb_router_client_joined(self->base.router, session->serial, address);
    const sb_access_t *access = sb_router_access(self->base.router);
    if (sb_access_enabled(access)) {
        const sb_identity_t *identity = token ? sb_access_token(access, token) : NULL;
        sb_router_client_authenticated(self->base.router, session->serial,
                                       identity ? identity : sb_access_anonymous(access));
    }
    zlistx_t *refused = zlistx_new();
    for (sb_mqtt_filter_t *f = zlistx_first(session->filters); f; f = zlistx_next(session->filters))
        if (mqtt_is_share(f->filter) ? mqtt_join_share(self, session, f->filter) != 0
            : !mqtt_is_own_filter(f->filter) && mqtt_hub_subscribe(self, session, f->filter) != 0)
            zlistx_add_end(refused, f->filter);
    for (char *filter = zlistx_first(refused); filter; filter = zlistx_next(refused))
        sb_mqtt_session_unsubscribe(session, filter);   /* the rules changed meanwhile */
    zlistx_destroy(&refused);
    session->dirty = false;
}

bool mqtt_open_store(sb_mqtt_gateway_t *self)
{
    char error[512];
    self->store = sb_mqtt_store_open(self->settings.session_store, error, sizeof error);
    if (!self->store) {
        sb_log_error("cannot open the mqtt session store", "error=\"%s\"", error);
        return false;
    }
    self->expired = zlistx_new();
    zlistx_set_destructor(self->expired, NULL);
    size_t count = sb_mqtt_store_load(self->store, self->settings.max_queued, restore_session, self);
    sb_mqtt_store_begin(self->store);
    for (char *id = zlistx_first(self->expired); id; id = zlistx_next(self->expired)) {
        sb_mqtt_store_forget(self->store, id);
        free(id);
    }
    sb_mqtt_store_commit(self->store);
    sb_log_info("mqtt session store opened", "path=%s sessions=%zu expired=%zu",
                self->settings.session_store, count - zlistx_size(self->expired),
                zlistx_size(self->expired));
    zlistx_destroy(&self->expired);
    return true;
}
