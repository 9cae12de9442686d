/* ha_discovery.c — Home Assistant MQTT discovery for the hub's devices
 * (see ha_discovery.h). */
#include "ha_discovery.h"

#include <inttypes.h>
#include <jansson.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmdline.h"
#include "log.h"
#include "topic.h"
#include "sb_version.h"

#define PREFIX_MAX 64          /* keeps every topic below SB_TOPIC_MAX */
#define OBJECT_PREFIX "switchboard_"
#define TOPIC_ROOT "switchboard/"

typedef struct {
    const char *name;                      /* of the [device NAME] or [ha NAME] */
    const sb_ha_config_t *ha;              /* ha->topic: an [ha NAME], not a device */
    regex_t pattern;
    bool has_pattern;
    bool online;
    char config_topic[SB_TOPIC_MAX + 1];
    char base[SB_TOPIC_MAX + 1];           /* switchboard/HUB/NAME */
} entity_t;

struct sb_ha_discovery {
    char hub[65];
    char prefix[PREFIX_MAX + 1];
    char status_topic[PREFIX_MAX + 8];
    char command_filter[SB_TOPIC_MAX + 1];   /* switchboard/HUB/+/set */
    entity_t *entities;
    size_t count;
    uint64_t ignored;                        /* commands of no device or payload we know */
    const sb_ha_ops_t *ops;
    void *arg;
};

/* ---------------------------------------------------------------- the config */

static void topic_of(char *buffer, size_t size, const char *hub, const char *name,
                     const char *leaf)
{
    snprintf(buffer, size, TOPIC_ROOT "%s/%s/%s", hub, name, leaf);
}

static void set_text(json_t *object, const char *key, const char *value)
{
    if (value)
        json_object_set_new(object, key, json_string(value));
}

static void set_topic(json_t *object, const char *key, const char *hub, const char *name,
                      const char *leaf)
{
    char topic[SB_TOPIC_MAX + 1];
    topic_of(topic, sizeof topic, hub, name, leaf);
    set_text(object, key, topic);
}

/* The entity's name is null: Home Assistant names it after its device. */
static json_t *device_block(const char *name, const sb_ha_config_t *ha, const char *id)
{
    json_t *block = json_object();
    json_t *identifiers = json_array();
    json_array_append_new(identifiers, json_string(id));
    json_object_set_new(block, "identifiers", identifiers);
    set_text(block, "name", ha->name ? ha->name : name);
    set_text(block, "manufacturer", "switchboard");
    set_text(block, "model", ha->topic ? "switchboard topic" : "switchboard device");
    set_text(block, "sw_version", SB_VERSION);
    return block;
}

/* A device's topics are the hub's (switchboard/HUB/NAME/...), with its
 * availability; a topic's are its own, without one. */
static void set_topics(json_t *root, const char *name, const sb_ha_config_t *ha, const char *hub)
{
    bool commands = ha->component == SB_HA_SWITCH || ha->component == SB_HA_BUTTON;
    if (ha->topic) {
        set_text(root, "state_topic", ha->state_topic);
        set_text(root, "command_topic", ha->command_topic);
        return;
    }
    set_topic(root, "availability_topic", hub, name, "availability");
    set_text(root, "payload_available", "online");
    set_text(root, "payload_not_available", "offline");
    if (!commands || ha->state_pattern)
        set_topic(root, "state_topic", hub, name, "state");
    if (commands)
        set_topic(root, "command_topic", hub, name, "set");
}

char *sb_ha_discovery_json(const char *name, const sb_ha_config_t *ha, const char *hub)
{
    if (ha->component == SB_HA_NONE)
        return NULL;
    char id[160];
    snprintf(id, sizeof id, OBJECT_PREFIX "%s_%s", hub, name);
    json_t *root = json_object();
    json_object_set_new(root, "name", json_null());
    set_text(root, "unique_id", id);
    set_text(root, "object_id", id);
    set_topics(root, name, ha, hub);
    /* What Home Assistant publishes: to a device, the hub maps it to a line. */
    const char *on = ha->topic && ha->command_on ? ha->command_on : "ON";
    const char *off = ha->topic && ha->command_off ? ha->command_off : "OFF";
    if (ha->component == SB_HA_SWITCH) {
        set_text(root, "payload_on", on);
        set_text(root, "payload_off", off);
        set_text(root, "state_on", ha->state_on ? ha->state_on : "ON");
        set_text(root, "state_off", ha->state_off ? ha->state_off : "OFF");
    }
    if (ha->component == SB_HA_BINARY_SENSOR) {
        set_text(root, "payload_on", ha->state_on ? ha->state_on : "ON");
        set_text(root, "payload_off", ha->state_off ? ha->state_off : "OFF");
    }
    if (ha->component == SB_HA_BUTTON)
        set_text(root, "payload_press", ha->topic ? ha->command_on : "PRESS");
    set_text(root, "unit_of_measurement", ha->unit);
    set_text(root, "device_class", ha->device_class);
    json_object_set_new(root, "device", device_block(name, ha, id));
    json_t *origin = json_object();
    set_text(origin, "name", "switchboard");
    set_text(origin, "sw_version", SB_VERSION);
    json_object_set_new(root, "origin", origin);
    char *text = json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(root);
    return text;
}

/* ---------------------------------------------------------------- the object */

static bool settings_are_usable(const sb_ha_settings_t *settings)
{
    if (!sb_ha_id_is_valid(settings->hub, false)) {
        sb_log_error("the hub name must be 1 to 64 letters, digits or -", "hub_name=\"%.80s\"",
                     settings->hub);
        return false;
    }
    if (strlen(settings->prefix) > PREFIX_MAX || !sb_topic_is_valid(settings->prefix)
        || settings->prefix[0] == '$') {
        sb_log_error("the Home Assistant prefix must be a topic of at most 64 bytes",
                     "ha_prefix=\"%.80s\"", settings->prefix);
        return false;
    }
    return true;
}

static void add_entity(sb_ha_discovery_t *self, const char *name, const sb_ha_config_t *ha)
{
    if (ha->component == SB_HA_NONE)
        return;
    entity_t *entity = &self->entities[self->count++];
    entity->name = name;
    entity->ha = ha;
    snprintf(entity->config_topic, sizeof entity->config_topic, "%s/%s/" OBJECT_PREFIX "%s_%s/config",
             self->prefix, sb_ha_component_name(ha->component), self->hub, name);
    snprintf(entity->base, sizeof entity->base, TOPIC_ROOT "%s/%s", self->hub, name);
    /* Checked by config_check.c already: it compiles. */
    entity->has_pattern = ha->state_pattern
                          && regcomp(&entity->pattern, ha->state_pattern, REG_EXTENDED) == 0;
}

sb_ha_discovery_t *sb_ha_discovery_new(const sb_config_t *config, const sb_ha_settings_t *settings,
                                       const sb_ha_ops_t *ops, void *arg)
{
    if (!settings_are_usable(settings))
        return NULL;
    sb_ha_discovery_t *self = calloc(1, sizeof *self);
    snprintf(self->hub, sizeof self->hub, "%s", settings->hub);
    snprintf(self->prefix, sizeof self->prefix, "%s", settings->prefix);
    snprintf(self->status_topic, sizeof self->status_topic, "%s/status", self->prefix);
    snprintf(self->command_filter, sizeof self->command_filter, TOPIC_ROOT "%s/+/set", self->hub);
    self->ops = ops;
    self->arg = arg;
    size_t devices = sb_config_device_count(config), topics = sb_config_ha_topic_count(config);
    self->entities = calloc(devices + topics + 1, sizeof *self->entities);
    for (size_t i = 0; i < devices; i++)
        add_entity(self, sb_config_device_at(config, i)->name, &sb_config_device_at(config, i)->ha);
    for (size_t i = 0; i < topics; i++)
        add_entity(self, sb_config_ha_topic_at(config, i)->name,
                   &sb_config_ha_topic_at(config, i)->ha);
    return self;
}

void sb_ha_discovery_destroy(sb_ha_discovery_t **self_p)
{
    sb_ha_discovery_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->count; i++)
        if (self->entities[i].has_pattern)
            regfree(&self->entities[i].pattern);
    free(self->entities);
    free(self);
    *self_p = NULL;
}

size_t sb_ha_discovery_count(const sb_ha_discovery_t *self)
{
    return self->count;
}

/* The entity of a device (an [ha NAME] topic of the same name is not one). */
static entity_t *find_device(sb_ha_discovery_t *self, const char *device)
{
    for (size_t i = 0; i < self->count; i++)
        if (!self->entities[i].ha->topic && strcmp(self->entities[i].name, device) == 0)
            return &self->entities[i];
    return NULL;
}

static void publish_leaf(sb_ha_discovery_t *self, const entity_t *entity, const char *leaf,
                         const char *payload)
{
    char topic[SB_TOPIC_MAX + 16];
    snprintf(topic, sizeof topic, "%s/%s", entity->base, leaf);
    self->ops->publish(self->arg, topic, payload);
}

static void publish_availability(sb_ha_discovery_t *self, const entity_t *entity)
{
    if (!entity->ha->topic)
        publish_leaf(self, entity, "availability", entity->online ? "online" : "offline");
}

/* Every config, then every availability (Home Assistant subscribes to
 * the availability topic once it has read the config). */
static void announce(sb_ha_discovery_t *self)
{
    for (size_t i = 0; i < self->count; i++) {
        char *json = sb_ha_discovery_json(self->entities[i].name, self->entities[i].ha, self->hub);
        if (json)
            self->ops->publish(self->arg, self->entities[i].config_topic, json);
        free(json);
    }
    for (size_t i = 0; i < self->count; i++)
        publish_availability(self, &self->entities[i]);
}

void sb_ha_discovery_start(sb_ha_discovery_t *self)
{
    self->ops->subscribe(self->arg, self->status_topic);
    if (self->count)
        self->ops->subscribe(self->arg, self->command_filter);
    announce(self);
    char filter[PREFIX_MAX + 16];
    snprintf(filter, sizeof filter, "%s/+/+/config", self->prefix);
    self->ops->list_retained(self->arg, filter);
    if (self->count)
        sb_log_info("announced to Home Assistant", "entities=%zu prefix=%s hub=%s", self->count,
                    self->prefix, self->hub);
}

/* ON / OFF / PRESS on switchboard/HUB/NAME/set: the line the config names. */
static void run_command(sb_ha_discovery_t *self, const char *topic, const char *payload)
{
    char name[SB_TOPIC_MAX + 1];
    size_t root = strlen(TOPIC_ROOT) + strlen(self->hub) + 1;
    snprintf(name, sizeof name, "%s", topic + root);
    char *slash = strchr(name, '/');
    if (slash)
        *slash = '\0';
    entity_t *entity = find_device(self, name);
    const sb_ha_config_t *ha = entity ? entity->ha : NULL;
    const char *line = NULL;
    if (ha && ha->component == SB_HA_SWITCH)
        line = strcmp(payload, "ON") == 0 ? ha->command_on
               : strcmp(payload, "OFF") == 0 ? ha->command_off : NULL;
    else if (ha && ha->component == SB_HA_BUTTON && strcmp(payload, "PRESS") == 0)
        line = ha->command_on;
    char quoted_topic[SB_LOG_QUOTE_MAX], quoted[SB_LOG_QUOTE_MAX];
    if (!line) {   /* anyone may publish there: logged at powers of two only */
        uint64_t ignored = ++self->ignored;
        if ((ignored & (ignored - 1)) == 0)
            sb_log_warn("Home Assistant command ignored: no such device or payload",
                        "topic=%s payload=%s ignored_total=%" PRIu64,
                        sb_log_quote(quoted_topic, topic), sb_log_quote(quoted, payload), ignored);
        return;
    }
    sb_log_info("Home Assistant command", "device=%s payload=%s", entity->name, payload);
    self->ops->command(self->arg, entity->name, line, ha->command_call);
}

void sb_ha_discovery_event(sb_ha_discovery_t *self, const char *topic, const char *payload)
{
    if (strcmp(topic, self->status_topic) == 0) {
        if (strcmp(payload, "online") == 0) {
            sb_log_info("Home Assistant is online: announcing again", "entities=%zu", self->count);
            announce(self);
        }
        return;
    }
    if (sb_topic_matches(self->command_filter, topic))
        run_command(self, topic, payload);
}

/* PREFIX/COMPONENT/switchboard_HUB_NAME/config of this hub (a hub name has
 * no `_`, so another hub's ids never start so). */
static bool is_ours(const sb_ha_discovery_t *self, const char *topic)
{
    char start[PREFIX_MAX + 2], object[96];
    snprintf(start, sizeof start, "%s/", self->prefix);
    snprintf(object, sizeof object, "/" OBJECT_PREFIX "%s_", self->hub);
    if (strncmp(topic, start, strlen(start)) != 0)
        return false;
    const char *component_end = strchr(topic + strlen(start), '/');
    return component_end && strncmp(component_end, object, strlen(object)) == 0;
}

static bool is_configured(const sb_ha_discovery_t *self, const char *topic)
{
    for (size_t i = 0; i < self->count; i++)
        if (strcmp(self->entities[i].config_topic, topic) == 0)
            return true;
    return false;
}

/* Clears the configs this hub announced before and no longer has. */
void sb_ha_discovery_retained(sb_ha_discovery_t *self, const char *reply)
{
    sb_cmdline_status_t status;
    sb_cmdline_t *words = sb_cmdline_parse(reply, strlen(reply), &status, NULL);
    if (!words) {
        sb_log_warn("cannot read the broker's list of discovery configs", "reason=\"%s\"",
                    sb_cmdline_status_text(status));
        return;
    }
    for (size_t i = 1; i + 1 < words->argc; i += 2) {
        const char *topic = words->argv[i], *value = words->argv[i + 1];
        if (*value && is_ours(self, topic) && !is_configured(self, topic)) {
            self->ops->publish(self->arg, topic, "");
            sb_log_info("Home Assistant config removed: no longer configured", "topic=%s", topic);
        }
    }
    if (words->argc > 1 && strcmp(words->argv[words->argc - 1], "...") == 0)
        sb_log_warn("more discovery configs than one `topics` lists: some old ones may stay",
                    NULL);
    sb_cmdline_destroy(&words);
}

void sb_ha_discovery_link_state(sb_ha_discovery_t *self, const char *device, const char *state)
{
    entity_t *entity = find_device(self, device);
    bool online = strcmp(state, "connected") == 0;
    if (!entity || entity->online == online)
        return;
    entity->online = online;
    publish_availability(self, entity);
}

/* The state in `line`: the pattern's group, else its whole match; with no
 * pattern, the whole line. */
static bool state_of(const entity_t *entity, const char *line, char *state, size_t size)
{
    if (!entity->has_pattern) {
        snprintf(state, size, "%s", line);
        return true;
    }
    regmatch_t match[2];
    if (regexec(&entity->pattern, line, 2, match, 0) != 0)
        return false;
    const regmatch_t *taken = entity->pattern.re_nsub >= 1 && match[1].rm_so >= 0 ? &match[1]
                                                                                : &match[0];
    snprintf(state, size, "%.*s", (int) (taken->rm_eo - taken->rm_so), line + taken->rm_so);
    return true;
}

void sb_ha_discovery_line(sb_ha_discovery_t *self, const char *device, const char *line)
{
    entity_t *entity = find_device(self, device);
    if (!entity)
        return;
    sb_ha_component_t component = entity->ha->component;
    if (component == SB_HA_BUTTON || (component == SB_HA_SWITCH && !entity->has_pattern))
        return;   /* no state topic */
    size_t size = strlen(line) + 1;
    char *state = malloc(size);
    if (state_of(entity, line, state, size))
        publish_leaf(self, entity, "state", state);
    free(state);
}

void sb_ha_discovery_stop(sb_ha_discovery_t *self)
{
    for (size_t i = 0; i < self->count; i++) {
        self->entities[i].online = false;
        publish_availability(self, &self->entities[i]);
    }
}
