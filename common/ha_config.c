/* ha_config.c — the `ha_*` keys of a [device NAME] section (see ha_config.h). */
#include "ha_config.h"

#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol.h"
#include "topic.h"
#include "utf8.h"

static const char *s_component_names[] = { "", "switch", "sensor", "binary_sensor", "button" };

const char *sb_ha_component_name(sb_ha_component_t component)
{
    return s_component_names[component];
}

static bool set_text(char **field, const char *value)
{
    free(*field);
    *field = strdup(value);
    return true;
}

static bool refuse(char *reason, size_t size, const char *format, const char *key,
                   const char *value)
{
    snprintf(reason, size, format, key, value);
    return false;
}

/* A word Home Assistant takes as a device class: lower-case letters and `_`. */
static bool is_class_word(const char *value)
{
    return *value && strspn(value, "abcdefghijklmnopqrstuvwxyz_") == strlen(value);
}

static bool set_component(sb_ha_config_t *self, const char *value, char *reason, size_t size)
{
    for (size_t i = SB_HA_SWITCH; i < sizeof s_component_names / sizeof *s_component_names; i++)
        if (strcmp(value, s_component_names[i]) == 0) {
            self->component = (sb_ha_component_t) i;
            return true;
        }
    return refuse(reason, size, "%s must be one of " SB_HA_COMPONENTS ", not '%s'",
                  "ha_component", value);
}

/* The state pattern compiles, and has at most one group. */
static bool set_pattern(sb_ha_config_t *self, const char *value, char *reason, size_t size)
{
    regex_t compiled;
    int status = regcomp(&compiled, value, REG_EXTENDED);
    if (status != 0) {
        char why[128];
        regerror(status, &compiled, why, sizeof why);
        snprintf(reason, size, "ha_state_pattern '%s' is not a regular expression: %s", value, why);
        return false;
    }
    size_t groups = compiled.re_nsub;
    regfree(&compiled);
    if (groups > 1)
        return refuse(reason, size, "%s '%s' may have one group (...) at most: it is the state",
                      "ha_state_pattern", value);
    return set_text(&self->state_pattern, value);
}

bool sb_ha_config_set(sb_ha_config_t *self, const char *key, const char *value, int line,
                      char *reason, size_t size)
{
    if (!self->line)
        self->line = line;
    if (!sb_utf8_is_valid(value, strlen(value)) || strpbrk(value, "\r\n"))
        return refuse(reason, size, "%s must be one line of UTF-8, not '%s'", key, value);
    if (strcmp(key, "ha_component") == 0)
        return set_component(self, value, reason, size);
    if (strcmp(key, "ha_state_pattern") == 0)
        return set_pattern(self, value, reason, size);
    if (strcmp(key, "ha_command_mode") == 0) {
        if (strcmp(value, "send") != 0 && strcmp(value, "call") != 0)
            return refuse(reason, size, "%s must be send or call, not '%s'", key, value);
        self->command_call = strcmp(value, "call") == 0;
        return true;
    }
    if (strcmp(key, "ha_device_class") == 0) {
        if (!is_class_word(value))
            return refuse(reason, size, "%s must be a Home Assistant device class (such as "
                          "temperature or outlet), not '%s'", key, value);
        return set_text(&self->device_class, value);
    }
    if (*value == '\0')
        return refuse(reason, size, "%s must not be empty%s", key, value);
    if (strncmp(key, "ha_command_o", 12) == 0 && !sb_device_line_is_safe(value))
        return refuse(reason, size, "%s: '%s': " SB_DEVICE_LINE_RULE, key, value);
    if (strcmp(key, "ha_state_topic") == 0 || strcmp(key, "ha_command_topic") == 0) {
        if (!sb_topic_is_valid(value) || (key[3] == 'c' && value[0] == '$'))
            return refuse(reason, size, "%s must be a topic (no + or #; a command topic does not "
                          "start with $), not '%s'", key, value);
        return set_text(key[3] == 's' ? &self->state_topic : &self->command_topic, value);
    }
    static const struct {
        const char *key;
        size_t offset;
    } texts[] = {
        { "ha_name", offsetof(sb_ha_config_t, name) },
        { "ha_unit", offsetof(sb_ha_config_t, unit) },
        { "ha_command_on", offsetof(sb_ha_config_t, command_on) },
        { "ha_command_off", offsetof(sb_ha_config_t, command_off) },
        { "ha_state_on", offsetof(sb_ha_config_t, state_on) },
        { "ha_state_off", offsetof(sb_ha_config_t, state_off) },
    };
    for (size_t i = 0; i < sizeof texts / sizeof *texts; i++)
        if (strcmp(key, texts[i].key) == 0)
            return set_text((char **) ((char *) self + texts[i].offset), value);
    return refuse(reason, size, "unknown key '%s' (known ha_ keys: ha_component, ha_name, ha_unit, "
                  "ha_device_class, ha_command_on, ha_command_off, ha_command_mode, "
                  "ha_state_pattern, ha_state_on, ha_state_off, ha_state_topic, ha_command_topic)%s",
                  key, "");
}

void sb_ha_config_free(sb_ha_config_t *self)
{
    free(self->name);
    free(self->unit);
    free(self->device_class);
    free(self->command_on);
    free(self->command_off);
    free(self->state_pattern);
    free(self->state_on);
    free(self->state_off);
    free(self->state_topic);
    free(self->command_topic);
}

static bool misfit(char *reason, size_t size, const char *text, sb_ha_component_t component)
{
    snprintf(reason, size, text, sb_ha_component_name(component));
    return false;
}

/* What only a device's entity has, or only a topic's. */
static bool check_source(const sb_ha_config_t *self, char *reason, size_t size)
{
    sb_ha_component_t component = self->component;
    bool commands = component == SB_HA_SWITCH || component == SB_HA_BUTTON;
    if (!self->topic) {
        if (self->state_topic || self->command_topic)
            return misfit(reason, size, "ha_state_topic and ha_command_topic are for an [ha NAME] "
                          "section (a device's topics are the hub's own)%s", SB_HA_NONE);
        if (component == SB_HA_SWITCH && (!self->command_on || !self->command_off))
            return misfit(reason, size, "a %s needs ha_command_on and ha_command_off", component);
        if (component == SB_HA_BUTTON && !self->command_on)
            return misfit(reason, size, "a %s needs ha_command_on (the line a press writes)",
                          component);
        return true;
    }
    if (self->state_pattern || self->command_call)
        return misfit(reason, size, "a topic's state is its payload: no ha_state_pattern or "
                      "ha_command_mode%s", SB_HA_NONE);
    if (!commands && !self->state_topic)
        return misfit(reason, size, "a %s of a topic needs ha_state_topic", component);
    if (commands && !self->command_topic)
        return misfit(reason, size, "a %s of a topic needs ha_command_topic", component);
    if (component == SB_HA_BUTTON && self->state_topic)
        return misfit(reason, size, "a %s has no state: no ha_state_topic", component);
    if (!commands && self->command_topic)
        return misfit(reason, size, "a %s takes no commands: no ha_command_topic", component);
    return true;
}

bool sb_ha_config_check(const sb_ha_config_t *self, char *reason, size_t size)
{
    sb_ha_component_t component = self->component;
    if (!self->line && !self->topic)
        return true;
    if (component == SB_HA_NONE)
        return misfit(reason, size, "ha_ keys need ha_component (" SB_HA_COMPONENTS ")%s",
                      component);
    bool commands = component == SB_HA_SWITCH || component == SB_HA_BUTTON;
    bool on_off = component == SB_HA_SWITCH || component == SB_HA_BINARY_SENSOR;
    if (component == SB_HA_BUTTON && self->command_off)
        return misfit(reason, size, "a %s has no ha_command_off", component);
    if (!commands && (self->command_on || self->command_off || self->command_call))
        return misfit(reason, size, "a %s sends no commands: no ha_command_ keys", component);
    if (!on_off && (self->state_on || self->state_off))
        return misfit(reason, size, "a %s has no on and off states: no ha_state_on or "
                      "ha_state_off", component);
    if (component == SB_HA_BUTTON && self->state_pattern)
        return misfit(reason, size, "a %s has no state: no ha_state_pattern", component);
    if (component != SB_HA_SENSOR && self->unit)
        return misfit(reason, size, "ha_unit is for a sensor, not a %s", component);
    return check_source(self, reason, size);
}

bool sb_ha_id_is_valid(const char *name, bool allow_underscore)
{
    const char *allowed = allow_underscore
        ? "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"
        : "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-";
    size_t length = strlen(name);
    return length >= 1 && length <= 64 && strspn(name, allowed) == length;
}
