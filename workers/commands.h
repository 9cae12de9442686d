/* commands.h — what a worker runs: the built-in commands (§4; named in
 * common/builtin_commands.h) and the external programs the config file wires
 * to command names (`[command NAME] exec = ...`).
 *
 * A command either finishes at once or becomes a job (job.h) that the
 * worker's loop waits for, so the worker keeps heartbeating the broker
 * while a long command runs. */
#ifndef SB_COMMANDS_H
#define SB_COMMANDS_H

#include "config.h"
#include "envelope.h"
#include "job.h"
#include "store.h"

/* Default for `[command] max_output`: bytes of a program's output kept. */
#define SB_DEFAULT_MAX_OUTPUT (16 * 1024)

typedef struct {
    long max_sleep_ms;          /* longest `sleep` a client may ask for */
    const sb_config_t *config;  /* [command NAME] exec = ... */
    const char *store_path;     /* account balances; opened on first use */
    sb_store_t *store;
} sb_command_context_t;

/* Starts the command `request` names. Returns NULL when it finished at
 * once, with `result` filled (an unknown command answers ERR
 * unknown-command); otherwise a running job. */
sb_job_t *sb_command_start(sb_command_context_t *context, const sb_envelope_t *request,
                           sb_command_result_t *result);

#endif
