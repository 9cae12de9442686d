/* mqtt_session.c — one MQTT session's state (see mqtt_session.h). */
#include "mqtt_session.h"

#include <stdlib.h>
#include <string.h>

#include "id_map.h"
#include "log.h"
#include "mqtt_packet.h"
#include "topic.h"

/* ---------------------------------------------------------------- messages */

sb_mqtt_message_t *sb_mqtt_message_new(const char *topic, const char *payload, size_t length,
                                       uint8_t qos, bool retain)
{
    sb_mqtt_message_t *self = calloc(1, sizeof *self);
    self->topic = strdup(topic);
    self->payload = malloc(length + 1);
    memcpy(self->payload, payload, length);
    self->payload[length] = '\0';
    self->length = length;
    self->qos = qos;
    self->retain = retain;
    return self;
}

void sb_mqtt_message_destroy(sb_mqtt_message_t **self_p)
{
    sb_mqtt_message_t *self = *self_p;
    if (!self)
        return;
    free(self->topic);
    free(self->payload);
    free(self->correlation);
    free(self->status);
    free(self->relayed);
    free(self);
    *self_p = NULL;
}

static void destroy_message(void **item)
{
    sb_mqtt_message_destroy((sb_mqtt_message_t **) item);
}

static void destroy_filter(void **item)
{
    sb_mqtt_filter_t *filter = *item;
    if (filter)
        free(filter->filter);
    free(filter);
    *item = NULL;
}

/* ---------------------------------------------------------------- lifecycle */

sb_mqtt_session_t *sb_mqtt_session_new(const char *client_id, uint64_t serial, size_t max_queued)
{
    sb_mqtt_session_t *self = calloc(1, sizeof *self);
    self->client_id = strdup(client_id);
    self->serial = serial;
    self->max_queued = max_queued;
    self->filters = zlistx_new();
    zlistx_set_destructor(self->filters, destroy_filter);
    self->queue = zlistx_new();
    zlistx_set_destructor(self->queue, destroy_message);
    self->in_flight = zlistx_new();
    zlistx_set_destructor(self->in_flight, destroy_message);
    self->awaiting_release = sb_id_map_new();
    self->in_flight_ids = sb_id_map_new();
    self->next_packet_id = 1;
    sb_reply_queue_init(&self->slots, free);
    return self;
}

void sb_mqtt_session_destroy(sb_mqtt_session_t **self_p)
{
    sb_mqtt_session_t *self = *self_p;
    if (!self)
        return;
    sb_reply_queue_clear(&self->slots);
    zlistx_destroy(&self->members);
    zlistx_destroy(&self->filters);
    zlistx_destroy(&self->queue);
    zlistx_destroy(&self->in_flight);
    zhashx_destroy(&self->awaiting_release);
    zhashx_destroy(&self->in_flight_ids);
    sb_mqtt_message_destroy(&self->will);
    free(self->client_id);
    free(self->token);
    free(self);
    *self_p = NULL;
}

/* ---------------------------------------------------------------- subscriptions */

static void *find_filter(const sb_mqtt_session_t *self, const char *text)
{
    for (sb_mqtt_filter_t *filter = zlistx_first(self->filters); filter;
         filter = zlistx_next(self->filters))
        if (strcmp(filter->filter, text) == 0)
            return zlistx_cursor(self->filters);
    return NULL;
}

bool sb_mqtt_session_subscribe(sb_mqtt_session_t *self, const sb_mqtt_filter_t *filter)
{
    bool replaced = false;
    void *handle = find_filter(self, filter->filter);
    if (handle) {
        zlistx_delete(self->filters, handle);
        replaced = true;
    }
    self->dirty = true;
    sb_mqtt_filter_t *copy = malloc(sizeof *copy);
    *copy = *filter;
    copy->filter = strdup(filter->filter);
    zlistx_add_end(self->filters, copy);
    return replaced;
}

bool sb_mqtt_session_match_filter(const sb_mqtt_session_t *self, const char *filter)
{
    return find_filter(self, filter) != NULL;
}

bool sb_mqtt_session_unsubscribe(sb_mqtt_session_t *self, const char *filter)
{
    void *handle = find_filter(self, filter);
    if (handle)
        zlistx_delete(self->filters, handle);
    self->dirty |= handle != NULL;
    return handle != NULL;
}

const sb_mqtt_filter_t *sb_mqtt_session_match(const sb_mqtt_session_t *self, const char *topic,
                                              bool retained, bool own)
{
    const sb_mqtt_filter_t *best = NULL;
    for (sb_mqtt_filter_t *filter = zlistx_first(self->filters); filter;
         filter = zlistx_next(self->filters))
        if (sb_topic_matches(filter->filter, topic) && !(retained && filter->skip_retained)
            && !(own && filter->no_local)
            && (!best || filter->qos > best->qos))
            best = filter;
    return best;
}

/* ---------------------------------------------------------------- messages to the client */

/* The oldest QoS 0 message queued, else the oldest. */
static void drop_one(sb_mqtt_session_t *self)
{
    void *victim = NULL;
    for (sb_mqtt_message_t *message = zlistx_first(self->queue); message && !victim;
         message = zlistx_next(self->queue))
        if (message->qos == 0)
            victim = zlistx_cursor(self->queue);
    if (!victim)
        victim = zlistx_first(self->queue) ? zlistx_cursor(self->queue) : NULL;
    if (victim) {
        zlistx_delete(self->queue, victim);
        self->dropped++;
    }
}

void sb_mqtt_session_push(sb_mqtt_session_t *self, sb_mqtt_message_t *message)
{
    self->dirty = true;
    if (self->max_queued == 0) {
        sb_mqtt_message_destroy(&message);
        self->dropped++;
        return;
    }
    while (zlistx_size(self->queue) >= self->max_queued)
        drop_one(self);
    zlistx_add_end(self->queue, message);
}

/* Packet ids are 16 bits and 0 is none: no more can be in flight. */
#define MAX_IN_FLIGHT 65535

static void add_in_flight(sb_mqtt_session_t *self, sb_mqtt_message_t *message)
{
    void *handle = zlistx_add_end(self->in_flight, message);
    zhashx_update(self->in_flight_ids, sb_id_map_key(message->packet_id), handle);
}

/* The next packet id not in flight: a lookup each, and fewer tries than
 * there are messages in flight. */
static uint16_t new_packet_id(sb_mqtt_session_t *self)
{
    uint16_t id;
    do {
        id = self->next_packet_id++;
        if (self->next_packet_id == 0)
            self->next_packet_id = 1;
    } while (zhashx_lookup(self->in_flight_ids, sb_id_map_key(id)));
    return id;
}

sb_mqtt_message_t *sb_mqtt_session_next(sb_mqtt_session_t *self, size_t window, bool *owned)
{
    sb_mqtt_message_t *message = zlistx_first(self->queue);
    size_t in_flight = zlistx_size(self->in_flight);
    if (!message || (message->qos > 0 && (in_flight >= window || in_flight >= MAX_IN_FLIGHT)))
        return NULL;
    zlistx_detach_cur(self->queue);
    self->dirty = true;
    *owned = message->qos == 0;
    if (message->qos > 0) {
        bool resent = message->sent && message->packet_id
                      && !zhashx_lookup(self->in_flight_ids, sb_id_map_key(message->packet_id));
        if (!resent)
            message->packet_id = new_packet_id(self);
        add_in_flight(self, message);
    }
    return message;
}

void sb_mqtt_session_restore(sb_mqtt_session_t *self, sb_mqtt_message_t *message, bool in_flight)
{
    if (in_flight && message->packet_id
        && !zhashx_lookup(self->in_flight_ids, sb_id_map_key(message->packet_id)))
        add_in_flight(self, message);
    else
        zlistx_add_end(self->queue, message);
}

void sb_mqtt_session_fit_window(sb_mqtt_session_t *self, size_t window)
{
    zlistx_t *back = zlistx_new();   /* handles in in_flight, oldest first */
    size_t kept = 0;
    for (sb_mqtt_message_t *message = zlistx_first(self->in_flight); message;
         message = zlistx_next(self->in_flight)) {
        if (message->released || kept < window)
            kept++;
        else
            zlistx_add_end(back, zlistx_cursor(self->in_flight));
    }
    /* Newest first onto the head of the queue keeps their order. */
    for (void *handle = zlistx_last(back); handle; handle = zlistx_prev(back)) {
        sb_mqtt_message_t *message = zlistx_detach(self->in_flight, handle);
        zhashx_delete(self->in_flight_ids, sb_id_map_key(message->packet_id));
        zlistx_add_start(self->queue, message);
        self->dirty = true;
    }
    zlistx_destroy(&back);
}

sb_mqtt_message_t *sb_mqtt_session_find(const sb_mqtt_session_t *self, uint16_t packet_id)
{
    void *handle = zhashx_lookup(self->in_flight_ids, sb_id_map_key(packet_id));
    return handle ? zlistx_handle_item(handle) : NULL;
}

void sb_mqtt_session_forget(sb_mqtt_session_t *self, uint16_t packet_id)
{
    void *handle = zhashx_lookup(self->in_flight_ids, sb_id_map_key(packet_id));
    if (!handle)
        return;
    zhashx_delete(self->in_flight_ids, sb_id_map_key(packet_id));
    zlistx_delete(self->in_flight, handle);
    self->dirty = true;
}

bool sb_mqtt_session_acknowledge(sb_mqtt_session_t *self, int type, uint16_t packet_id)
{
    sb_mqtt_message_t *message = sb_mqtt_session_find(self, packet_id);
    if (!message)
        return false;
    bool fits = (type == SB_MQTT_PUBACK && message->qos == 1)
                || (type == SB_MQTT_PUBREC && message->qos == 2 && !message->released)
                || (type == SB_MQTT_PUBCOMP && message->qos == 2 && message->released);
    if (!fits)
        return false;
    self->dirty = true;
    if (type == SB_MQTT_PUBREC)
        message->released = true;
    else
        sb_mqtt_session_forget(self, packet_id);
    return true;
}

size_t sb_mqtt_session_in_flight(const sb_mqtt_session_t *self)
{
    return zlistx_size(self->in_flight);
}

/* ---------------------------------------------------------------- QoS 2 from the client */

bool sb_mqtt_session_awaits_release(const sb_mqtt_session_t *self, uint16_t packet_id)
{
    return zhashx_lookup(self->awaiting_release, sb_id_map_key(packet_id)) != NULL;
}

void sb_mqtt_session_await_release(sb_mqtt_session_t *self, uint16_t packet_id)
{
    zhashx_update(self->awaiting_release, sb_id_map_key(packet_id), (void *) 1);
    self->dirty = true;
}

bool sb_mqtt_session_release(sb_mqtt_session_t *self, uint16_t packet_id)
{
    bool waited = sb_mqtt_session_awaits_release(self, packet_id);
    zhashx_delete(self->awaiting_release, sb_id_map_key(packet_id));
    self->dirty |= waited;
    return waited;
}

/* ---------------------------------------------------------------- will */

void sb_mqtt_session_set_will(sb_mqtt_session_t *self, sb_mqtt_message_t *will, uint32_t delay_s)
{
    sb_mqtt_message_destroy(&self->will);
    self->dirty = true;
    self->will = will;
    self->will_delay_s = delay_s;
    self->will_at_ms = 0;
}

sb_mqtt_message_t *sb_mqtt_session_take_will(sb_mqtt_session_t *self)
{
    sb_mqtt_message_t *will = self->will;
    self->dirty |= will != NULL;
    self->will = NULL;
    self->will_at_ms = 0;
    if (will && strlen(will->payload) != will->length) {
        char quoted[SB_LOG_QUOTE_MAX];   /* a topic may hold spaces */
        sb_log_warn("mqtt will not published: its payload has a NUL byte, hub payloads are text",
                    "client=%s topic=%s", self->client_id, sb_log_quote(quoted, will->topic));
        sb_mqtt_message_destroy(&will);
    }
    return will;
}
