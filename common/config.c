/* config.c — reads the INI config file with inih (see config.h).
 *
 * inih reports no line numbers to the handler, so the file is fed through a
 * reader that counts the lines it hands out: when the handler runs, the
 * count is the line being handled. */
#include "config.h"

#include <errno.h>
#include <ini.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bridge_config.h"
#include "envelope.h"
#include "protocol.h"
#include "seconds.h"

typedef struct {
    char *section;
    char *key;
    char *value;
    int line;
} config_value_t;

struct sb_config {
    char *path;
    config_value_t *values;
    size_t value_count;
    sb_service_config_t *services;
    size_t service_count;
    sb_command_config_t *commands;
    size_t command_count;
    sb_device_config_t *devices;
    size_t device_count;
    sb_token_config_t *tokens;
    size_t token_count;
    sb_bridge_config_t *bridges;
    size_t bridge_count;
    sb_token_config_t *anonymous;   /* NULL: no [anonymous] section */
    sb_ha_topic_config_t *ha_topics;
    size_t ha_topic_count;
};

/* Sections that hold one program's settings; their keys are read through options.h. */
static const char *s_program_sections[] = {
    "broker", "workers", "gateway-tcp", "gateway-ws", "gateway-mqtt", "gateway-device", "bridges", "launcher", "log", "store", "curve", "hub", NULL
};

typedef struct {
    sb_config_t *config;
    FILE *file;
    int line;
    char *errors;        /* every problem found, one per line */
    size_t errors_length;
} parse_state_t;

sb_config_t *sb_config_new(void)
{
    return calloc(1, sizeof(sb_config_t));
}

static void token_free(sb_token_config_t *token)
{
    free(token->name);
    free(token->secret_sha256);
    free(token->secret);
    free(token->commands);
    free(token->publish);
    free(token->subscribe);
}

void sb_config_destroy(sb_config_t **self_p)
{
    sb_config_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->value_count; i++) {
        free(self->values[i].section);
        free(self->values[i].key);
        free(self->values[i].value);
    }
    for (size_t i = 0; i < self->service_count; i++)
        free(self->services[i].name);
    for (size_t i = 0; i < self->command_count; i++) {
        free(self->commands[i].name);
        free(self->commands[i].service);
        free(self->commands[i].exec);
        free(self->commands[i].description);
    }
    for (size_t i = 0; i < self->device_count; i++) {
        sb_device_config_t *device = &self->devices[i];
        free(device->name);
        free(device->connect);
        free(device->serial);
        free(device->token);
        free(device->on_connect);
        free(device->keepalive);
        sb_ha_config_free(&device->ha);
    }
    for (size_t i = 0; i < self->token_count; i++)
        token_free(&self->tokens[i]);
    for (size_t i = 0; i < self->ha_topic_count; i++) {
        free(self->ha_topics[i].name);
        sb_ha_config_free(&self->ha_topics[i].ha);
    }
    free(self->ha_topics);
    if (self->anonymous)
        token_free(self->anonymous);
    free(self->anonymous);
    free(self->tokens);
    for (size_t i = 0; i < self->bridge_count; i++)
        sb_bridge_config_free(&self->bridges[i]);
    free(self->bridges);
    free(self->values);
    free(self->services);
    free(self->commands);
    free(self->devices);
    free(self->path);
    free(self);
    *self_p = NULL;
}

static int fail(parse_state_t *state, const char *format, ...)
    __attribute__((format(printf, 2, 3)));

static bool parse_int(const char *text, long min, long max, long *out);

/* Records a problem at the current line and goes on: one reading of the
 * file reports all of them. Returns 1 so inih carries on too. */
static int fail(parse_state_t *state, const char *format, ...)
{
    char reason[512];
    va_list args;
    va_start(args, format);
    vsnprintf(reason, sizeof reason, format, args);
    va_end(args);
    char line[768];
    int length = snprintf(line, sizeof line, "%s%s:%d: %s", state->errors ? "\n" : "",
                          state->config->path, state->line, reason);
    char *grown = realloc(state->errors, state->errors_length + (size_t) length + 1);
    if (grown) {
        memcpy(grown + state->errors_length, line, (size_t) length + 1);
        state->errors = grown;
        state->errors_length += (size_t) length;
    }
    return 1;
}

/* Grows an array by one zeroed element; returns it, or NULL when out of memory. */
static void *append(void **array, size_t *count, size_t size)
{
    void *grown = realloc(*array, (*count + 1) * size);
    if (!grown)
        return NULL;
    *array = grown;
    void *slot = (char *) grown + *count * size;
    memset(slot, 0, size);
    (*count)++;
    return slot;
}

/* "service slow" -> kind "service", name "slow"; false if there is no name. */
static bool split_section(const char *section, const char *kind, const char **name_out)
{
    size_t length = strlen(kind);
    if (strncmp(section, kind, length) != 0 || section[length] != ' ')
        return false;
    const char *name = section + length;
    while (*name == ' ')
        name++;
    *name_out = name;
    return *name != '\0';
}

static bool parse_int(const char *text, long min, long max, long *out)
{
    char *end;
    errno = 0;
    long value = strtol(text, &end, 10);
    if (errno || end == text || *end || value < min || value > max)
        return false;
    *out = value;
    return true;
}

/* yes/true or no/false. */
static bool parse_yes_no(const char *text, bool *out)
{
    *out = strcmp(text, "yes") == 0 || strcmp(text, "true") == 0;
    return *out || strcmp(text, "no") == 0 || strcmp(text, "false") == 0;
}

static sb_service_config_t *service_entry(sb_config_t *self, const char *name)
{
    for (size_t i = 0; i < self->service_count; i++)
        if (strcmp(self->services[i].name, name) == 0)
            return &self->services[i];
    sb_service_config_t *entry = append((void **) &self->services, &self->service_count,
                                        sizeof *entry);
    if (entry) {
        entry->name = strdup(name);
        entry->workers = -1;
        entry->prefetch = -1;
    }
    return entry;
}

static sb_command_config_t *command_entry(sb_config_t *self, const char *name, int line)
{
    for (size_t i = 0; i < self->command_count; i++)
        if (strcmp(self->commands[i].name, name) == 0)
            return &self->commands[i];
    sb_command_config_t *entry = append((void **) &self->commands, &self->command_count,
                                        sizeof *entry);
    if (entry) {
        entry->name = strdup(name);
        entry->service = strdup(SB_DEFAULT_SERVICE);
        entry->retry = -1;
        entry->line = line;
    }
    return entry;
}

static int handle_service(parse_state_t *state, const char *name, const char *key,
                          const char *value)
{
    sb_service_config_t *service = service_entry(state->config, name);
    if (!service)
        return fail(state, "out of memory");
    long number;
    if (strcmp(key, "workers") == 0) {
        if (!parse_int(value, 0, 256, &number))
            return fail(state, "workers must be a whole number from 0 to 256, not '%s'", value);
        service->workers = (int) number;
        return 1;
    }
    if (strcmp(key, "prefetch") == 0) {
        if (!parse_int(value, 1, SB_ENVELOPE_MAX_CREDIT, &number))
            return fail(state, "prefetch must be a whole number from 1 to %d, not '%s'",
                        SB_ENVELOPE_MAX_CREDIT, value);
        service->prefetch = (int) number;
        return 1;
    }
    return fail(state, "unknown key '%s' in [service %s] (known: workers, prefetch)", key, name);
}

static int set_text(char **field, const char *value)
{
    free(*field);
    *field = strdup(value);
    return 1;
}

static int handle_command(parse_state_t *state, const char *name, const char *key,
                          const char *value)
{
    sb_command_config_t *command = command_entry(state->config, name, state->line);
    if (!command)
        return fail(state, "out of memory");
    if (strcmp(key, "service") == 0) {
        if (*value == '\0' || strchr(value, ' '))
            return fail(state, "service must be one word, not '%s'", value);
        command->service_line = state->line;
        return set_text(&command->service, value);
    }
    if (strcmp(key, "timeout") == 0) {
        double seconds;
        if (!sb_seconds_parse(value, &seconds) || !(seconds > 0 && seconds <= 86400))
            return fail(state, "timeout must be seconds between 0 and 86400, not '%s'", value);
        command->timeout_ms = seconds < 0.001 ? 1 : (uint32_t) sb_seconds_to_ms(seconds);
        return 1;
    }
    if (strcmp(key, "retry") == 0) {
        bool yes;
        if (!parse_yes_no(value, &yes))
            return fail(state, "retry must be yes or no, not '%s'", value);
        command->retry = yes;
        return 1;
    }
    if (strcmp(key, "exec") == 0) {
        command->exec_line = state->line;   /* given, even if bad: not "missing" */
        if (*value == '\0')
            return fail(state, "exec must name a program");
        return set_text(&command->exec, value);
    }
    if (strcmp(key, "max_output") == 0) {
        long bytes;
        if (!parse_int(value, 1, 65536, &bytes))
            return fail(state, "max_output must be bytes from 1 to 65536, not '%s'", value);
        command->max_output = (size_t) bytes;
        return 1;
    }
    if (strcmp(key, "description") == 0)
        return set_text(&command->description, value);
    return fail(state, "unknown key '%s' in [command %s] (known: service, timeout, retry, exec, "
                "max_output, description)", key, name);
}

static sb_device_config_t *device_entry(sb_config_t *self, const char *name, int line)
{
    for (size_t i = 0; i < self->device_count; i++)
        if (strcmp(self->devices[i].name, name) == 0)
            return &self->devices[i];
    sb_device_config_t *entry = append((void **) &self->devices, &self->device_count,
                                       sizeof *entry);
    if (entry)
        *entry = (sb_device_config_t) {
            .name = strdup(name), .baud = 115200,
            .backoff = SB_BACKOFF_SETTINGS_DEFAULT, .healthy_after_ms = 10000, .connect_timeout_ms = 5000,
            .call_timeout_ms = 5000, .max_pending = 16, .keepalive_interval_ms = 30000,
            .line = line,
        };
    return entry;
}

/* Seconds (decimals allowed) from `min` to `max` into milliseconds. */
/* The [device NAME] keys that are seconds: where each goes and its range. */
static long *device_seconds_field(sb_device_config_t *device, const char *key, double *min,
                                  double *max)
{
    static const struct {
        const char *key;
        size_t offset;
        double min, max;
    } fields[] = {
        { "healthy_after", offsetof(sb_device_config_t, healthy_after_ms), 0, 86400 },
        { "connect_timeout", offsetof(sb_device_config_t, connect_timeout_ms), 0.01, 600 },
        { "call_timeout", offsetof(sb_device_config_t, call_timeout_ms), 0.01, 3600 },
        { "keepalive_interval", offsetof(sb_device_config_t, keepalive_interval_ms), 0.05, 86400 },
    };
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        if (strcmp(fields[i].key, key) == 0) {
            *min = fields[i].min;
            *max = fields[i].max;
            return (long *) ((char *) device + fields[i].offset);
        }
    return NULL;
}

static int handle_device(parse_state_t *state, const char *name, const char *key,
                         const char *value)
{
    sb_device_config_t *device = device_entry(state->config, name, state->line);
    if (!device)
        return fail(state, "out of memory");
    char reason[384];
    switch (sb_backoff_settings_set(&device->backoff, key, value, reason, sizeof reason)) {
    case SB_BACKOFF_KEY_SET: return 1;
    case SB_BACKOFF_KEY_BAD: return fail(state, "%s", reason);
    case SB_BACKOFF_KEY_OTHER: break;
    }
    double min, max;
    long *milliseconds = device_seconds_field(device, key, &min, &max);
    if (milliseconds) {
        if (!sb_seconds_parse_ms(value, min, max, milliseconds))
            return fail(state, "%s must be seconds from %g to %g, not '%s'", key, min, max, value);
        return 1;
    }
    if (strncmp(key, "ha_", 3) == 0) {
        if (!sb_ha_config_set(&device->ha, key, value, state->line, reason, sizeof reason))
            return fail(state, "%s", reason);
        return 1;
    }
    if (strcmp(key, "connect") == 0) {
        const char *colon = strrchr(value, ':');
        long port;
        if (!colon || colon == value || !parse_int(colon + 1, 1, 65535, &port))
            return fail(state, "connect must be HOST:PORT, not '%s'", value);
        device->kind = SB_DEVICE_TCP;
        return set_text(&device->connect, value);
    }
    if (strcmp(key, "serial") == 0) {
        if (value[0] != '/')
            return fail(state, "serial must be an absolute device path, not '%s'", value);
        device->kind = SB_DEVICE_SERIAL;
        return set_text(&device->serial, value);
    }
    if (strcmp(key, "baud") == 0) {
        if (!parse_int(value, 1, 4000000, &device->baud) || !sb_word_list_has(SB_SERIAL_RATES, value))
            return fail(state, "baud must be one of %s, not '%s'", SB_SERIAL_RATES, value);
        return 1;
    }
    if (strcmp(key, "max_pending") == 0) {
        if (!parse_int(value, 1, 1000, &device->max_pending))
            return fail(state, "max_pending must be from 1 to 1000, not '%s'", value);
        return 1;
    }
    if (strcmp(key, "token") == 0 || strcmp(key, "on_connect") == 0 || strcmp(key, "keepalive") == 0) {
        if (*value == '\0' || strpbrk(value, "\r\n"))
            return fail(state, "%s must be one non-empty line", key);
        char **field = key[0] == 't' ? &device->token
                       : key[0] == 'o' ? &device->on_connect : &device->keepalive;
        return set_text(field, value);
    }
    return fail(state, "unknown key '%s' in [device %s] (known: connect, serial, baud, token, "
                SB_BACKOFF_SETTINGS_KEYS ", healthy_after, "
                "connect_timeout, call_timeout, max_pending, on_connect, keepalive, "
                "keepalive_interval, ha_*)", key, name);
}

static sb_token_config_t *token_entry(sb_config_t *self, const char *name, int line)
{
    if (!name) {
        if (!self->anonymous && (self->anonymous = calloc(1, sizeof *self->anonymous)))
            self->anonymous->line = line;
        return self->anonymous;
    }
    for (size_t i = 0; i < self->token_count; i++)
        if (strcmp(self->tokens[i].name, name) == 0)
            return &self->tokens[i];
    sb_token_config_t *entry = append((void **) &self->tokens, &self->token_count, sizeof *entry);
    if (entry) {
        entry->name = strdup(name);
        entry->line = line;
    }
    return entry;
}

/* [token NAME] (name given) and [anonymous] (NULL): checked further in config_check.c. */
static int handle_token(parse_state_t *state, const char *name, const char *key,
                        const char *value)
{
    sb_token_config_t *token = token_entry(state->config, name, state->line);
    if (!token)
        return fail(state, "out of memory");
    if (strcmp(key, "commands") == 0)
        return set_text(&token->commands, value);
    if (strcmp(key, "publish") == 0) {
        token->publish_line = state->line;
        return set_text(&token->publish, value);
    }
    if (strcmp(key, "subscribe") == 0) {
        token->subscribe_line = state->line;
        return set_text(&token->subscribe, value);
    }
    if (name && strcmp(key, "url_token") == 0) {
        if (!parse_yes_no(value, &token->url_token))
            return fail(state, "url_token must be yes or no, not '%s'", value);
        return 1;
    }
    if (name && (strcmp(key, "secret_sha256") == 0 || strcmp(key, "secret") == 0)) {
        token->secret_line = state->line;
        return set_text(key[6] == '_' ? &token->secret_sha256 : &token->secret, value);
    }
    if (!name)
        return fail(state, "unknown key '%s' in [anonymous] (known: commands, publish, subscribe)",
                    key);
    return fail(state, "unknown key '%s' in [token %s] (known: secret_sha256, secret, commands, "
                "publish, subscribe, url_token)", key, name);
}

static sb_ha_topic_config_t *ha_topic_entry(sb_config_t *self, const char *name, int line)
{
    for (size_t i = 0; i < self->ha_topic_count; i++)
        if (strcmp(self->ha_topics[i].name, name) == 0)
            return &self->ha_topics[i];
    sb_ha_topic_config_t *entry = append((void **) &self->ha_topics, &self->ha_topic_count,
                                         sizeof *entry);
    if (entry) {
        entry->name = strdup(name);
        entry->ha.topic = true;
        entry->line = line;
    }
    return entry;
}

/* [ha NAME]: the ha_* keys, checked as a whole in config_check.c. */
static int handle_ha_topic(parse_state_t *state, const char *name, const char *key,
                           const char *value)
{
    sb_ha_topic_config_t *topic = ha_topic_entry(state->config, name, state->line);
    char reason[384];
    if (!topic)
        return fail(state, "out of memory");
    if (strncmp(key, "ha_", 3) != 0)
        return fail(state, "unknown key '%s' in [ha %s] (its keys start with ha_)", key, name);
    if (!sb_ha_config_set(&topic->ha, key, value, state->line, reason, sizeof reason))
        return fail(state, "%s", reason);
    return 1;
}

static sb_bridge_config_t *bridge_entry(sb_config_t *self, const char *name, int line)
{
    for (size_t i = 0; i < self->bridge_count; i++)
        if (strcmp(self->bridges[i].name, name) == 0)
            return &self->bridges[i];
    sb_bridge_config_t *entry = append((void **) &self->bridges, &self->bridge_count,
                                       sizeof *entry);
    if (entry)
        sb_bridge_config_init(entry, name, line);
    return entry;
}

static int handle_bridge(parse_state_t *state, const char *name, const char *key,
                         const char *value)
{
    sb_bridge_config_t *bridge = bridge_entry(state->config, name, state->line);
    if (!bridge)
        return fail(state, "out of memory");
    char reason[512];
    if (!sb_bridge_config_set(bridge, key, value, state->line, reason, sizeof reason))
        return fail(state, "%s", reason);
    return 1;
}

static int handle_program_value(parse_state_t *state, const char *section, const char *key,
                                const char *value)
{
    config_value_t *entry = append((void **) &state->config->values,
                                   &state->config->value_count, sizeof *entry);
    if (!entry)
        return fail(state, "out of memory");
    entry->section = strdup(section);
    entry->key = strdup(key);
    entry->value = strdup(value);
    entry->line = state->line;
    return 1;
}

static bool is_program_section(const char *section)
{
    for (const char **known = s_program_sections; *known; known++)
        if (strcmp(section, *known) == 0)
            return true;
    return false;
}

static int handle_entry(void *user, const char *section, const char *key, const char *value)
{
    parse_state_t *state = user;
    const char *name;
    if (split_section(section, "service", &name))
        return handle_service(state, name, key, value);
    if (split_section(section, "command", &name))
        return handle_command(state, name, key, value);
    if (split_section(section, "device", &name))
        return handle_device(state, name, key, value);
    if (split_section(section, "token", &name))
        return handle_token(state, name, key, value);
    if (strcmp(section, "anonymous") == 0)
        return handle_token(state, NULL, key, value);
    if (split_section(section, "ha", &name))
        return handle_ha_topic(state, name, key, value);
    if (split_section(section, "bridge", &name))
        return handle_bridge(state, name, key, value);
    if (is_program_section(section))
        return handle_program_value(state, section, key, value);
    if (*section == '\0')
        return fail(state, "'%s' is outside any [section]", key);
    return 1;   /* an unknown section: reported once, at its header */
}

static bool is_program_section(const char *section);
static bool split_section(const char *section, const char *kind, const char **name_out);

/* Whether a [section] header names one this file may have. */
static bool is_known_section(const char *text, size_t length)
{
    char section[128];
    const char *name;
    snprintf(section, sizeof section, "%.*s", (int) length, text);
    return is_program_section(section) || split_section(section, "service", &name)
           || split_section(section, "command", &name) || split_section(section, "device", &name)
           || split_section(section, "token", &name) || strcmp(section, "anonymous") == 0
           || split_section(section, "ha", &name)
           || split_section(section, "bridge", &name);
}

/* A [device NAME] header alone defines the device (a dial-in one needs no
 * key); a [token NAME] or [anonymous] header alone, an identity with defaults. */
static void declare_section(parse_state_t *state, const char *text, size_t length)
{
    char section[128];
    const char *name;
    snprintf(section, sizeof section, "%.*s", (int) length, text);
    if ((split_section(section, "device", &name) && !device_entry(state->config, name, state->line))
        || (split_section(section, "token", &name) && !token_entry(state->config, name, state->line))
        || (strcmp(section, "anonymous") == 0 && !token_entry(state->config, NULL, state->line))
        || (split_section(section, "ha", &name) && !ha_topic_entry(state->config, name, state->line))
        || (split_section(section, "bridge", &name) && !bridge_entry(state->config, name, state->line)))
        fail(state, "out of memory");
}

/* inih reports only the first line it cannot read; every one is reported
 * here: a line must be blank, a comment, a [section] or a key = value. */
static void check_syntax(parse_state_t *state, char *line)
{
    const char *start = line + strspn(line, " \t");
    if (*start == '\0' || *start == '\n' || *start == '\r' || *start == ';' || *start == '#')
        return;
    if (*start == '[') {
        const char *end = strchr(start, ']');
        if (!end)
            fail(state, "section header without ']'");
        else if (!is_known_section(start + 1, (size_t) (end - start - 1)))
            fail(state, "unknown section [%.*s]", (int) (end - start - 1), start + 1);
        else
            declare_section(state, start + 1, (size_t) (end - start - 1));
        return;
    }
    const char *equals = strpbrk(start, "=:");
    if (!equals || equals == start)
        fail(state, "expected 'key = value'");
    if (!equals || equals == start)
        line[0] = '\0';   /* inih would stop at it: it is reported, so skip it */
}

/* inih reads into a fixed buffer: a longer line would come in pieces,
 * each taken for a line of its own, so it is refused here instead. */
static char *read_counted_line(char *buffer, int size, void *stream)
{
    parse_state_t *state = stream;
    char *line = fgets(buffer, size, state->file);
    if (!line)
        return NULL;
    state->line++;
    size_t length = strlen(line);
    if (length == (size_t) size - 1 && line[length - 1] != '\n' && !feof(state->file)) {
        fail(state, "line longer than %d bytes", size - 2);
        int skipped;
        while ((skipped = fgetc(state->file)) != EOF && skipped != '\n')
            ;
        line[0] = '\0';   /* inih sees a blank line */
        return line;
    }
    check_syntax(state, line);
    return line;
}

sb_config_t *sb_config_load(const char *path, char **error_out)
{
    sb_config_t *self = sb_config_read(path, error_out);
    if (*error_out)
        sb_config_destroy(&self);
    return self;
}

sb_config_t *sb_config_read(const char *path, char **error_out)
{
    *error_out = NULL;
    sb_config_t *self = sb_config_new();
    parse_state_t state = { .config = self, .file = fopen(path, "r") };
    self->path = strdup(path);
    if (!state.file) {
        if (asprintf(error_out, "%s: cannot open: %s", path, strerror(errno)) < 0)
            *error_out = NULL;
        sb_config_destroy(&self);
        return NULL;
    }
    int result = ini_parse_stream(read_counted_line, &state, handle_entry, &state);
    fclose(state.file);
    if (result != 0 && !state.errors)   /* a syntax error check_syntax did not foresee */
        fail(&state, "cannot read this line (inih reports line %d)", result);
    *error_out = state.errors;
    return self;
}

static const config_value_t *find_value(const sb_config_t *self, const char *section,
                                        const char *key)
{
    /* The last assignment wins, as a reader of the file would expect. */
    for (size_t i = self->value_count; i-- > 0;)
        if (strcmp(self->values[i].section, section) == 0
            && strcmp(self->values[i].key, key) == 0)
            return &self->values[i];
    return NULL;
}

const char *sb_config_value(const sb_config_t *self, const char *section, const char *key)
{
    const config_value_t *entry = find_value(self, section, key);
    return entry ? entry->value : NULL;
}

int sb_config_value_line(const sb_config_t *self, const char *section, const char *key)
{
    const config_value_t *entry = find_value(self, section, key);
    return entry ? entry->line : 0;
}

size_t sb_config_service_count(const sb_config_t *self) { return self->service_count; }
size_t sb_config_command_count(const sb_config_t *self) { return self->command_count; }
const char *sb_config_path(const sb_config_t *self) { return self->path; }

const sb_service_config_t *sb_config_service_at(const sb_config_t *self, size_t index)
{
    return index < self->service_count ? &self->services[index] : NULL;
}

const sb_command_config_t *sb_config_command_at(const sb_config_t *self, size_t index)
{
    return index < self->command_count ? &self->commands[index] : NULL;
}

const sb_service_config_t *sb_config_service(const sb_config_t *self, const char *name)
{
    for (size_t i = 0; i < self->service_count; i++)
        if (strcmp(self->services[i].name, name) == 0)
            return &self->services[i];
    return NULL;
}

const sb_command_config_t *sb_config_command(const sb_config_t *self, const char *name)
{
    for (size_t i = 0; i < self->command_count; i++)
        if (strcmp(self->commands[i].name, name) == 0)
            return &self->commands[i];
    return NULL;
}

size_t sb_config_device_count(const sb_config_t *self)
{
    return self->device_count;
}

const sb_device_config_t *sb_config_device_at(const sb_config_t *self, size_t index)
{
    return index < self->device_count ? &self->devices[index] : NULL;
}

const sb_device_config_t *sb_config_device(const sb_config_t *self, const char *name)
{
    for (size_t i = 0; i < self->device_count; i++)
        if (strcmp(self->devices[i].name, name) == 0)
            return &self->devices[i];
    return NULL;
}

size_t sb_config_value_count(const sb_config_t *self)
{
    return self->value_count;
}

sb_config_value_t sb_config_value_at(const sb_config_t *self, size_t index)
{
    const config_value_t *value = &self->values[index];
    return (sb_config_value_t) { value->section, value->key, value->value, value->line };
}

size_t sb_config_token_count(const sb_config_t *self)
{
    return self->token_count;
}

const sb_token_config_t *sb_config_token_at(const sb_config_t *self, size_t index)
{
    return index < self->token_count ? &self->tokens[index] : NULL;
}

const sb_token_config_t *sb_config_token(const sb_config_t *self, const char *name)
{
    for (size_t i = 0; i < self->token_count; i++)
        if (strcmp(self->tokens[i].name, name) == 0)
            return &self->tokens[i];
    return NULL;
}

const sb_token_config_t *sb_config_anonymous(const sb_config_t *self)
{
    return self->anonymous;
}

size_t sb_config_ha_topic_count(const sb_config_t *self)
{
    return self->ha_topic_count;
}

const sb_ha_topic_config_t *sb_config_ha_topic_at(const sb_config_t *self, size_t index)
{
    return index < self->ha_topic_count ? &self->ha_topics[index] : NULL;
}

size_t sb_config_bridge_count(const sb_config_t *self)
{
    return self->bridge_count;
}

const sb_bridge_config_t *sb_config_bridge_at(const sb_config_t *self, size_t index)
{
    return index < self->bridge_count ? &self->bridges[index] : NULL;
}
