/* mqtt_gateway.c — sb-gateway-mqtt's core (see mqtt_gateway.h): what each
 * MQTT packet does to its connection, its session and the hub.
 *
 * A session, not a connection, is the hub's client: it keeps its mqtt-N
 * id, its hub subscriptions and the router's reply slots while its client
 * is away, so events for a persistent session queue up (bounded) and the
 * answer to a PUBLISH that arrives after a reconnect finds the session.
 * Connections are the base's clients (flushed before the loop sleeps,
 * drained on SIGTERM). Both take their serials from the same counter. */
#include "mqtt_gateway.h"

#include <czmq.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "access.h"
#include "address.h"
#include "cmdline.h"
#include "id_map.h"
#include "log.h"
#include "mqtt_client.h"
#include "mqtt_packet.h"
#include "mqtt_session.h"
#include "mqtt_store.h"
#include "reply_queue.h"
#include "router.h"

#define TOPIC_ALIASES 16
#define CONNECT_TIMEOUT_MS 10000
#define SWEEP_INTERVAL_MS 250
#define SAVE_EVERY_SWEEPS 4     /* changed sessions are written once a second */
/* Sockets beyond --max-connections still allowed to say CONNECT (and be refused). */
#define MAX_REFUSING 16

#define CMD_PREFIX "$switchboard/cmd/"
#define MSG_PREFIX "$switchboard/msg/"
#define REPLY_PREFIX "$switchboard/reply/"
#define OWN_PREFIX "$switchboard/"

typedef struct {
    uint64_t accepted, refused, publishes_in, publishes_out, denied, dropped, malformed,
        keep_alive_timeouts, takeovers, wills, commands, undeliverable;
} mqtt_counters_t;

struct sb_mqtt_gateway {
    sb_mqtt_gateway_settings_t settings;
    sb_gateway_base_t base;        /* listeners, connections by serial, router, stop */
    zhashx_t *sessions;            /* serial -> sb_mqtt_session_t */
    zhashx_t *sessions_by_id;      /* MQTT client id -> sb_mqtt_session_t */
    zhashx_t *shares;              /* "$share/GROUP/FILTER" -> its group's session */
    uv_timer_t sweep;              /* wills with a delay, sessions that expire */
    uv_tcp_t ws_listener;          /* --ws-listen, when set */
    sb_ws_stream_limits_t ws_limits;
    size_t sockets, connected;
    mqtt_counters_t counters;
    sb_mqtt_buffer_t scratch;      /* the packet being encoded */
    sb_mqtt_store_t *store;        /* persistent sessions, or NULL */
    unsigned sweeps;
    zlistx_t *expired;             /* while loading: client ids of sessions whose time is up */
    char captured[64];             /* the status of an answer given at once (sub, unsub) */
};

/* One network connection's MQTT state (the client's data). */
typedef struct {
    sb_mqtt_gateway_t *gateway;
    sb_mqtt_client_t *client;
    sb_mqtt_session_t *session;    /* after CONNECT */
    sb_mqtt_version_t version;     /* 0 before CONNECT */
    uint16_t window;               /* the client's Receive Maximum */
    uint32_t max_packet_out;       /* the client's Maximum Packet Size, 0: none */
    uint16_t incoming;             /* its QoS 1 and 2 PUBLISHes not acknowledged yet */
    bool expiry_was_zero;          /* v5: a DISCONNECT may not then set one */
    char *aliases[TOPIC_ALIASES + 1];
    char peer[80];
} link_t;

/* What a router answer is for (a reply slot's request). */
typedef enum { SLOT_CAPTURE, SLOT_PUBLISH, SLOT_COMMAND, SLOT_IGNORE } slot_kind_t;

typedef struct {
    slot_kind_t kind;
    uint64_t link_serial;          /* SLOT_PUBLISH: the connection that sent it */
    uint16_t packet_id;
    uint8_t qos;
    size_t correlation_length;     /* SLOT_COMMAND: then the reply topic, NUL, the data */
    char text[];
} slot_t;

static void pump(link_t *link);

/* ---------------------------------------------------------------- sending */

static bool is_v5(const link_t *link)
{
    return link->version == SB_MQTT_V5;
}

/* Encodes `packet` for the connection; false when it does not fit the
 * client's Maximum Packet Size (or cannot be encoded). */
static bool send_packet(link_t *link, const sb_mqtt_packet_t *packet)
{
    sb_mqtt_gateway_t *self = link->gateway;
    sb_mqtt_buffer_clear(&self->scratch);
    sb_mqtt_version_t version = link->version ? link->version : SB_MQTT_V311;
    int length = sb_mqtt_encode(packet, version, link->max_packet_out, &self->scratch);
    if (length < 0)
        return false;
    sb_mqtt_client_write(link->client, self->scratch.data, (size_t) length);
    return true;
}

static void send_ack(link_t *link, sb_mqtt_type_t type, uint16_t packet_id, uint8_t reason)
{
    sb_mqtt_packet_t packet = { .type = type };
    packet.u.ack.packet_id = packet_id;
    packet.u.ack.reason = is_v5(link) ? reason : 0;
    send_packet(link, &packet);
}

/* Ends the connection, v5 with a DISCONNECT carrying `reason`. */
static void close_with(link_t *link, uint8_t reason, const char *detail)
{
    if (sb_mqtt_client_is_closing(link->client))
        return;
    if (reason != SB_MQTT_RC_NORMAL_DISCONNECTION && reason != SB_MQTT_RC_SERVER_SHUTTING_DOWN)
        sb_log_info("mqtt client closed", "serial=%" PRIu64 " address=%s reason=0x%02x detail=\"%s\"",
                    sb_mqtt_client_serial(link->client), link->peer, reason,
                    detail ? detail : sb_mqtt_reason_name(reason));
    if (is_v5(link) && link->session) {
        sb_mqtt_packet_t packet = { .type = SB_MQTT_DISCONNECT };
        packet.u.disconnect.reason = reason;
        if (detail) {
            packet.u.disconnect.properties.reason_string = sb_mqtt_str(detail);
            sb_mqtt_mark(&packet.u.disconnect.properties, SB_MQTT_PROP_REASON_STRING);
        }
        send_packet(link, &packet);
    }
    sb_mqtt_client_end(link->client);
}

/* One message to the connected client (PUBLISH); false when it is too
 * large for the client, which then never gets it (v5 §3.1.2.11.4). */
static bool send_publish(link_t *link, sb_mqtt_message_t *message)
{
    sb_mqtt_packet_t packet = { .type = SB_MQTT_PUBLISH };
    sb_mqtt_publish_t *publish = &packet.u.publish;
    publish->dup = message->sent && message->qos > 0;
    publish->qos = message->qos;
    publish->retain = message->retain;
    publish->topic = sb_mqtt_str(message->topic);
    publish->packet_id = message->qos ? message->packet_id : 0;
    publish->payload = (sb_mqtt_str_t) { message->payload, message->length };
    sb_mqtt_user_property_t status = { sb_mqtt_str("status"), sb_mqtt_str(message->status) };
    if (is_v5(link)) {
        if (message->subscription_id) {
            publish->properties.subscription_ids = &message->subscription_id;
            publish->properties.subscription_id_count = 1;
        }
        if (message->correlation) {
            publish->properties.correlation_data =
                (sb_mqtt_str_t) { message->correlation, message->correlation_length };
            sb_mqtt_mark(&publish->properties, SB_MQTT_PROP_CORRELATION_DATA);
        }
        if (message->status) {
            publish->properties.user_properties = &status;
            publish->properties.user_property_count = 1;
        }
    }
    message->sent = true;
    bool sent = send_packet(link, &packet);
    link->gateway->counters.publishes_out += sent;
    return sent;
}

/* Sends what the client's window allows. */
static void pump(link_t *link)
{
    sb_mqtt_session_t *session = link->session;
    sb_mqtt_message_t *message;
    bool owned;
    while (!sb_mqtt_client_is_closing(link->client)
           && (message = sb_mqtt_session_next(session, link->window, &owned))) {
        bool sent = send_publish(link, message);
        if (owned)
            sb_mqtt_message_destroy(&message);
        else if (!sent) {   /* too large: as if it were delivered */
            link->gateway->counters.undeliverable++;
            uint16_t id = message->packet_id;
            if (message->qos == 2)
                sb_mqtt_session_acknowledge(session, SB_MQTT_PUBREC, id);
            sb_mqtt_session_acknowledge(session, message->qos == 1 ? SB_MQTT_PUBACK : SB_MQTT_PUBCOMP,
                                        id);
        }
    }
}

/* A message for a session: sent now if its client is here and its window
 * has room, else queued. */
static void deliver(sb_mqtt_session_t *session, sb_mqtt_message_t *message)
{
    sb_mqtt_session_push(session, message);
    if (session->link)
        pump(session->link);
}

/* What was in flight when the client left goes again, as the standard
 * asks on a reconnect: PUBLISH with DUP, or PUBREL once PUBREC came. */
static void resend_in_flight(link_t *link)
{
    for (sb_mqtt_message_t *message = zlistx_first(link->session->in_flight); message;
         message = zlistx_next(link->session->in_flight)) {
        if (message->released)
            send_ack(link, SB_MQTT_PUBREL, message->packet_id, 0);
        else
            send_publish(link, message);
    }
}

/* ---------------------------------------------------------------- sessions */

static void add_slot_request(sb_mqtt_session_t *session, slot_t *request, sb_reply_slot_t **slot)
{
    *slot = sb_reply_queue_open(&session->slots, false, NULL, request);
}

static slot_t *slot_new(slot_kind_t kind, size_t extra)
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
    add_slot_request(session, request, &slot);
    sb_router_handle_command(self->base.router, session, slot, argc, argv);
}

/* `sub`/`unsub` FILTER as the session: the status the router answered at
 * once; a refusal is always at once, while the OK of `sub` waits for the
 * retained values ("pending": the subscription is in place). */
static const char *filter_command(sb_mqtt_gateway_t *self, sb_mqtt_session_t *session,
                                  const char *command, const char *filter)
{
    snprintf(self->captured, sizeof self->captured, "pending");
    char *argv[] = { (char *) command, (char *) filter, NULL };
    run_as(self, session, slot_new(SLOT_CAPTURE, 0), 2, argv);
    return self->captured;
}

/* Publishes on the hub as the session (a will, a PUBLISH). */
static void publish_as(sb_mqtt_gateway_t *self, sb_mqtt_session_t *session, slot_t *request,
                       const char *topic, const char *payload, bool retain, uint8_t qos)
{
    sb_reply_slot_t *slot;
    add_slot_request(session, request, &slot);
    sb_router_publish(self->base.router, session, slot, topic, payload, retain, qos);
}

static void publish_will(sb_mqtt_gateway_t *self, sb_mqtt_session_t *session)
{
    sb_mqtt_message_t *will = sb_mqtt_session_take_will(session);
    if (!will)
        return;
    self->counters.wills++;
    sb_log_info("mqtt will published", "client=%s topic=%s", session->client_id, will->topic);
    if (strlen(will->payload) == will->length)
        publish_as(self, session, slot_new(SLOT_IGNORE, 0), will->topic, will->payload,
                   will->retain, will->qos);
    sb_mqtt_message_destroy(&will);
}

static void leave_shares(sb_mqtt_gateway_t *self, sb_mqtt_session_t *session);

static void end_session(sb_mqtt_gateway_t *self, sb_mqtt_session_t *session)
{
    if (self->store)
        sb_mqtt_store_forget(self->store, session->client_id);
    sb_router_client_left(self->base.router, session->serial);
    leave_shares(self, session);
    if (zhashx_lookup(self->sessions_by_id, session->client_id) == session)
        zhashx_delete(self->sessions_by_id, session->client_id);
    if (session->members)
        zhashx_delete(self->shares, session->client_id);
    zhashx_delete(self->sessions, sb_id_map_key(session->serial));   /* destroys it */
}

/* The connection of a session has gone (or been taken over): the will is
 * due now, or after its delay unless the client is back by then; the
 * session ends now, or after its expiry interval. */
static void session_left(sb_mqtt_gateway_t *self, sb_mqtt_session_t *session)
{
    session->link = NULL;
    session->dirty = true;
    int64_t now = zclock_mono();
    if (session->will) {
        if (session->will_delay_s == 0 || session->expiry_s == 0)
            publish_will(self, session);
        else
            session->will_at_ms = now + 1000LL * (session->will_delay_s < session->expiry_s
                                                      ? session->will_delay_s : session->expiry_s);
    }
    if (session->expiry_s == 0)
        end_session(self, session);
    else
        session->expires_at_ms = now + 1000LL * session->expiry_s;
}

/* Writes the sessions that changed (all of them when `all`), in one batch:
 * a persistent one is saved, one that no longer is forgotten. */
static void save_sessions(sb_mqtt_gateway_t *self, bool all)
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

static void on_sweep(uv_timer_t *timer)
{
    sb_mqtt_gateway_t *self = timer->data;
    if (self->store && ++self->sweeps % SAVE_EVERY_SWEEPS == 0)
        save_sessions(self, false);
    int64_t now = zclock_mono();
    zlistx_t *all = zhashx_values(self->sessions);
    zlistx_set_destructor(all, NULL);
    for (sb_mqtt_session_t *session = zlistx_first(all); session; session = zlistx_next(all)) {
        if (session->will_at_ms && now >= session->will_at_ms)
            publish_will(self, session);
        if (!session->link && session->expires_at_ms && now >= session->expires_at_ms) {
            sb_log_info("mqtt session expired", "client=%s", session->client_id);
            publish_will(self, session);
            end_session(self, session);
        }
    }
    zlistx_destroy(&all);
}

/* The address the hub shows in `client ID`: the peer, then the MQTT
 * client id (spaces and colons would confuse the reply's words). */
static void hub_address(const char *peer, const char *client_id, char *buffer, size_t size)
{
    int used = snprintf(buffer, size, "%s mqtt_id=", peer);
    for (const char *c = client_id; *c && used > 0 && (size_t) used + 1 < size; c++)
        buffer[used++] = (*c > ' ' && *c < 0x7f && *c != ':') ? *c : '_';
    buffer[used < 0 ? 0 : (size_t) used < size ? used : (int) size - 1] = '\0';
}

/* ---------------------------------------------------------------- CONNECT */

static void refuse_connect(link_t *link, sb_mqtt_version_t version, uint8_t reason,
                           const char *detail)
{
    sb_mqtt_packet_t packet = { .type = SB_MQTT_CONNACK };
    packet.u.connack.reason = reason;
    sb_mqtt_version_t previous = link->version;
    link->version = version;
    send_packet(link, &packet);
    link->version = previous;
    link->gateway->counters.refused++;
    sb_log_info("mqtt connect refused", "address=%s reason=0x%02x detail=\"%s\"", link->peer, reason,
                detail);
    sb_mqtt_client_end(link->client);
}

/* The identity of the CONNECT's username and password; NULL (refused)
 * when they are wrong. Without access rules, credentials are not asked for. */
static bool authenticate(link_t *link, const sb_mqtt_connect_t *connect,
                         const sb_identity_t **identity)
{
    const sb_access_t *access = sb_router_access(link->gateway->base.router);
    *identity = NULL;
    if (!sb_access_enabled(access))
        return true;
    if (!connect->has_username) {
        *identity = sb_access_anonymous(access);
        return true;
    }
    const sb_mqtt_str_t *password = &connect->password;
    if (!connect->has_password || strlen(password->data) != password->length)
        return false;
    size_t size = connect->username.length + password->length + 2;
    char *pair = malloc(size);
    snprintf(pair, size, "%s:%s", connect->username.data, password->data);
    bool waiting = false;
    *identity = sb_router_authenticate_now(link->gateway->base.router, link->peer, pair, &waiting);
    memset(pair, 0, size);   /* the secret does not linger in freed memory */
    free(pair);
    return *identity != NULL;
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
        close_with(old, SB_MQTT_RC_SESSION_TAKEN_OVER, NULL);
        old->session = NULL;   /* its close no longer concerns the session */
        self->connected--;
        /* A will with a delay is not sent when the session goes on at once. */
        if (session->will && (session->will_delay_s == 0 || connect->clean_start))
            publish_will(self, session);
        session->link = NULL;
    }
    if (session && connect->clean_start) {
        publish_will(self, session);
        end_session(self, session);
        session = NULL;
    }
    if (session) {
        *present = true;
        session->will_at_ms = session->expires_at_ms = 0;
        return session;
    }
    if (zhashx_size(self->sessions) >= self->settings.max_sessions)
        return NULL;
    session = sb_mqtt_session_new(client_id, sb_gateway_base_next_serial(&self->base),
                                  self->settings.max_queued);
    session->owner = self;
    zhashx_insert(self->sessions, sb_id_map_key(session->serial), session);
    zhashx_insert(self->sessions_by_id, client_id, session);
    char address[200];
    hub_address(link->peer, client_id, address, sizeof address);
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
    send_packet(link, &packet);
}

static void on_connect(link_t *link, const sb_mqtt_connect_t *connect)
{
    sb_mqtt_gateway_t *self = link->gateway;
    const sb_identity_t *identity = NULL;
    if (connect->version == SB_MQTT_V5
        && sb_mqtt_has(&connect->properties, SB_MQTT_PROP_AUTHENTICATION_METHOD)) {
        refuse_connect(link, connect->version, SB_MQTT_RC_BAD_AUTHENTICATION_METHOD,
                       "no enhanced authentication; use username and password");
        return;
    }
    if (self->connected >= self->settings.max_connections) {
        refuse_connect(link, connect->version, SB_MQTT_RC_SERVER_UNAVAILABLE,
                       "too many connections");
        return;
    }
    if (!authenticate(link, connect, &identity)) {
        refuse_connect(link, connect->version, SB_MQTT_RC_BAD_USER_NAME_OR_PASSWORD,
                       "bad user name or password");
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
        refuse_connect(link, connect->version, SB_MQTT_RC_QUOTA_EXCEEDED, "too many sessions");
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
    send_connack(link, connect, present, assigned, session->expiry_s,
                 capped && connect->version == SB_MQTT_V5, keep_alive);
    char id[64];
    sb_router_client_id(self->base.router, session->serial, id, sizeof id);
    sb_log_info("mqtt client connected", "client=%s id=%s address=%s version=%d session_present=%d",
                session->client_id, id, link->peer, (int) connect->version, present);
    resend_in_flight(link);
    pump(link);
}

/* ---------------------------------------------------------------- PUBLISH from the client */

/* The reason a refused hub `pub` gets in a v5 PUBACK/PUBREC. */
static uint8_t publish_reason(const char *status)
{
    if (strcmp(status, "OK") == 0)
        return SB_MQTT_RC_SUCCESS;
    if (strcmp(status, "ERR unauthorized") == 0)
        return SB_MQTT_RC_NOT_AUTHORIZED;
    if (strcmp(status, "ERR bad-args") == 0)
        return SB_MQTT_RC_TOPIC_NAME_INVALID;
    return SB_MQTT_RC_UNSPECIFIED_ERROR;
}

/* Acknowledges a PUBLISH from the client (QoS 1: PUBACK; 2: PUBREC). */
static void acknowledge_publish(link_t *link, uint8_t qos, uint16_t packet_id, uint8_t reason)
{
    if (qos == 0)
        return;
    send_ack(link, qos == 1 ? SB_MQTT_PUBACK : SB_MQTT_PUBREC, packet_id, reason);
    bool finished = qos == 1 || (reason >= 0x80 && is_v5(link));
    if (qos == 2 && finished)
        sb_mqtt_session_release(link->session, packet_id);
    if (finished && link->incoming)
        link->incoming--;
}

/* The hub's answer to a PUBLISH the client sent. */
static void answer_publish(sb_mqtt_gateway_t *self, sb_mqtt_session_t *session, const slot_t *slot,
                           const char *status)
{
    uint8_t reason = publish_reason(status);
    if (reason) {
        self->counters.denied += reason == SB_MQTT_RC_NOT_AUTHORIZED;
        self->counters.dropped += slot->qos == 0;
    }
    link_t *link = session->link;
    if (link && sb_mqtt_client_serial(link->client) == slot->link_serial)
        acknowledge_publish(link, slot->qos, slot->packet_id, reason);
}

/* A command reply goes to the one client that asked, on its reply topic. */
static void answer_command(sb_mqtt_gateway_t *self, sb_mqtt_session_t *session, const slot_t *slot,
                           const char *status, const char *text)
{
    const char *topic = slot->text;
    const sb_mqtt_filter_t *filter = sb_mqtt_session_match(session, topic, false, false);
    if (!filter) {
        self->counters.undeliverable++;
        return;
    }
    char *line = sb_reply_format_line(NULL, status, text ? text : "");
    sb_mqtt_message_t *reply = sb_mqtt_message_new(topic, line, strlen(line), filter->qos, false);
    free(line);
    reply->subscription_id = filter->id;
    if (slot->correlation_length) {
        reply->correlation = malloc(slot->correlation_length);
        memcpy(reply->correlation, slot->text + strlen(topic) + 1, slot->correlation_length);
        reply->correlation_length = slot->correlation_length;
    }
    reply->status = strdup(status ? status : "OK");
    deliver(session, reply);
}

/* $switchboard/cmd/COMMAND: the payload is the arguments (§3.1 syntax). */
static void run_command(link_t *link, const sb_mqtt_publish_t *publish)
{
    sb_mqtt_gateway_t *self = link->gateway;
    sb_mqtt_session_t *session = link->session;
    const char *command = publish->topic.data + strlen(CMD_PREFIX);
    const sb_mqtt_properties_t *p = &publish->properties;
    char reply_topic[512];
    if (sb_mqtt_has(p, SB_MQTT_PROP_RESPONSE_TOPIC))
        snprintf(reply_topic, sizeof reply_topic, "%s", p->response_topic.data);
    else
        snprintf(reply_topic, sizeof reply_topic, REPLY_PREFIX "%s/%s", session->client_id, command);
    size_t correlation = sb_mqtt_has(p, SB_MQTT_PROP_CORRELATION_DATA) ? p->correlation_data.length : 0;
    size_t topic_length = strlen(reply_topic);
    slot_t *slot = slot_new(SLOT_COMMAND, topic_length + 1 + correlation);
    memcpy(slot->text, reply_topic, topic_length);
    if (correlation)
        memcpy(slot->text + topic_length + 1, p->correlation_data.data, correlation);
    slot->correlation_length = correlation;
    self->counters.commands++;
    acknowledge_publish(link, publish->qos, publish->packet_id, SB_MQTT_RC_SUCCESS);

    sb_cmdline_status_t status = SB_CMDLINE_NO_COMMAND;
    sb_cmdline_t *request = NULL;
    bool word = command[0] && !strpbrk(command, " \t\"@/+#") && strlen(publish->payload.data)
                                                                     == publish->payload.length;
    if (word) {
        size_t size = strlen(command) + publish->payload.length + 2;
        char *line = malloc(size);
        snprintf(line, size, "%s %s", command, publish->payload.data);
        request = sb_cmdline_parse(line, strlen(line), &status, NULL);
        free(line);
    }
    /* Commands waiting for the hub are bounded, as a TCP client's requests are. */
    bool busy = session->waiting >= self->settings.receive_maximum;
    sb_reply_slot_t *reply_slot;
    add_slot_request(session, slot, &reply_slot);
    static const char *const refused[] = { "quit", "auth", "sub", "unsub" };
    bool allowed = request != NULL && !busy;
    for (size_t i = 0; allowed && i < sizeof refused / sizeof refused[0]; i++)
        allowed = strcmp(command, refused[i]) != 0;
    session->waiting += allowed;
    if (allowed)
        sb_router_handle_command(self->base.router, session, reply_slot, request->argc,
                                 request->argv);
    else if (busy)
        answer_command(self, session, slot, "ERR busy",
                       "too many commands and publishes waiting for the hub (--receive-maximum)");
    else if (request)
        answer_command(self, session, slot, "ERR bad-args",
                       "not over MQTT: CONNECT gives the credentials, SUBSCRIBE and UNSUBSCRIBE "
                       "the subscriptions, DISCONNECT ends");
    else
        answer_command(self, session, slot, "ERR bad-args",
                       word ? sb_cmdline_status_text(status) : "COMMAND must be one word");
    if (!allowed)
        sb_reply_queue_remove(&session->slots, reply_slot);
    sb_cmdline_destroy(&request);
}

/* A v5 Topic Alias: sets or resolves it; the topic, or NULL after closing. */
static const char *resolve_alias(link_t *link, const sb_mqtt_publish_t *publish)
{
    if (!sb_mqtt_has(&publish->properties, SB_MQTT_PROP_TOPIC_ALIAS))
        return publish->topic.data;
    uint16_t alias = publish->properties.topic_alias;
    if (alias == 0 || alias > TOPIC_ALIASES) {
        close_with(link, SB_MQTT_RC_TOPIC_ALIAS_INVALID, "topic alias over the maximum");
        return NULL;
    }
    if (publish->topic.length) {
        free(link->aliases[alias]);
        link->aliases[alias] = strdup(publish->topic.data);
    }
    if (!link->aliases[alias])
        close_with(link, SB_MQTT_RC_PROTOCOL_ERROR, "topic alias never set");
    return link->aliases[alias];
}

static void on_publish(link_t *link, const sb_mqtt_publish_t *publish)
{
    sb_mqtt_gateway_t *self = link->gateway;
    sb_mqtt_session_t *session = link->session;
    const char *topic = resolve_alias(link, publish);
    if (!topic)
        return;
    self->counters.publishes_in++;
    if (publish->qos > 0 && is_v5(link) && link->incoming >= self->settings.receive_maximum) {
        close_with(link, SB_MQTT_RC_RECEIVE_MAXIMUM_EXCEEDED, NULL);
        return;
    }
    if (publish->qos == 2 && sb_mqtt_session_awaits_release(session, publish->packet_id)) {
        send_ack(link, SB_MQTT_PUBREC, publish->packet_id, 0);   /* a resend: not published twice */
        return;
    }
    link->incoming += publish->qos > 0;
    if (publish->qos == 2)
        sb_mqtt_session_await_release(session, publish->packet_id);
    if (strncmp(topic, CMD_PREFIX, strlen(CMD_PREFIX)) == 0) {
        sb_mqtt_publish_t named = *publish;
        named.topic = sb_mqtt_str(topic);
        run_command(link, &named);
        return;
    }
    if (strlen(publish->payload.data) != publish->payload.length) {
        self->counters.dropped += publish->qos == 0;
        acknowledge_publish(link, publish->qos, publish->packet_id, SB_MQTT_RC_PAYLOAD_FORMAT_INVALID);
        return;
    }
    if (publish->qos == 0 && session->waiting >= self->settings.receive_maximum) {
        self->counters.dropped++;   /* QoS 0 may be lost: a flood waits for nothing */
        return;
    }
    slot_t *slot = slot_new(SLOT_PUBLISH, 0);
    slot->link_serial = sb_mqtt_client_serial(link->client);
    slot->packet_id = publish->packet_id;
    slot->qos = publish->qos;
    session->waiting++;
    publish_as(self, session, slot, topic, publish->payload.data, publish->retain, publish->qos);
}

/* ---------------------------------------------------------------- acks from the client */

static void on_ack(link_t *link, sb_mqtt_type_t type, const sb_mqtt_ack_t *ack)
{
    sb_mqtt_session_t *session = link->session;
    switch (type) {
    case SB_MQTT_PUBACK:
    case SB_MQTT_PUBCOMP:
        sb_mqtt_session_acknowledge(session, type, ack->packet_id);
        break;
    case SB_MQTT_PUBREC:
        if (!sb_mqtt_session_acknowledge(session, SB_MQTT_PUBREC, ack->packet_id))
            send_ack(link, SB_MQTT_PUBREL, ack->packet_id, SB_MQTT_RC_PACKET_IDENTIFIER_NOT_FOUND);
        else if (ack->reason >= 0x80)   /* v5: the client refused it; the flow ends here */
            sb_mqtt_session_acknowledge(session, SB_MQTT_PUBCOMP, ack->packet_id);
        else
            send_ack(link, SB_MQTT_PUBREL, ack->packet_id, 0);
        break;
    case SB_MQTT_PUBREL: {
        bool waited = sb_mqtt_session_release(session, ack->packet_id);
        if (waited && link->incoming)
            link->incoming--;
        send_ack(link, SB_MQTT_PUBCOMP, ack->packet_id,
                 waited ? 0 : SB_MQTT_RC_PACKET_IDENTIFIER_NOT_FOUND);
        break;
    }
    default:
        break;
    }
    pump(link);
}

/* ---------------------------------------------------------------- SUBSCRIBE, UNSUBSCRIBE */

static bool is_own_filter(const char *filter)
{
    return strncmp(filter, OWN_PREFIX, strlen(OWN_PREFIX)) == 0;
}

/* `sub FILTER` at the hub for `session`: 0, or the SUBACK reason of a refusal. */
static uint8_t hub_subscribe(sb_mqtt_gateway_t *self, sb_mqtt_session_t *session, const char *filter)
{
    const char *status = filter_command(self, session, "sub", filter);
    if (strcmp(status, "ERR unauthorized") == 0) {
        self->counters.denied++;
        return SB_MQTT_RC_NOT_AUTHORIZED;
    }
    if (strcmp(status, "ERR busy") == 0)
        return SB_MQTT_RC_QUOTA_EXCEEDED;
    if (strcmp(status, "OK") != 0 && strcmp(status, "pending") != 0)
        return SB_MQTT_RC_TOPIC_FILTER_INVALID;
    return 0;
}

/* ---------------------------------------------------------------- shared subscriptions */

/* A shared subscription $share/GROUP/FILTER is one hub client of its own
 * (a group session, mqtt-N, subscribed to FILTER), whose events go to one
 * member session at a time, in turn, a connected one first. */
static const char *shared_filter(const char *name)
{
    const char *group = name + strlen("$share/");
    const char *slash = strchr(group, '/');
    return slash ? slash + 1 : group;
}

/* The member's own rules decide: the group acts as the member that joins. */
static void act_as(sb_mqtt_gateway_t *self, sb_mqtt_session_t *group, const sb_mqtt_session_t *member)
{
    const sb_access_t *access = sb_router_access(self->base.router);
    if (!sb_access_enabled(access))
        return;
    const sb_identity_t *identity = member->token ? sb_access_token(access, member->token) : NULL;
    sb_router_client_authenticated(self->base.router, group->serial,
                                   identity ? identity : sb_access_anonymous(access));
}

static uint8_t join_share(sb_mqtt_gateway_t *self, sb_mqtt_session_t *member, const char *name)
{
    sb_mqtt_session_t *group = zhashx_lookup(self->shares, name);
    if (!group) {
        group = sb_mqtt_session_new(name, sb_gateway_base_next_serial(&self->base), 0);
        group->owner = self;
        group->members = zlistx_new();
        zlistx_set_destructor(group->members, NULL);
        zhashx_insert(self->sessions, sb_id_map_key(group->serial), group);
        zhashx_insert(self->shares, name, group);
        char address[200];
        hub_address("shared", name, address, sizeof address);
        sb_router_client_joined(self->base.router, group->serial, address);
    }
    act_as(self, group, member);
    uint8_t refused = hub_subscribe(self, group, shared_filter(name));
    void *serial = sb_id_map_key(member->serial);
    if (!refused && !zlistx_find(group->members, serial))
        zlistx_add_end(group->members, serial);
    if (zlistx_size(group->members) == 0)
        end_session(self, group);
    return refused;
}

static void leave_share(sb_mqtt_gateway_t *self, sb_mqtt_session_t *member, const char *name)
{
    sb_mqtt_session_t *group = zhashx_lookup(self->shares, name);
    void *handle = group ? zlistx_find(group->members, sb_id_map_key(member->serial)) : NULL;
    if (handle)
        zlistx_delete(group->members, handle);
    if (group && zlistx_size(group->members) == 0)
        end_session(self, group);
}

static bool is_share(const char *filter)
{
    return strncmp(filter, "$share/", strlen("$share/")) == 0;
}

static void leave_shares(sb_mqtt_gateway_t *self, sb_mqtt_session_t *session)
{
    if (session->members)
        return;
    zlistx_t *names = zlistx_new();
    for (sb_mqtt_filter_t *f = zlistx_first(session->filters); f; f = zlistx_next(session->filters))
        if (is_share(f->filter))
            zlistx_add_end(names, f->filter);
    for (char *name = zlistx_first(names); name; name = zlistx_next(names))
        leave_share(self, session, name);
    zlistx_destroy(&names);
}

/* The member whose turn it is (a connected one first), with its subscription. */
static sb_mqtt_session_t *next_member(sb_mqtt_gateway_t *self, sb_mqtt_session_t *group,
                                      const sb_mqtt_filter_t **filter)
{
    size_t count = zlistx_size(group->members);
    sb_mqtt_session_t *away = NULL;
    const sb_mqtt_filter_t *away_filter = NULL;
    for (size_t i = 0; i < count; i++) {
        size_t at = (group->turn + i) % count;
        void *serial = zlistx_first(group->members);
        for (size_t j = 0; j < at; j++)
            serial = zlistx_next(group->members);
        sb_mqtt_session_t *member = zhashx_lookup(self->sessions, serial);
        const sb_mqtt_filter_t *f = NULL;
        for (f = member ? zlistx_first(member->filters) : NULL; f; f = zlistx_next(member->filters))
            if (strcmp(f->filter, group->client_id) == 0)
                break;
        if (!f)
            continue;
        if (member->link) {
            group->turn = at + 1;
            *filter = f;
            return member;
        }
        if (!away) {
            away = member;
            away_filter = f;
        }
    }
    group->turn++;
    *filter = away_filter;
    return away;
}

/* The SUBACK reason for one filter; the hub subscription is made on the way. */
static uint8_t subscribe_one(link_t *link, const sb_mqtt_subscription_t *item, uint32_t id)
{
    sb_mqtt_gateway_t *self = link->gateway;
    if (item->reason)
        return item->reason;
    bool shared = item->share_group.length > 0;
    const char *filter = shared ? item->filter.data : item->topic_filter.data;
    uint8_t refused = shared ? join_share(self, link->session, filter)
                      : is_own_filter(filter) ? 0 : hub_subscribe(self, link->session, filter);
    if (refused)
        return refused;
    bool existed = sb_mqtt_session_match_filter(link->session, filter);
    sb_mqtt_filter_t subscription = { (char *) filter, item->qos, item->no_local,
                                      item->retain_as_published, item->retain_handling, id,
                                      item->retain_handling == 2
                                          || (item->retain_handling == 1 && existed) };
    sb_mqtt_session_subscribe(link->session, &subscription);
    return item->qos;
}

static void on_subscribe(link_t *link, const sb_mqtt_subscribe_t *subscribe, bool add)
{
    uint8_t *reasons = calloc(subscribe->count, 1);
    uint32_t id = subscribe->properties.subscription_id_count ? subscribe->properties.subscription_ids[0]
                                                              : 0;
    for (size_t i = 0; i < subscribe->count; i++) {
        const sb_mqtt_subscription_t *item = &subscribe->items[i];
        if (add)
            reasons[i] = subscribe_one(link, item, id);
        else if (item->reason)
            reasons[i] = item->reason;
        else if (!sb_mqtt_session_unsubscribe(link->session, item->filter.data))
            reasons[i] = SB_MQTT_RC_NO_SUBSCRIPTION_EXISTED;
        else if (item->share_group.length)
            leave_share(link->gateway, link->session, item->filter.data);
        else if (!is_own_filter(item->filter.data))
            filter_command(link->gateway, link->session, "unsub", item->filter.data);
    }
    sb_mqtt_packet_t packet = { .type = add ? SB_MQTT_SUBACK : SB_MQTT_UNSUBACK };
    packet.u.suback.packet_id = subscribe->packet_id;
    packet.u.suback.reasons = reasons;
    packet.u.suback.count = subscribe->count;
    send_packet(link, &packet);
    free(reasons);
}

/* ---------------------------------------------------------------- DISCONNECT and the rest */

static void on_disconnect(link_t *link, const sb_mqtt_disconnect_t *disconnect)
{
    sb_mqtt_gateway_t *self = link->gateway;
    sb_mqtt_session_t *session = link->session;
    if (sb_mqtt_has(&disconnect->properties, SB_MQTT_PROP_SESSION_EXPIRY_INTERVAL)) {
        uint32_t wanted = disconnect->properties.session_expiry_interval;
        if (link->expiry_was_zero && wanted) {
            close_with(link, SB_MQTT_RC_PROTOCOL_ERROR, "session expiry set at DISCONNECT after 0");
            return;
        }
        session->expiry_s = wanted < self->settings.max_session_expiry_s
                                ? wanted : self->settings.max_session_expiry_s;
        session->dirty = true;
    }
    if (disconnect->reason == SB_MQTT_RC_NORMAL_DISCONNECTION)
        sb_mqtt_session_set_will(session, NULL, 0);
    sb_mqtt_client_end(link->client);
}

static void on_packet(void *owner, sb_mqtt_client_t *client, const uint8_t *data, size_t length)
{
    sb_mqtt_gateway_t *self = owner;
    link_t *link = sb_mqtt_client_data(client);
    sb_mqtt_error_t error = { 0 };
    sb_mqtt_packet_t *packet = sb_mqtt_decode(data, length, link->version, &error);
    if (!packet) {
        self->counters.malformed++;
        if (!link->session && error.connack_version)
            refuse_connect(link, error.connack_version, error.reason, error.detail);
        else if (!link->session) {
            sb_log_info("mqtt client closed before CONNECT", "address=%s reason=0x%02x detail=\"%s\"",
                        link->peer, error.reason, error.detail ? error.detail : "");
            sb_mqtt_client_close(client);
        }
        else
            close_with(link, error.reason, error.detail);
        return;
    }
    switch (packet->type) {
    case SB_MQTT_CONNECT:
        if (link->session)
            close_with(link, SB_MQTT_RC_PROTOCOL_ERROR, "a second CONNECT");
        else
            on_connect(link, &packet->u.connect);
        break;
    case SB_MQTT_PUBLISH:
        on_publish(link, &packet->u.publish);
        break;
    case SB_MQTT_PUBACK:
    case SB_MQTT_PUBREC:
    case SB_MQTT_PUBREL:
    case SB_MQTT_PUBCOMP:
        on_ack(link, packet->type, &packet->u.ack);
        break;
    case SB_MQTT_SUBSCRIBE:
    case SB_MQTT_UNSUBSCRIBE:
        on_subscribe(link, &packet->u.subscribe, packet->type == SB_MQTT_SUBSCRIBE);
        break;
    case SB_MQTT_PINGREQ: {
        sb_mqtt_packet_t pong = { .type = SB_MQTT_PINGRESP };
        send_packet(link, &pong);
        break;
    }
    case SB_MQTT_DISCONNECT:
        on_disconnect(link, &packet->u.disconnect);
        break;
    default:   /* AUTH: no enhanced authentication was begun */
        close_with(link, SB_MQTT_RC_PROTOCOL_ERROR, "unexpected packet");
        break;
    }
    sb_mqtt_packet_destroy(&packet);
}

/* ---------------------------------------------------------------- the router's view of a session */

static void *find_session(void *owner, uint64_t serial)
{
    sb_mqtt_gateway_t *self = owner;
    return zhashx_lookup(self->sessions, sb_id_map_key(serial));
}

static uint64_t session_serial(void *client)
{
    return ((sb_mqtt_session_t *) client)->serial;
}

static sb_reply_slot_t *open_slot(void *client, const char *tag)
{
    (void) tag;
    sb_reply_slot_t *slot;
    add_slot_request(client, slot_new(SLOT_IGNORE, 0), &slot);
    return slot;
}

static void answer(void *client, sb_reply_slot_t *reply_slot, const char *status, const char *text,
                   bool close_after)
{
    sb_mqtt_session_t *session = client;
    sb_mqtt_gateway_t *self = session->owner;
    const slot_t *slot = sb_reply_slot_request(reply_slot);
    (void) close_after;
    status = status ? status : "OK";
    switch (slot->kind) {
    case SLOT_CAPTURE:
        snprintf(self->captured, sizeof self->captured, "%s", status);
        break;
    case SLOT_PUBLISH:
        session->waiting--;
        answer_publish(self, session, slot, status);
        break;
    case SLOT_COMMAND:
        session->waiting--;
        answer_command(self, session, slot, status, text);
        break;
    case SLOT_IGNORE:
        break;
    }
    sb_reply_queue_remove(&session->slots, reply_slot);
}

/* A hub event: not to its own publisher under No Local (the broker passes
 * the publisher's id on, `from`); at the lower of its QoS and the subscription's; a retained
 * value (sent on subscribe) with RETAIN set, unless the subscription's
 * Retain Handling declines it; a live one with RETAIN only under v5's
 * Retain As Published. */
static void write_event(void *client, const sb_envelope_t *event)
{
    sb_mqtt_session_t *session = client;
    sb_mqtt_gateway_t *self = session->owner;
    const sb_mqtt_filter_t *filter;
    if (session->members) {   /* a shared subscription: one member gets it; no retained values */
        session = event->retain ? NULL : next_member(self, session, &filter);
        if (!session)
            return;
    }
    else {
        char id[64];
        sb_router_client_id(self->base.router, session->serial, id, sizeof id);
        bool own = event->from && strcmp(event->from, id) == 0;
        filter = sb_mqtt_session_match(session, event->topic, event->retain, own);
    }
    /* A restored session's subscriptions are not new: no retained values for them. */
    if (!filter || (event->retain && session->restored))
        return;
    const char *data = event->data ? event->data : "";
    uint8_t qos = event->qos < filter->qos ? event->qos : filter->qos;
    bool retain = event->retain || (filter->retain_as_published && event->published_retain);
    sb_mqtt_message_t *message = sb_mqtt_message_new(event->topic, data, strlen(data), qos, retain);
    message->subscription_id = filter->id;
    deliver(session, message);
}

/* A `tell`, on $switchboard/msg/ID/FROM: the gateway's own message, at the
 * subscription's QoS. */
static void write_async(void *client, const char *kind, const char *word, const char *text)
{
    sb_mqtt_session_t *session = client;
    sb_mqtt_gateway_t *self = session->owner;
    if (strcmp(kind, "MSG") != 0)
        return;   /* events come through write_event */
    char topic[512];
    snprintf(topic, sizeof topic, MSG_PREFIX "%s/%s", session->client_id, word);
    const sb_mqtt_filter_t *filter = sb_mqtt_session_match(session, topic, false, false);
    if (!filter) {
        self->counters.undeliverable++;
        return;
    }
    sb_mqtt_message_t *message = sb_mqtt_message_new(topic, text, strlen(text), filter->qos, false);
    message->subscription_id = filter->id;
    deliver(session, message);
}

static int describe(void *owner, char *buffer, size_t size)
{
    sb_mqtt_gateway_t *self = owner;
    const mqtt_counters_t *c = &self->counters;
    int used = sb_gateway_base_describe(&self->base, self->connected, c->accepted, c->refused,
                                        buffer, size);
    int more = snprintf(buffer + used, size - (size_t) used,
                        " sessions=%zu publishes_in=%" PRIu64 " publishes_out=%" PRIu64
                        " denied=%" PRIu64 " dropped=%" PRIu64 " malformed=%" PRIu64
                        " keep_alive_timeouts=%" PRIu64 " takeovers=%" PRIu64 " wills=%" PRIu64
                        " commands=%" PRIu64 " undeliverable=%" PRIu64,
                        zhashx_size(self->sessions), c->publishes_in, c->publishes_out, c->denied,
                        c->dropped, c->malformed, c->keep_alive_timeouts, c->takeovers, c->wills,
                        c->commands, c->undeliverable);
    if (more < 0)
        return used;
    return (size_t) (used + more) >= size ? (int) size - 1 : used + more;
}

static const sb_router_client_ops_t s_client_ops = {
    find_session, session_serial, open_slot, answer, write_async, describe, write_event,
};

/* ---------------------------------------------------------------- connections */

static void on_ready(void *owner, sb_mqtt_client_t *client)
{
    (void) owner;
    (void) client;
}

static void on_failure(void *owner, sb_mqtt_client_t *client, sb_mqtt_client_failure_t why)
{
    sb_mqtt_gateway_t *self = owner;
    link_t *link = sb_mqtt_client_data(client);
    switch (why) {
    case SB_MQTT_CLIENT_TOO_LARGE:
        self->counters.malformed++;
        close_with(link, SB_MQTT_RC_PACKET_TOO_LARGE, "packet over the maximum packet size");
        break;
    case SB_MQTT_CLIENT_MALFORMED:
        self->counters.malformed++;
        close_with(link, SB_MQTT_RC_MALFORMED_PACKET, "bad remaining length");
        break;
    case SB_MQTT_CLIENT_KEEP_ALIVE:
        self->counters.keep_alive_timeouts++;
        close_with(link, SB_MQTT_RC_KEEP_ALIVE_TIMEOUT, NULL);
        break;
    case SB_MQTT_CLIENT_NOT_READING:
        break;
    }
}

static void on_closed(void *owner, sb_mqtt_client_t *client)
{
    sb_mqtt_gateway_t *self = owner;
    link_t *link = sb_mqtt_client_data(client);
    uint64_t serial = sb_mqtt_client_serial(client);
    self->sockets--;
    if (link->session) {
        self->connected--;
        session_left(self, link->session);
    }
    for (size_t i = 0; i <= TOPIC_ALIASES; i++)
        free(link->aliases[i]);
    free(link);
    sb_gateway_base_remove(&self->base, serial, client);
}

static void on_output(void *owner, sb_mqtt_client_t *client)
{
    sb_mqtt_gateway_t *self = owner;
    sb_gateway_base_has_output(&self->base, client);
}

static const sb_mqtt_client_events_t s_client_events = {
    on_ready, on_packet, on_failure, on_closed, on_output,
};

static void on_connection(uv_stream_t *listener, int status)
{
    sb_mqtt_gateway_t *self = listener->data;
    if (status < 0)
        return;
    sb_mqtt_client_limits_t limits = {
        self->settings.max_packet, self->settings.max_output,
        (uint64_t) (self->settings.base.tls_handshake_timeout_ms > CONNECT_TIMEOUT_MS
                        ? self->settings.base.tls_handshake_timeout_ms : CONNECT_TIMEOUT_MS),
    };
    uint64_t serial = sb_gateway_base_next_serial(&self->base);
    bool ws = listener == (uv_stream_t *) &self->ws_listener;
    sb_mqtt_client_t *client = sb_mqtt_client_accept(listener, serial, &limits, &s_client_events,
                                                     self, sb_gateway_base_tls_of(&self->base,
                                                                                  listener),
                                                     ws ? &self->ws_limits : NULL);
    if (!client)
        return;
    link_t *link = calloc(1, sizeof *link);
    link->gateway = self;
    link->client = client;
    sb_mqtt_client_peer(client, link->peer, sizeof link->peer);
    sb_mqtt_client_set_data(client, link);
    self->sockets++;
    sb_gateway_base_add(&self->base, serial, client);
    if (self->base.stopping || self->sockets > self->settings.max_connections + MAX_REFUSING) {
        self->counters.refused++;
        sb_mqtt_client_close(client);
        return;
    }
    sb_mqtt_client_start(client);
}

/* ---------------------------------------------------------------- lifecycle */

static void flush_client(void *client)
{
    sb_mqtt_client_flush(client);
}

/* A stop: v5 clients hear why (0x8B); every connection ends after its output. */
static void finish_client(void *client)
{
    link_t *link = sb_mqtt_client_data(client);
    if (link->session)
        close_with(link, SB_MQTT_RC_SERVER_SHUTTING_DOWN, NULL);
    else
        sb_mqtt_client_close(client);
}

static void close_client(void *client)
{
    sb_mqtt_client_close(client);
}

static const sb_gateway_client_actions_t s_client_actions = {
    flush_client, finish_client, close_client,
};

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
    hub_address("restored", session->client_id, address, sizeof address);
    sb_router_client_joined(self->base.router, session->serial, address);
    const sb_access_t *access = sb_router_access(self->base.router);
    if (sb_access_enabled(access)) {
        const sb_identity_t *identity = token ? sb_access_token(access, token) : NULL;
        sb_router_client_authenticated(self->base.router, session->serial,
                                       identity ? identity : sb_access_anonymous(access));
    }
    zlistx_t *refused = zlistx_new();
    for (sb_mqtt_filter_t *f = zlistx_first(session->filters); f; f = zlistx_next(session->filters))
        if (is_share(f->filter) ? join_share(self, session, f->filter) != 0
            : !is_own_filter(f->filter) && hub_subscribe(self, session, f->filter) != 0)
            zlistx_add_end(refused, f->filter);
    for (char *filter = zlistx_first(refused); filter; filter = zlistx_next(refused))
        sb_mqtt_session_unsubscribe(session, filter);   /* the rules changed meanwhile */
    zlistx_destroy(&refused);
    session->dirty = false;
}

static bool open_store(sb_mqtt_gateway_t *self)
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

/* MQTT over WebSocket: any Origin and Host, as MQTT brokers do (tokens
 * guard the hub); a WebSocket message may hold up to two packets. It does
 * not hold the loop open: the stop ends with the base's listeners. */
static bool listen_ws(sb_mqtt_gateway_t *self)
{
    self->ws_limits = (sb_ws_stream_limits_t) { 8192, 2 * self->settings.max_packet, "*", "*",
                                                "mqtt" };
    if (!sb_address_listen(self->base.loop, &self->ws_listener, self, self->settings.ws_listen,
                           on_connection))
        return false;
    uv_unref((uv_handle_t *) &self->ws_listener);
    sb_log_info("mqtt over websocket listening", "address=%s", self->settings.ws_listen);
    sb_gateway_warn_if_open(self->base.router, self->settings.ws_listen);
    return true;
}

static void destroy_session_item(void **item)
{
    sb_mqtt_session_destroy((sb_mqtt_session_t **) item);
}

sb_mqtt_gateway_t *sb_mqtt_gateway_new(const sb_mqtt_gateway_settings_t *settings)
{
    sb_mqtt_gateway_t *self = calloc(1, sizeof *self);
    self->settings = *settings;
    self->sessions = sb_id_map_new();
    zhashx_set_destructor(self->sessions, destroy_session_item);
    self->sessions_by_id = zhashx_new();
    self->shares = zhashx_new();
    sb_mqtt_buffer_init(&self->scratch);
    if (!sb_gateway_base_init(&self->base, &settings->base, &s_client_ops, &s_client_actions, self,
                              on_connection)) {
        sb_mqtt_gateway_destroy(&self);
        return NULL;
    }
    if ((settings->session_store && !open_store(self))
        || (settings->ws_listen && !listen_ws(self))) {
        sb_mqtt_gateway_destroy(&self);
        return NULL;
    }
    uv_timer_init(self->base.loop, &self->sweep);
    self->sweep.data = self;
    uv_timer_start(&self->sweep, on_sweep, SWEEP_INTERVAL_MS, SWEEP_INTERVAL_MS);
    uv_unref((uv_handle_t *) &self->sweep);   /* the stop does not wait for it */
    return self;
}

void sb_mqtt_gateway_destroy(sb_mqtt_gateway_t **self_p)
{
    sb_mqtt_gateway_t *self = *self_p;
    if (!self)
        return;
    if (self->store)
        save_sessions(self, true);
    if (self->sweep.data)
        uv_close((uv_handle_t *) &self->sweep, NULL);
    if (self->ws_listener.data && !uv_is_closing((uv_handle_t *) &self->ws_listener))
        uv_close((uv_handle_t *) &self->ws_listener, NULL);
    sb_gateway_base_destroy(&self->base);
    zhashx_destroy(&self->sessions_by_id);
    zhashx_destroy(&self->shares);
    zhashx_destroy(&self->sessions);
    sb_mqtt_store_close(&self->store);
    sb_mqtt_buffer_release(&self->scratch);
    free(self);
    *self_p = NULL;
}

void sb_mqtt_gateway_run(sb_mqtt_gateway_t *self)
{
    sb_gateway_base_run(&self->base);
}
