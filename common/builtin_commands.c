/* builtin_commands.c — the stock worker's built-in commands (see
 * builtin_commands.h). */
#include "builtin_commands.h"

#include <stdio.h>
#include <string.h>

static const sb_builtin_command_t s_builtins[SB_BUILTIN_COUNT] = {
    { SB_BUILTIN_ECHO, "echo", "echo ARGS...: answers its arguments", true, false },
    { SB_BUILTIN_HELLO, "hello", "hello NAME: answers Hello NAME, upper-cased", true, false },
    { SB_BUILTIN_SLEEP, "sleep", "sleep SECONDS: waits, then answers slept SECONDS", false, true },
    { SB_BUILTIN_TIME, "time", "time: the current time, ISO 8601 UTC", true, false },
    { SB_BUILTIN_ACCOUNT, "account",
      "account NAME deposit|withdraw [AMOUNT] | account NAME balance: shared balances; "
      "also NAME:dp and NAME:wd", false, false },
};

const sb_builtin_command_t *sb_builtin_command(const char *name)
{
    for (size_t i = 0; i < SB_BUILTIN_COUNT; i++)
        if (strcmp(s_builtins[i].name, name) == 0)
            return &s_builtins[i];
    return NULL;
}

const sb_builtin_command_t *sb_builtin_command_at(size_t index)
{
    return index < SB_BUILTIN_COUNT ? &s_builtins[index] : NULL;
}

bool sb_builtin_command_runs_as_job(const char *name)
{
    const sb_builtin_command_t *builtin = sb_builtin_command(name);
    return builtin && builtin->runs_as_job;
}

size_t sb_builtin_command_names(char *buffer, size_t size)
{
    size_t used = 0;
    for (size_t i = 0; i < SB_BUILTIN_COUNT; i++) {
        int length = snprintf(buffer + used, size - used, "%s%s", i ? " " : "",
                              s_builtins[i].name);
        if (length < 0 || (size_t) length >= size - used) {
            if (size)
                buffer[0] = '\0';
            return 0;
        }
        used += (size_t) length;
    }
    return used;
}
