/* mqtt_connect.c — a CONNECT: its credentials (tokens), the session it
 * gets (new, resumed, or taken over from another connection), its will,
 * keep alive and limits, and the CONNACK. */
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

/* ---------------------------------------------------------------- CONNECT */

void mqtt_refuse_connect(link_t *link, sb_mqtt_version_t version, uint8_t reason,
                           const char *detail)
{
    sb_mqtt_packet_t packet = { .type = SB_MQTT_CONNACK };
    packet.u.connack.reason = reason;
    sb_mqtt_version_t previous = link->version;
    link->version = version;
    mqtt_send_packet(link, &packet);
    link->version = previous;
    link->gateway->counters.refused++;
    sb_log_info("mqtt connect refused", "address=%s reason=0x%02x detail=\"%s\"", link->peer, reason,
                detail);
    sb_mqtt_client_end(link->client);
}

/* The identity of the CONNECT's username and password: 0, or the CONNACK
 * reason of a refusal (wrong credentials, or the address still in its
 * delay after failed ones, whatever it sent this time). Without access
 * rules, credentials are not asked for. */
static uint8_t authenticate(link_t *link, const sb_mqtt_connect_t *connect,
                            const sb_identity_t **identity)
{
    const sb_access_t *access = sb_router_access(link->gateway->base.router);
    *identity = NULL;
    if (!sb_access_enabled(access))
        return 0;
    if (!connect->has_username) {
        *identity = sb_access_anonymous(access);
        return 0;
    }
    const sb_mqtt_str_t *password = &connect->password;
    if (!connect->has_password || strlen(password->data) != password->length)
        return SB_MQTT_RC_BAD_USER_NAME_OR_PASSWORD;
    size_t size = connect->username.length + password->length + 2;
    char *pair = malloc(size);
    snprintf(pair, size, "%s:%s", connect->username.data, password->data);
    bool waiting = false;
    *identity = sb_router_authenticate_now(link->gateway->base.router, link->peer, pair, &waiting);
    memset(pair, 0, size);   /* the secret does not linger in freed memory */
    free(pair);
    return *identity ? 0 : waiting ? SB_MQTT_RC_CONNECTION_RATE_EXCEEDED
                                   : SB_MQTT_RC_BAD_USER_NAME_OR_PASSWORD;
}

/* A client id the hub can put into topics ($switchboard/msg/ID/...) and
 * its words: not too long, no wildcard or level separator, not a $-topic. */
static bool client_id_valid(const sb_mqtt_str_t *id)
{
    if (id->length == 0)
        return true;   /* the server assigns one */
    return id->length <= MAX_CLIENT_ID && strlen(id->data) == id->length
           && !strpbrk(id->data, "+#/") && id->data[0] != '$';
}

/* A session belongs to the token that made it: another identity (another
 * token, or none) may not take it, its queue or its subscriptions over. */
static bool may_take(const sb_mqtt_session_t *session, const sb_identity_t *identity)
{
    const char *token = identity ? sb_identity_token(identity) : NULL;
    if (!session->token || !token)
        return !session->token && !token;
    return strcmp(session->token, token) == 0;
}

/* When every slot is taken, the session away the longest makes room (a
 * client cycling ids must not lock the others out until they expire). */
static bool evict_oldest_away(sb_mqtt_gateway_t *self)
{
    sb_mqtt_session_t *oldest = NULL;
    int64_t oldest_left = 0;
    for (sb_mqtt_session_t *session = zhashx_first(self->sessions); session;
         session = zhashx_next(self->sessions)) {
        if (session->link || session->members || !session->expires_at_ms)
            continue;
        /* Within one millisecond, the older session (the lower serial) goes. */
        int64_t left_at = session->expires_at_ms - 1000LL * session->expiry_s;
        if (!oldest || left_at < oldest_left
            || (left_at == oldest_left && session->serial < oldest->serial)) {
            oldest = session;
            oldest_left = left_at;
        }
    }
    if (!oldest)
        return false;
    self->counters.evicted++;
    sb_log_info("mqtt session evicted", "client=%s reason=\"max-sessions reached\" away_ms=%" PRId64,
                oldest->client_id, zclock_mono() - oldest_left);
    mqtt_publish_will(self, oldest);
    mqtt_end_session(self, oldest);
    return true;
}

/* v5 Session Expiry, capped; 3.1.1: none with Clean Session, else the cap. */
static uint32_t session_expiry(const sb_mqtt_gateway_t *self, const sb_mqtt_connect_t *connect,
                               bool *capped)
{
    uint32_t wanted = connect->version != SB_MQTT_V5 ? (connect->clean_start ? 0 : UINT32_MAX)
                      : sb_mqtt_has(&connect->properties, SB_MQTT_PROP_SESSION_EXPIRY_INTERVAL)
                          ? connect->properties.session_expiry_interval : 0;
    *capped = wanted > self->settings.max_session_expiry_s;
    return *capped ? self->settings.max_session_expiry_s : wanted;
}

/* The session for the CONNECT: the one with its client id (taken over from
 * another connection, or resumed), or a new one; NULL when none may be made. */
static sb_mqtt_session_t *session_for(sb_mqtt_gateway_t *self, link_t *link,
                                      const sb_mqtt_connect_t *connect, const char *client_id,
                                      bool *present)
{
    sb_mqtt_session_t *session = zhashx_lookup(self->sessions_by_id, client_id);
    *present = false;
    if (session && session->link) {
        link_t *old = session->link;
        self->counters.takeovers++;
        sb_log_info("mqtt session taken over", "client=%s old_address=%s new_address=%s", client_id,
                    old->peer, link->peer);
        mqtt_close_with(old, SB_MQTT_RC_SESSION_TAKEN_OVER, NULL);
        old->session = NULL;   /* its close no longer concerns the session */
        self->connected--;
        /* A will with a delay is not sent when the session goes on at once. */
        if (session->will && (session->will_delay_s == 0 || connect->clean_start))
            mqtt_publish_will(self, session);
        session->link = NULL;
    }
    if (session && connect->clean_start) {
        mqtt_publish_will(self, session);
        mqtt_end_session(self, session);
        session = NULL;
    }
    if (session) {
        *present = true;
        session->will_at_ms = session->expires_at_ms = 0;
        return session;
    }
    if (zhashx_size(self->sessions) >= self->settings.max_sessions && !evict_oldest_away(self))
        return NULL;
    session = sb_mqtt_session_new(client_id, sb_gateway_base_next_serial(&self->base),
                                  self->settings.max_queued);
    session->owner = self;
    zhashx_insert(self->sessions, sb_id_map_key(session->serial), session);
    zhashx_insert(self->sessions_by_id, client_id, session);
    char address[200];
    mqtt_hub_address(link->peer, client_id, address, sizeof address);
    sb_router_client_joined(self->base.router, session->serial, address);
    return session;
}

static void set_will(sb_mqtt_session_t *session, const sb_mqtt_connect_t *connect)
{
    if (!connect->will) {
        sb_mqtt_session_set_will(session, NULL, 0);
        return;
    }
    sb_mqtt_message_t *will = sb_mqtt_message_new(connect->will_topic.data, connect->will_payload.data,
                                                  connect->will_payload.length, connect->will_qos,
                                                  connect->will_retain);
    if (connect->version == SB_MQTT_V5)
        will->relayed = sb_mqtt_relay_encode(&connect->will_properties);
    uint32_t delay = sb_mqtt_has(&connect->will_properties, SB_MQTT_PROP_WILL_DELAY_INTERVAL)
                         ? connect->will_properties.will_delay_interval : 0;
    sb_mqtt_session_set_will(session, will, delay);
}

static void send_connack(link_t *link, const sb_mqtt_connect_t *connect, bool present,
                         bool assigned, uint32_t expiry, bool expiry_capped, uint16_t keep_alive)
{
    const sb_mqtt_gateway_settings_t *settings = &link->gateway->settings;
    sb_mqtt_packet_t packet = { .type = SB_MQTT_CONNACK };
    sb_mqtt_connack_t *connack = &packet.u.connack;
    sb_mqtt_properties_t *p = &connack->properties;
    connack->session_present = present;
    p->receive_maximum = settings->receive_maximum;
    sb_mqtt_mark(p, SB_MQTT_PROP_RECEIVE_MAXIMUM);
    p->maximum_packet_size = (uint32_t) settings->max_packet;
    sb_mqtt_mark(p, SB_MQTT_PROP_MAXIMUM_PACKET_SIZE);
    p->topic_alias_maximum = TOPIC_ALIASES;
    sb_mqtt_mark(p, SB_MQTT_PROP_TOPIC_ALIAS_MAXIMUM);
    if (assigned) {
        p->assigned_client_identifier = sb_mqtt_str(link->session->client_id);
        sb_mqtt_mark(p, SB_MQTT_PROP_ASSIGNED_CLIENT_IDENTIFIER);
    }
    if (expiry_capped) {
        p->session_expiry_interval = expiry;
        sb_mqtt_mark(p, SB_MQTT_PROP_SESSION_EXPIRY_INTERVAL);
    }
    if (keep_alive != connect->keep_alive) {
        p->server_keep_alive = keep_alive;
        sb_mqtt_mark(p, SB_MQTT_PROP_SERVER_KEEP_ALIVE);
    }
    mqtt_send_packet(link, &packet);
}

void mqtt_on_connect(link_t *link, const sb_mqtt_connect_t *connect)
{
    sb_mqtt_gateway_t *self = link->gateway;
    const sb_identity_t *identity = NULL;
    if (connect->version == SB_MQTT_V5
        && sb_mqtt_has(&connect->properties, SB_MQTT_PROP_AUTHENTICATION_METHOD)) {
        mqtt_refuse_connect(link, connect->version, SB_MQTT_RC_BAD_AUTHENTICATION_METHOD,
                       "no enhanced authentication; use username and password");
        return;
    }
    if (self->connected >= self->settings.max_connections) {
        mqtt_refuse_connect(link, connect->version, SB_MQTT_RC_SERVER_UNAVAILABLE,
                       "too many connections");
        return;
    }
    uint8_t refused = authenticate(link, connect, &identity);
    if (refused) {
        mqtt_refuse_connect(link, connect->version, refused,
                            refused == SB_MQTT_RC_CONNECTION_RATE_EXCEEDED
                                ? "too many failed logins from this address; try again later"
                                : "bad user name or password");
        return;
    }
    if (!client_id_valid(&connect->client_id)) {
        mqtt_refuse_connect(link, connect->version, SB_MQTT_RC_CLIENT_IDENTIFIER_NOT_VALID,
                            "client id over 256 bytes, or with + # / or a leading $");
        return;
    }
    const sb_mqtt_session_t *existing = connect->client_id.length
        ? zhashx_lookup(self->sessions_by_id, connect->client_id.data) : NULL;
    if (existing && !may_take(existing, identity)) {
        mqtt_refuse_connect(link, connect->version, SB_MQTT_RC_NOT_AUTHORIZED,
                            "the session of this client id belongs to another token");
        return;
    }
    char assigned_id[48];
    bool assigned = connect->client_id.length == 0;
    if (assigned)
        snprintf(assigned_id, sizeof assigned_id, "auto-%" PRIu64 "-%08x",
                 sb_mqtt_client_serial(link->client), (unsigned) randof(0x7fffffff));
    bool present;
    sb_mqtt_session_t *session = session_for(self, link, connect,
                                             assigned ? assigned_id : connect->client_id.data,
                                             &present);
    if (!session) {
        mqtt_refuse_connect(link, connect->version, SB_MQTT_RC_QUOTA_EXCEEDED, "too many sessions");
        return;
    }
    link->version = connect->version;
    link->session = session;
    session->link = link;
    self->connected++;
    self->counters.accepted++;
    if (identity)
        sb_router_client_authenticated(self->base.router, session->serial, identity);
    free(session->token);
    session->token = identity && sb_identity_token(identity) ? strdup(sb_identity_token(identity))
                                                             : NULL;
    session->restored = false;
    session->dirty = true;
    set_will(session, connect);
    bool capped;
    session->expiry_s = session_expiry(self, connect, &capped);
    link->expiry_was_zero = session->expiry_s == 0;
    uint16_t keep_alive = connect->keep_alive;
    if (connect->version == SB_MQTT_V5 && self->settings.max_keep_alive_s
        && (keep_alive == 0 || keep_alive > self->settings.max_keep_alive_s))
        keep_alive = self->settings.max_keep_alive_s;
    sb_mqtt_client_keep_alive(link->client, keep_alive);
    link->window = connect->version != SB_MQTT_V5 ? self->settings.receive_maximum
                   : sb_mqtt_has(&connect->properties, SB_MQTT_PROP_RECEIVE_MAXIMUM)
                       ? connect->properties.receive_maximum : 65535;
    if (connect->version == SB_MQTT_V5
        && sb_mqtt_has(&connect->properties, SB_MQTT_PROP_MAXIMUM_PACKET_SIZE))
        link->max_packet_out = connect->properties.maximum_packet_size;
    if (connect->version == SB_MQTT_V5
        && sb_mqtt_has(&connect->properties, SB_MQTT_PROP_TOPIC_ALIAS_MAXIMUM))
        link->out_alias_max = connect->properties.topic_alias_maximum < TOPIC_ALIASES
                                  ? connect->properties.topic_alias_maximum : TOPIC_ALIASES;
    send_connack(link, connect, present, assigned, session->expiry_s,
                 capped && connect->version == SB_MQTT_V5, keep_alive);
    char id[64];
    sb_router_client_id(self->base.router, session->serial, id, sizeof id);
    sb_log_info("mqtt client connected", "client=%s id=%s address=%s version=%d session_present=%d",
                session->client_id, id, link->peer, (int) connect->version, present);
    mqtt_resend_in_flight(link);
    mqtt_pump(link);
}
