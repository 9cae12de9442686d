/* commands.h — the commands a worker runs itself (§4): echo, hello, sleep, time. */
#ifndef SB_COMMANDS_H
#define SB_COMMANDS_H

#include <stdbool.h>
#include <stddef.h>

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

/* Runs `command` with its arguments and fills `result`; an unknown command
 * answers ERR unknown-command. */
void sb_command_run(const sb_command_limits_t *limits, const char *command, size_t argc,
                    char **argv, sb_command_result_t *result);


#endif
