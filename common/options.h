/* options.h — every program's settings, from four sources in order of
 * precedence: command-line flags > SWITCHBOARD_* environment > the config
 * file > built-in defaults.
 *
 * A program declares its settings once in a table; the same table drives
 * parsing, validation and --help. A setting named "max-line" is the flag
 * --max-line, the environment variable SWITCHBOARD_MAX_LINE, and the key
 * named by `ini_key` ("gateway-tcp.max_line") in the config file.
 * Every program also gets --config, --log-level, --help and --version. */
#ifndef SB_OPTIONS_H
#define SB_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"

typedef enum {
    SB_OPTION_TEXT,      /* any non-empty string */
    SB_OPTION_INT,       /* integer within [min, max] */
    SB_OPTION_SECONDS,   /* decimal seconds ("1.5"), kept in milliseconds, within [min, max] ms */
} sb_option_kind_t;

typedef struct {
    const char *name;           /* flag name without "--" */
    sb_option_kind_t kind;
    const char *ini_key;        /* "section.key" or NULL: not settable in the file */
    const char *default_value;  /* parsed like any other source; NULL = no default */
    long min, max;              /* bounds for INT and SECONDS (in ms) */
    const char *metavar;        /* for --help: "N", "ENDPOINT", ... */
    const char *help;
} sb_option_spec_t;

typedef struct {
    const char *name;           /* program name: "sb-broker" */
    const char *summary;        /* one line for --help */
    const sb_option_spec_t *specs;
    size_t spec_count;
} sb_program_t;

typedef struct sb_options sb_options_t;

/* The settings every program has (--config, --log-level). */
extern const sb_option_spec_t sb_common_specs[];
extern const size_t sb_common_spec_count;

/* Parses argv, the environment and the config file. Returns NULL when the
 * program should exit at once: after --help or --version (*exit_code 0) or
 * after printing an error to stderr (*exit_code 2). Also initialises the
 * log with the program name and --log-level. */
sb_options_t *sb_options_load(const sb_program_t *program, int argc, char **argv,
                              int *exit_code);

void sb_options_destroy(sb_options_t **self_p);

/* Checks `text` as a value of `spec`; its number (INT, SECONDS in ms) in
 * *number_out, or false with `reason` filled. */
bool sb_option_parse(const sb_option_spec_t *spec, const char *text, long *number_out,
                     char *reason, size_t reason_size);

/* Typed values by setting name; asking for an undeclared name aborts. */
const char *sb_options_text(const sb_options_t *self, const char *name);
long sb_options_int(const sb_options_t *self, const char *name);

/* Where the value came from: "flag", "environment", "file" or "default". */
const char *sb_options_source(const sb_options_t *self, const char *name);

/* The loaded config file (an empty one when none was given). */
const sb_config_t *sb_options_config(const sb_options_t *self);

#endif
