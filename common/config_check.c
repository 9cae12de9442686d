/* config_check.c — checks a loaded config against what the programs read
 * (see config_check.h). Problems are collected, not stopped at, so one run
 * shows them all. */
#include "config_check.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "builtin_commands.h"
#include "cmdline.h"
#include "programs.h"
#include "protocol.h"
#include "secret.h"
#include "topic.h"

typedef struct {
    const sb_config_t *config;
    const sb_program_t *program;   /* checked too, beside every known one */
    char *text;
    size_t length;
} problems_t;

static void add_problem(problems_t *problems, int line, const char *format, ...)
    __attribute__((format(printf, 3, 4)));

static void add_problem(problems_t *problems, int line, const char *format, ...)
{
    char reason[512], entry[768];
    va_list args;
    va_start(args, format);
    vsnprintf(reason, sizeof reason, format, args);
    va_end(args);
    int length = snprintf(entry, sizeof entry, "%s%s:%d: %s", problems->text ? "\n" : "",
                          sb_config_path(problems->config), line, reason);
    char *grown = realloc(problems->text, problems->length + (size_t) length + 1);
    if (!grown)
        return;
    memcpy(grown + problems->length, entry, (size_t) length + 1);
    problems->text = grown;
    problems->length += (size_t) length;
}

static const sb_option_spec_t *find_in(const sb_option_spec_t *specs, size_t count,
                                       const char *ini_key)
{
    for (size_t i = 0; i < count; i++)
        if (specs[i].ini_key && strcmp(specs[i].ini_key, ini_key) == 0)
            return &specs[i];
    return NULL;
}

/* The setting a "section.key" of the file is, in any program. */
static const sb_option_spec_t *find_setting(const problems_t *problems, const char *ini_key)
{
    const sb_option_spec_t *spec = find_in(sb_common_specs, sb_common_spec_count, ini_key);
    if (!spec && problems->program)
        spec = find_in(problems->program->specs, problems->program->spec_count, ini_key);
    for (const sb_program_t *const *program = sb_programs; *program && !spec; program++)
        spec = find_in((*program)->specs, (*program)->spec_count, ini_key);
    return spec;
}

/* A setting that names a file the program must read at start. */
static bool names_file_to_read(const sb_option_spec_t *spec)
{
    return strcmp(spec->name, "tls-cert") == 0 || strcmp(spec->name, "tls-key") == 0;
}

static void check_program_values(problems_t *problems)
{
    for (size_t i = 0; i < sb_config_value_count(problems->config); i++) {
        sb_config_value_t value = sb_config_value_at(problems->config, i);
        char ini_key[160], reason[256];
        snprintf(ini_key, sizeof ini_key, "%s.%s", value.section, value.key);
        const sb_option_spec_t *spec = find_setting(problems, ini_key);
        long number;
        if (!spec)
            add_problem(problems, value.line, "unknown key '%s' in [%s]", value.key, value.section);
        else if (!sb_option_parse(spec, value.value, &number, reason, sizeof reason))
            add_problem(problems, value.line, "%s %s", ini_key, reason);
        else if (names_file_to_read(spec) && access(value.value, R_OK) != 0)
            add_problem(problems, value.line, "%s: cannot read '%s': %s", ini_key, value.value,
                        strerror(errno));
    }
}

char **sb_exec_argv(const char *exec, size_t *argc_out, const char **reason_out)
{
    sb_cmdline_status_t status;
    sb_cmdline_t *parsed = sb_cmdline_parse(exec, strlen(exec), &status, NULL);
    if (!parsed || parsed->tag) {
        *reason_out = parsed ? "must not start with '@'" : sb_cmdline_status_text(status);
        sb_cmdline_destroy(&parsed);
        return NULL;
    }
    char **argv = calloc(parsed->argc + 1, sizeof *argv);
    for (size_t i = 0; i < parsed->argc; i++)
        argv[i] = strdup(parsed->argv[i]);
    *argc_out = parsed->argc;
    sb_cmdline_destroy(&parsed);
    return argv;
}

void sb_exec_argv_free(char ***argv_p)
{
    if (!*argv_p)
        return;
    for (char **arg = *argv_p; *arg; arg++)
        free(*arg);
    free(*argv_p);
    *argv_p = NULL;
}

static void check_exec(problems_t *problems, const sb_command_config_t *command)
{
    size_t argc;
    const char *reason;
    char **argv = sb_exec_argv(command->exec, &argc, &reason);
    if (!argv)
        add_problem(problems, command->exec_line, "exec: %s", reason);
    else if (argv[0][0] != '/')
        add_problem(problems, command->exec_line, "exec: '%s' must be an absolute path", argv[0]);
    else if (access(argv[0], X_OK) != 0)
        add_problem(problems, command->exec_line, "exec: '%s' is missing or not executable",
                    argv[0]);
    sb_exec_argv_free(&argv);
}

static void check_commands(problems_t *problems)
{
    const sb_config_t *config = problems->config;
    for (size_t i = 0; i < sb_config_command_count(config); i++) {
        const sb_command_config_t *command = sb_config_command_at(config, i);
        if (command->exec)
            check_exec(problems, command);
        else if (!command->exec_line && !sb_builtin_command(command->name)
                 && !sb_word_list_has(SB_DEVICE_COMMANDS, command->name)) {
            char builtins[256];
            sb_builtin_command_names(builtins, sizeof builtins);
            add_problem(problems, command->line,
                        "command '%s' has no exec and is not a built-in command (%s %s)",
                        command->name, builtins, SB_DEVICE_COMMANDS);
        }
        if (strcmp(command->service, SB_DEFAULT_SERVICE) != 0
            && !sb_config_service(config, command->service))
            add_problem(problems, command->service_line ? command->service_line : command->line,
                        "command '%s' is assigned to service '%s', which has no [service %s] pool",
                        command->name, command->service, command->service);
    }
}

/* A device or [ha] topic announced to Home Assistant: keys that fit, and
 * a name that can be part of its discovery id. */
static void check_home_assistant(problems_t *problems, const char *what, const char *name,
                                 const sb_ha_config_t *ha, int line)
{
    char reason[384];
    if (!sb_ha_config_check(ha, reason, sizeof reason))
        add_problem(problems, line, "%s '%s': %s", what, name, reason);
    else if (!sb_ha_id_is_valid(name, true))
        add_problem(problems, line, "%s '%s': what is announced to Home Assistant is named with "
                    "1 to 64 letters, digits, _ or -", what, name);
}

/* [ha NAME] sections: each fits, and no device has the same name (one id each). */
static void check_ha_topics(problems_t *problems)
{
    const sb_config_t *config = problems->config;
    for (size_t i = 0; i < sb_config_ha_topic_count(config); i++) {
        const sb_ha_topic_config_t *topic = sb_config_ha_topic_at(config, i);
        const sb_device_config_t *device = sb_config_device(config, topic->name);
        check_home_assistant(problems, "[ha]", topic->name, &topic->ha, topic->line);
        if (device && device->ha.component != SB_HA_NONE)
            add_problem(problems, topic->line, "[ha %s]: device '%s' is announced under that "
                        "name already", topic->name, topic->name);
    }
}

/* A device is reached one way; a name is one word (it is a topic level and a command word). */
static void check_devices(problems_t *problems)
{
    const sb_config_t *config = problems->config;
    for (size_t i = 0; i < sb_config_device_count(config); i++) {
        const sb_device_config_t *device = sb_config_device_at(config, i);
        if (device->connect && device->serial)
            add_problem(problems, device->line,
                        "device '%s' has both connect and serial: it is reached one way",
                        device->name);
        if (strpbrk(device->name, " /+#=\t"))
            add_problem(problems, device->line,
                        "device name '%s' must be one word without / + # or =", device->name);
        if (device->token && device->kind != SB_DEVICE_DIAL_IN)
            add_problem(problems, device->line,
                        "device '%s': token is for devices that dial in (no connect or serial)",
                        device->name);
        if (sb_backoff_settings_are_inverted(&device->backoff))
            add_problem(problems, device->line,
                        "device '%s': backoff_max is shorter than backoff_initial", device->name);
        if (device->ha.line)
            check_home_assistant(problems, "device", device->name, &device->ha, device->ha.line);
    }
    const char *hub = sb_config_value(config, "hub", "name");
    if (hub && !sb_ha_id_is_valid(hub, false))
        add_problem(problems, sb_config_value_line(config, "hub", "name"),
                    "hub.name '%s' must be 1 to 64 letters, digits or - (it is part of the "
                    "Home Assistant ids switchboard_HUB_DEVICE)", hub);
}

/* Each word of a publish or subscribe list must be a topic filter. A quote
 * is refused too: the list is split at spaces, so `"a b/#"` would quietly
 * be the two filters `"a` and `b/#"`; a level with a space is written `+`. */
static void check_filters(problems_t *problems, const char *list, int line, const char *section,
                          const char *key)
{
    char *copy = strdup(list);
    char *save = NULL;
    for (char *word = strtok_r(copy, " \t", &save); word; word = strtok_r(NULL, " \t", &save))
        if (strchr(word, '"'))
            add_problem(problems, line, "%s: %s: '%s': filters are split at spaces and cannot "
                        "be quoted (write a level with a space as +)", section, key, word);
        else if (!sb_topic_filter_is_valid(word))
            add_problem(problems, line, "%s: %s: '%s' is not a topic filter (levels split by /, "
                        "+ for one level, # last for the rest)", section, key, word);
    free(copy);
}

static void check_rules(problems_t *problems, const sb_token_config_t *token, const char *section)
{
    if (token->publish)
        check_filters(problems, token->publish, token->publish_line, section, "publish");
    if (token->subscribe)
        check_filters(problems, token->subscribe, token->subscribe_line, section, "subscribe");
}

/* A token has a valid name and exactly one secret; command names are not
 * checked (external commands may have any name). */
static void check_tokens(problems_t *problems)
{
    const sb_config_t *config = problems->config;
    for (size_t i = 0; i < sb_config_token_count(config); i++) {
        const sb_token_config_t *token = sb_config_token_at(config, i);
        char section[96];
        snprintf(section, sizeof section, "[token %.64s]", token->name);
        uint8_t digest[SB_SECRET_DIGEST_SIZE];
        if (!sb_token_name_is_valid(token->name, strlen(token->name)))
            add_problem(problems, token->line, "token name '%s' must be 1 to %d letters, digits, "
                        "_ . or -", token->name, SB_TOKEN_NAME_MAX);
        if (!token->secret && !token->secret_sha256)
            add_problem(problems, token->line, "%s needs secret_sha256 (see switchboard "
                        "hash-secret) or secret", section);
        else if (token->secret && token->secret_sha256)
            add_problem(problems, token->secret_line, "%s has both secret and secret_sha256: "
                        "give one", section);
        else if (token->secret_sha256 && !sb_secret_parse_hex(token->secret_sha256, digest))
            add_problem(problems, token->secret_line, "%s: secret_sha256 must be 64 hex digits "
                        "(switchboard hash-secret prints them)", section);
        else if (token->secret && !*token->secret)
            add_problem(problems, token->secret_line, "%s: secret must not be empty", section);
        check_rules(problems, token, section);
    }
    if (sb_config_anonymous(config))
        check_rules(problems, sb_config_anonymous(config), "[anonymous]");
}

static void bridge_problem(void *arg, int line, const char *reason)
{
    add_problem(arg, line, "%s", reason);
}

static void check_bridges(problems_t *problems)
{
    size_t count = sb_config_bridge_count(problems->config);
    for (size_t i = 0; i < count; i++) {
        const sb_bridge_config_t *bridge = sb_config_bridge_at(problems->config, i);
        sb_bridge_config_check(bridge, bridge_problem, problems);
        for (size_t j = i + 1; j < count; j++)
            sb_bridge_config_check_pair(bridge, sb_config_bridge_at(problems->config, j),
                                        bridge_problem, problems);
    }
}

char *sb_config_check(const sb_config_t *config, const sb_program_t *program)
{
    problems_t problems = { .config = config, .program = program };
    check_program_values(&problems);
    check_commands(&problems);
    check_devices(&problems);
    check_ha_topics(&problems);
    check_tokens(&problems);
    check_bridges(&problems);
    return problems.text;
}

/* The line number in "PATH:LINE: reason" (0 when there is none). */
static long problem_line(const char *problem, size_t path_length)
{
    return strtol(problem + path_length + 1, NULL, 10);
}

/* Problems from reading and from checking, merged into line order. */
static char *sorted_problems(const char *path, char *first, char *second)
{
    char *all = NULL;
    if (asprintf(&all, "%s%s%s", first ? first : "", first && second ? "\n" : "",
                 second ? second : "") < 0)
        return NULL;
    size_t count = 1, path_length = strlen(path);
    for (char *c = all; *c; c++)
        count += *c == '\n';
    char **lines = calloc(count, sizeof *lines);
    size_t n = 0;
    for (char *line = strtok(all, "\n"); line; line = strtok(NULL, "\n"))
        lines[n++] = line;
    for (size_t i = 1; i < n; i++)   /* insertion sort: stable, and lists are short */
        for (size_t j = i; j > 0 && problem_line(lines[j - 1], path_length)
                                        > problem_line(lines[j], path_length); j--) {
            char *kept = lines[j];
            lines[j] = lines[j - 1];
            lines[j - 1] = kept;
        }
    size_t length = 0;
    char *sorted = malloc(strlen(first ? first : "") + strlen(second ? second : "") + n + 2);
    for (size_t i = 0; i < n; i++)
        length += (size_t) sprintf(sorted + length, "%s%s", i ? "\n" : "", lines[i]);
    sorted[length] = '\0';
    free(lines);
    free(all);
    return sorted;
}

char *sb_config_verify(const char *path, const sb_program_t *program, sb_config_t **config_out)
{
    *config_out = NULL;
    char *read_problems = NULL;
    sb_config_t *config = sb_config_read(path, &read_problems);
    if (!config)
        return read_problems;
    char *check_problems = sb_config_check(config, program);
    if (!read_problems && !check_problems) {
        *config_out = config;
        return NULL;
    }
    char *problems = sorted_problems(path, read_problems, check_problems);
    free(read_problems);
    free(check_problems);
    sb_config_destroy(&config);
    return problems;
}
