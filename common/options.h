/* options.h — every program's settings, from four sources in order of
 * precedence: command-line flags > SWITCHBOARD_* environment > the config
 * file > built-in defaults.
 *
 * A program declares its settings once in a table (option_spec.h); the
 * same table drives parsing, validation and --help. A setting named
 * "max-line" is the flag --max-line, the environment variable
 * SWITCHBOARD_MAX_LINE, and the key named by `ini_key`
 * ("gateway-tcp.max_line") in the config file.
 * Every program also gets --config, --log-level, --help and --version. */
#ifndef SB_OPTIONS_H
#define SB_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "option_spec.h"

typedef struct sb_options sb_options_t;

/* Parses argv, the environment and the config file. Returns NULL when the
 * program should exit at once: after --help or --version (*exit_code 0) or
 * after printing an error to stderr (*exit_code 2). Also initialises the
 * log with the program name and --log-level. */
sb_options_t *sb_options_load(const sb_program_t *program, int argc, char **argv,
                              int *exit_code);

void sb_options_destroy(sb_options_t **self_p);

/* Typed values by setting name; asking for an undeclared name aborts. */
const char *sb_options_text(const sb_options_t *self, const char *name);
long sb_options_int(const sb_options_t *self, const char *name);

/* Where the value came from: "flag", "environment", "file" or "default". */
const char *sb_options_source(const sb_options_t *self, const char *name);

/* The loaded config file (an empty one when none was given). */
const sb_config_t *sb_options_config(const sb_options_t *self);

#endif
