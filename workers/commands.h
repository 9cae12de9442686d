/* commands.h — the commands a worker runs itself (§4): echo, hello, sleep, time.
 *
 * A command either finishes at once or becomes a *job* that the worker's
 * loop waits for, so the worker keeps heartbeating the broker while a
 * long command runs. */
#ifndef SB_COMMANDS_H
#define SB_COMMANDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Room for the longest result: an `echo` of a maximum-length line. */
#define SB_COMMAND_MAX_RESULT (128 * 1024)

typedef struct {
    bool ok;
    const char *code;                    /* error code word when !ok */
    char text[SB_COMMAND_MAX_RESULT];    /* result when ok, message when not */
} sb_command_result_t;

typedef struct {
    long max_sleep_ms;    /* longest `sleep` a client may ask for */
} sb_command_limits_t;

typedef struct sb_job sb_job_t;

/* Starts `command` with its arguments. Returns NULL when it finished at
 * once, with `result` filled (an unknown command answers ERR
 * unknown-command); otherwise a running job. */
sb_job_t *sb_command_start(const sb_command_limits_t *limits, const char *command, size_t argc,
                           char **argv, sb_command_result_t *result);

/* When the job will be done (monotonic milliseconds): the worker sleeps no longer. */
int64_t sb_job_due_ms(const sb_job_t *job);

/* If the job is done at `now_ms`, fills `result`, frees the job, sets
 * *job_p to NULL and returns true. */
bool sb_job_finish(sb_job_t **job_p, int64_t now_ms, sb_command_result_t *result);

/* Abandons a running job (its requester is gone); NULL-safe. */
void sb_job_cancel(sb_job_t **job_p);


#endif
