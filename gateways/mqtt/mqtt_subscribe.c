/* mqtt_subscribe.c — SUBSCRIBE and UNSUBSCRIBE: each filter as the hub's
 * `sub` (its rules, its limits) with its MQTT options, and the shared
 * subscriptions ($share/GROUP/FILTER). */
#include "mqtt_internal.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "access.h"
#include "cmdline.h"
#include "id_map.h"
#include "log.h"
#include "reply_queue.h"

/* ---------------------------------------------------------------- SUBSCRIBE, UNSUBSCRIBE */

bool mqtt_is_own_filter(const char *filter)
{
    return strncmp(filter, OWN_PREFIX, strlen(OWN_PREFIX)) == 0;
}

/* `sub FILTER` at the hub for `session`: 0, or the SUBACK reason of a refusal. */
uint8_t mqtt_hub_subscribe(sb_mqtt_gateway_t *self, sb_mqtt_session_t *session, const char *filter)
{
    const char *status = mqtt_filter_command(self, session, "sub", filter);
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

uint8_t mqtt_join_share(sb_mqtt_gateway_t *self, sb_mqtt_session_t *member, const char *name)
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
        mqtt_hub_address("shared", name, address, sizeof address);
        sb_router_client_joined(self->base.router, group->serial, address);
    }
    act_as(self, group, member);
    uint8_t refused = mqtt_hub_subscribe(self, group, shared_filter(name));
    /* A refused member must not leave the group with its (lesser) rules:
     * the group acts as a member that is in it again. */
    sb_mqtt_session_t *earlier = refused && zlistx_size(group->members)
        ? zhashx_lookup(self->sessions, zlistx_first(group->members)) : NULL;
    if (earlier)
        act_as(self, group, earlier);
    void *serial = sb_id_map_key(member->serial);
    if (!refused && !zlistx_find(group->members, serial))
        zlistx_add_end(group->members, serial);
    if (zlistx_size(group->members) == 0)
        mqtt_end_session(self, group);
    return refused;
}

static void leave_share(sb_mqtt_gateway_t *self, sb_mqtt_session_t *member, const char *name)
{
    sb_mqtt_session_t *group = zhashx_lookup(self->shares, name);
    void *handle = group ? zlistx_find(group->members, sb_id_map_key(member->serial)) : NULL;
    if (handle)
        zlistx_delete(group->members, handle);
    if (group && zlistx_size(group->members) == 0)
        mqtt_end_session(self, group);
}

bool mqtt_is_share(const char *filter)
{
    return strncmp(filter, "$share/", strlen("$share/")) == 0;
}

void mqtt_leave_shares(sb_mqtt_gateway_t *self, sb_mqtt_session_t *session)
{
    if (session->members)
        return;
    zlistx_t *names = zlistx_new();
    for (sb_mqtt_filter_t *f = zlistx_first(session->filters); f; f = zlistx_next(session->filters))
        if (mqtt_is_share(f->filter))
            zlistx_add_end(names, f->filter);
    for (char *name = zlistx_first(names); name; name = zlistx_next(names))
        leave_share(self, session, name);
    zlistx_destroy(&names);
}

/* The member whose turn it is (a connected one first), with its subscription. */
sb_mqtt_session_t *mqtt_next_member(sb_mqtt_gateway_t *self, sb_mqtt_session_t *group,
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
    /* Every filter counts, its own $switchboard ones and shares too. */
    if (!sb_mqtt_session_match_filter(link->session, filter)
        && zlistx_size(link->session->filters) >= self->settings.max_subscriptions)
        return SB_MQTT_RC_QUOTA_EXCEEDED;
    uint8_t refused = shared ? mqtt_join_share(self, link->session, filter)
                      : mqtt_is_own_filter(filter) ? 0 : mqtt_hub_subscribe(self, link->session, filter);
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

void mqtt_on_subscribe(link_t *link, const sb_mqtt_subscribe_t *subscribe, bool add)
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
        else if (!mqtt_is_own_filter(item->filter.data))
            mqtt_filter_command(link->gateway, link->session, "unsub", item->filter.data);
    }
    sb_mqtt_packet_t packet = { .type = add ? SB_MQTT_SUBACK : SB_MQTT_UNSUBACK };
    packet.u.suback.packet_id = subscribe->packet_id;
    packet.u.suback.reasons = reasons;
    packet.u.suback.count = subscribe->count;
    mqtt_send_packet(link, &packet);
    free(reasons);
}
