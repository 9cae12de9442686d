/* options.c — resolves a program's settings from flags, environment, config
 * file and defaults (see options.h). Every source is parsed and checked by
 * the same code (option_spec.c), so a bad value reads the same wherever it
 * came from. */
#include "options.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_check.h"
#include "log.h"
#include "sb_version.h"

typedef struct {
    const sb_option_spec_t *spec;
    const char *flag_value;     /* borrowed from argv */
    char *text;                 /* resolved value as text */
    long number;                /* resolved value for INT and SECONDS */
    const char *source;
} option_value_t;

struct sb_options {
    const sb_program_t *program;
    option_value_t *values;
    size_t count;
    sb_config_t *config;
};


static void print_help(const sb_options_t *self)
{
    printf("Usage: %s [OPTION...]\n%s\n\nOptions (flag > SWITCHBOARD_* environment > config file > default):\n",
           self->program->name, self->program->summary);
    for (size_t i = 0; i < self->count; i++) {
        const sb_option_spec_t *spec = self->values[i].spec;
        char flag[64];
        snprintf(flag, sizeof flag, "--%s %s", spec->name, spec->metavar ? spec->metavar : "VALUE");
        printf("  %-28s %s", flag, spec->help);
        if (spec->default_value)
            printf(" (default: %s)", spec->default_value);
        if (spec->ini_key)
            printf(" [file: %s]", spec->ini_key);
        printf("\n");
    }
    printf("  %-28s %s\n  %-28s %s\n", "--help", "show this help and exit",
           "--version", "show the version and exit");
}

static option_value_t *find(const sb_options_t *self, const char *name)
{
    for (size_t i = 0; i < self->count; i++)
        if (strcmp(self->values[i].spec->name, name) == 0)
            return &self->values[i];
    return NULL;
}

/* "max-line" -> "SWITCHBOARD_MAX_LINE" */
static void env_name(const char *name, char *buffer, size_t size)
{
    size_t used = (size_t) snprintf(buffer, size, "SWITCHBOARD_");
    for (; *name && used < size - 1; name++)
        buffer[used++] = *name == '-' ? '_' : (char) toupper((unsigned char) *name);
    buffer[used] = '\0';
}

static bool assign(option_value_t *value, const char *text, const char *source,
                   char *reason, size_t reason_size)
{
    long number;
    if (!sb_option_parse(value->spec, text, &number, reason, reason_size))
        return false;
    free(value->text);
    value->text = strdup(text);
    value->number = number;
    value->source = source;
    return true;
}

/* Reads --name VALUE / --name=VALUE pairs; 0 = go on, else the exit code. */
static int scan_flags(sb_options_t *self, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            print_help(self);
            return -1;
        }
        if (strcmp(arg, "--version") == 0) {
            printf("%s %s\n", self->program->name, SB_VERSION);
            return -1;
        }
        if (strncmp(arg, "--", 2) != 0) {
            fprintf(stderr, "%s: error: unexpected argument '%s' (try --help)\n",
                    self->program->name, arg);
            return 2;
        }
        const char *equals = strchr(arg + 2, '=');
        size_t name_length = equals ? (size_t) (equals - arg - 2) : strlen(arg + 2);
        option_value_t *value = NULL;
        for (size_t k = 0; k < self->count && !value; k++)
            if (strlen(self->values[k].spec->name) == name_length
                && strncmp(self->values[k].spec->name, arg + 2, name_length) == 0)
                value = &self->values[k];
        if (!value) {
            fprintf(stderr, "%s: error: unknown option '%s' (try --help)\n",
                    self->program->name, arg);
            return 2;
        }
        if (!equals && i + 1 >= argc) {
            fprintf(stderr, "%s: error: option '--%s' needs a value\n",
                    self->program->name, value->spec->name);
            return 2;
        }
        value->flag_value = equals ? equals + 1 : argv[++i];
    }
    return 0;
}

/* Applies the first source that has a value; 0 on success, else 2 after printing why. */
static int resolve(sb_options_t *self, option_value_t *value)
{
    char reason[256], where[512], env[128];
    const char *text = value->flag_value, *source = "flag";
    snprintf(where, sizeof where, "--%s", value->spec->name);
    env_name(value->spec->name, env, sizeof env);
    if (!text && (text = getenv(env))) {
        source = "environment";
        snprintf(where, sizeof where, "%s", env);
    }
    if (!text && value->spec->ini_key && self->config) {
        char section[64];
        const char *dot = strchr(value->spec->ini_key, '.');
        snprintf(section, sizeof section, "%.*s", (int) (dot - value->spec->ini_key),
                 value->spec->ini_key);
        if ((text = sb_config_value(self->config, section, dot + 1))) {
            source = "file";
            snprintf(where, sizeof where, "%s:%d: %s", sb_config_path(self->config),
                     sb_config_value_line(self->config, section, dot + 1), value->spec->ini_key);
        }
    }
    if (!text) {
        text = value->spec->default_value;
        source = "default";
    }
    if (!text)
        return 0;
    if (!assign(value, text, source, reason, sizeof reason)) {
        fprintf(stderr, "%s: error: %s %s\n", self->program->name, where, reason);
        return 2;
    }
    return 0;
}

/* One "PROGRAM: error: ..." line per problem. */
static void print_problems(const char *program, const char *problems)
{
    for (const char *line = problems; *line;) {
        size_t length = strcspn(line, "\n");
        fprintf(stderr, "%s: error: %.*s\n", program, (int) length, line);
        line += length + (line[length] == '\n');
    }
}

static int load_config(sb_options_t *self)
{
    option_value_t *path = find(self, "config");
    int failed = resolve(self, path);
    if (failed)
        return failed;
    if (!path->text) {
        self->config = sb_config_new();
        return 0;
    }
    char *error = sb_config_verify(path->text, self->program, &self->config);
    if (error || !self->config) {
        print_problems(self->program->name, error ? error : "out of memory");
        free(error);
        return 2;
    }
    return 0;
}

static int start_logging(sb_options_t *self)
{
    sb_log_level_t level;
    const char *text = sb_options_text(self, "log-level");
    if (!sb_log_level_parse(text, &level)) {
        fprintf(stderr, "%s: error: log level must be debug, info, warn or error, not '%s'\n",
                self->program->name, text);
        return 2;
    }
    sb_log_init(self->program->name, level);
    return 0;
}

sb_options_t *sb_options_load(const sb_program_t *program, int argc, char **argv,
                              int *exit_code)
{
    sb_options_t *self = calloc(1, sizeof *self);
    self->program = program;
    self->count = sb_common_spec_count + program->spec_count;
    self->values = calloc(self->count, sizeof *self->values);
    for (size_t i = 0; i < self->count; i++)
        self->values[i].spec = i < sb_common_spec_count ? &sb_common_specs[i]
                                                : &program->specs[i - sb_common_spec_count];
    int status = scan_flags(self, argc, argv);
    if (status == 0)
        status = load_config(self);
    for (size_t i = 0; i < self->count && status == 0; i++)
        if (!self->values[i].source)
            status = resolve(self, &self->values[i]);
    if (status == 0)
        status = start_logging(self);
    if (status != 0) {
        *exit_code = status < 0 ? 0 : status;
        sb_options_destroy(&self);
        return NULL;
    }
    *exit_code = 0;
    return self;
}

void sb_options_destroy(sb_options_t **self_p)
{
    sb_options_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->count; i++)
        free(self->values[i].text);
    free(self->values);
    sb_config_destroy(&self->config);
    free(self);
    *self_p = NULL;
}

static const option_value_t *lookup(const sb_options_t *self, const char *name)
{
    const option_value_t *value = find(self, name);
    if (!value) {
        fprintf(stderr, "%s: internal error: no setting named '%s'\n", self->program->name, name);
        abort();
    }
    return value;
}

const char *sb_options_text(const sb_options_t *self, const char *name)
{
    return lookup(self, name)->text;
}

long sb_options_int(const sb_options_t *self, const char *name)
{
    return lookup(self, name)->number;
}

const char *sb_options_source(const sb_options_t *self, const char *name)
{
    const char *source = lookup(self, name)->source;
    return source ? source : "unset";
}

const sb_config_t *sb_options_config(const sb_options_t *self)
{
    return self->config;
}
