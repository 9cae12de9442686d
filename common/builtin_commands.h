/* builtin_commands.h — the commands the stock worker runs itself (§4), in
 * one table: the worker dispatches on it, the gateways' `help` describes
 * them and their retry default comes from it, and the config check accepts
 * a `[command NAME]` without `exec` when NAME is one of them. */
#ifndef SB_BUILTIN_COMMANDS_H
#define SB_BUILTIN_COMMANDS_H

#include <stdbool.h>
#include <stddef.h>

/* Which built-in an entry is; the worker maps each to its code. */
typedef enum {
    SB_BUILTIN_ECHO,
    SB_BUILTIN_HELLO,
    SB_BUILTIN_SLEEP,
    SB_BUILTIN_TIME,
    SB_BUILTIN_ACCOUNT,
    SB_BUILTIN_COUNT
} sb_builtin_id_t;

typedef struct {
    sb_builtin_id_t id;
    const char *name;
    const char *description;   /* what `help NAME` answers */
    /* Safe to run twice: when the worker running it dies, the broker gives
     * it to another (unless `[command NAME] retry` says otherwise). */
    bool retry_safe;
    /* Answered later by a job the worker waits on while it heartbeats,
     * not at once (sleep). */
    bool runs_as_job;
} sb_builtin_command_t;

/* The built-in named `name`, or NULL. */
const sb_builtin_command_t *sb_builtin_command(const char *name);

/* The built-ins in table order: index 0 .. SB_BUILTIN_COUNT - 1, else NULL. */
const sb_builtin_command_t *sb_builtin_command_at(size_t index);

/* Whether `name` is a built-in that runs as a job. */
bool sb_builtin_command_runs_as_job(const char *name);

/* The names, space-separated in table order, into `buffer` ("" when it is
 * too small); returns the length. */
size_t sb_builtin_command_names(char *buffer, size_t size);

#endif
