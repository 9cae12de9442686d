/* option_spec.h — what a setting is (a flag, an environment variable, a
 * key of the config file) and how its value is read. The options loader
 * (options.h) and the config check (config_check.h) both read values with
 * sb_option_parse, so a bad value reads the same wherever it came from. */
#ifndef SB_OPTION_SPEC_H
#define SB_OPTION_SPEC_H

#include <stdbool.h>
#include <stddef.h>

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

/* The settings every program has (--config, --log-level). */
extern const sb_option_spec_t sb_common_specs[];
extern const size_t sb_common_spec_count;

/* Checks `text` as a value of `spec`; its number (INT, SECONDS in ms) in
 * *number_out, or false with `reason` filled. */
bool sb_option_parse(const sb_option_spec_t *spec, const char *text, long *number_out,
                     char *reason, size_t reason_size);

#endif
