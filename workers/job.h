/* job.h — a command that does not finish at once: the worker's loop waits
 * for it (on a time, or on a program's output pipes) while it goes on
 * heartbeating the broker. Two kinds: a timer (`sleep`) and an external
 * program run without a shell. */
#ifndef SB_JOB_H
#define SB_JOB_H

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

typedef struct sb_job sb_job_t;

/* Done at `due_ms` (monotonic), answering OK `text`. */
sb_job_t *sb_job_timer(int64_t due_ms, const char *text);

typedef struct {
    const char *name;          /* the command, for logs and SWITCHBOARD_COMMAND */
    char *const *argv;         /* program, fixed arguments, then the client's */
    char *const *envp;
    int64_t deadline_ms;       /* killed (whole process group) after this */
    size_t max_output;         /* bytes of stdout kept; the rest is cut with a marker */
} sb_process_spec_t;

/* Starts the program: stdin is /dev/null, stdout is the result, stderr
 * goes to the log, and it leads a process group of its own so a timeout
 * kills its children too. NULL with `result` filled when it cannot start. */
sb_job_t *sb_job_process(const sb_process_spec_t *spec, sb_command_result_t *result);

/* When to look at the job again at the latest (monotonic ms). */
int64_t sb_job_due_ms(const sb_job_t *job);

/* The fds to wait on for input (0, 1 or 2 of them) in `fds`. */
size_t sb_job_fds(const sb_job_t *job, int fds[2]);

/* Reads what is ready; when the job is done, fills `result`, frees it,
 * sets *job_p to NULL and returns true. */
bool sb_job_finish(sb_job_t **job_p, int64_t now_ms, sb_command_result_t *result);

/* Abandons a job, killing its program; NULL-safe. */
void sb_job_cancel(sb_job_t **job_p);

#endif
