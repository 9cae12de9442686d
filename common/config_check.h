/* config_check.h — what a config file that reads cleanly can still get
 * wrong: a key no program reads, a bad value for a program's setting, an
 * `exec` that is missing or not executable, a command sent to a service no
 * pool serves. Every program runs this check before it starts, and
 * `switchboard --check-config FILE` runs it alone. */
#ifndef SB_CONFIG_CHECK_H
#define SB_CONFIG_CHECK_H

#include "config.h"
#include "option_spec.h"

/* Every problem, one "FILE:LINE: reason" per line (free() it), or NULL.
 * Keys are checked against every program's settings and, when it is not
 * NULL, against `program`'s too. */
char *sb_config_check(const sb_config_t *config, const sb_program_t *program);

/* Reads and checks `path`: every problem of both kinds, in line order
 * (free() it), or NULL with the config in *config_out. */
char *sb_config_verify(const char *path, const sb_program_t *program, sb_config_t **config_out);

/* Splits an `exec` value into argv (quoted like a request line, §3.1):
 * a NULL-terminated array to free() with sb_exec_argv_free, or NULL with
 * a reason when it is not a command line. */
char **sb_exec_argv(const char *exec, size_t *argc_out, const char **reason_out);
void sb_exec_argv_free(char ***argv_p);

#endif
