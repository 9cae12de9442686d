/* commands.c — the commands a worker runs (see commands.h): the built-in
 * ones (common/builtin_commands.c names them), `account` on the shared
 * store, and external programs. Each takes the client's arguments and
 * writes a one-line result, or returns a job that is finished later. */
#include "commands.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "builtin_commands.h"
#include "cmdline.h"
#include "config_check.h"
#include "log.h"
#include "seconds.h"

typedef sb_job_t *(command_fn)(sb_command_context_t *context, size_t argc, char **argv,
                               sb_command_result_t *result);

static int64_t monotonic_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t) now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

static sb_job_t *answer(sb_command_result_t *result, bool ok, const char *code,
                        const char *format, ...) __attribute__((format(printf, 4, 5)));

/* Fills `result` and returns NULL: the command is done. */
static sb_job_t *answer(sb_command_result_t *result, bool ok, const char *code,
                        const char *format, ...)
{
    va_list args;
    va_start(args, format);
    result->ok = ok;
    result->code = code;
    vsnprintf(result->text, sizeof result->text, format, args);
    va_end(args);
    return NULL;
}

/* ---------------------------------------------------------------- built-ins */

static sb_job_t *run_echo(sb_command_context_t *context, size_t argc, char **argv,
                          sb_command_result_t *result)
{
    (void) context;
    result->ok = true;
    result->code = NULL;
    sb_cmdline_join(argc, argv, result->text, sizeof result->text);
    return NULL;
}

static sb_job_t *run_hello(sb_command_context_t *context, size_t argc, char **argv,
                           sb_command_result_t *result)
{
    (void) context;
    if (argc != 1 || argv[0][0] == '\0')
        return answer(result, false, "bad-args", "usage: hello NAME");
    char name[256];
    snprintf(name, sizeof name, "%s", argv[0]);
    for (char *c = name; *c; c++)
        *c = (char) toupper((unsigned char) *c);
    return answer(result, true, NULL, "Hello %s", name);
}

static sb_job_t *run_sleep(sb_command_context_t *context, size_t argc, char **argv,
                           sb_command_result_t *result)
{
    double seconds;
    double limit = context->max_sleep_ms / 1000.0;
    if (argc != 1 || !sb_seconds_parse(argv[0], &seconds))
        return answer(result, false, "bad-args", "usage: sleep SECONDS (a number, at most %g)",
                      limit);
    if (seconds > limit)
        return answer(result, false, "bad-args", "sleep is limited to %g seconds", limit);
    char text[64];
    snprintf(text, sizeof text, "slept %s", argv[0]);
    return sb_job_timer(monotonic_ms() + sb_seconds_to_ms(seconds), text);
}

static sb_job_t *run_time(sb_command_context_t *context, size_t argc, char **argv,
                          sb_command_result_t *result)
{
    (void) context;
    (void) argv;
    if (argc != 0)
        return answer(result, false, "bad-args", "usage: time");
    time_t now = time(NULL);
    struct tm utc;
    gmtime_r(&now, &utc);
    result->ok = true;
    result->code = NULL;
    strftime(result->text, sizeof result->text, "%Y-%m-%dT%H:%M:%SZ", &utc);
    return NULL;
}

/* ---------------------------------------------------------------- account */

static bool account_name_ok(const char *name)
{
    size_t length = strlen(name);
    return length > 0 && length <= 64
           && strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")
                  == length;
}

/* AMOUNT: a whole number from 1 to SB_ACCOUNT_MAX_AMOUNT; absent means 1. */
static bool parse_amount(size_t argc, char **argv, int64_t *amount)
{
    if (argc < 3) {
        *amount = 1;
        return true;
    }
    const char *text = argv[2];
    if (argc > 3 || !*text || strlen(text) > 10 || strspn(text, "0123456789") != strlen(text))
        return false;
    *amount = strtoll(text, NULL, 10);
    return *amount >= 1 && *amount <= SB_ACCOUNT_MAX_AMOUNT;
}

static sb_job_t *run_account(sb_command_context_t *context, size_t argc, char **argv,
                             sb_command_result_t *result)
{
    static const char usage[] =
        "usage: account NAME deposit|withdraw [AMOUNT] | account NAME balance";
    int64_t amount = 0;
    const char *action = argc >= 2 ? argv[1] : "";
    bool is_balance = strcmp(action, "balance") == 0 && argc == 2;
    bool is_change = (strcmp(action, "deposit") == 0 || strcmp(action, "withdraw") == 0)
                     && parse_amount(argc, argv, &amount);
    if (argc < 2 || !account_name_ok(argv[0]) || !(is_balance || is_change))
        return answer(result, false, "bad-args", "%s (NAME: letters, digits, _ . -; AMOUNT: 1 to %ld)",
                      usage, SB_ACCOUNT_MAX_AMOUNT);
    if (!context->store) {
        char error[512];
        context->store = sb_store_open(context->store_path, error, sizeof error);
        if (!context->store)
            return answer(result, false, "internal", "account store unavailable: %s", error);
    }
    int64_t delta = strcmp(action, "withdraw") == 0 ? -amount : amount;
    int64_t balance;
    switch (sb_store_change(context->store, argv[0], delta, &balance)) {
    case SB_STORE_OK:
        return answer(result, true, NULL, "%s %lld", argv[0], (long long) balance);
    case SB_STORE_INSUFFICIENT:
        return answer(result, false, "insufficient-funds", "%s has no money", argv[0]);
    default:
        return answer(result, false, "internal", "account store failed");
    }
}

/* ---------------------------------------------------------------- external */

/* argv of an external command: its program and fixed arguments, then the
 * client's arguments, each one argv entry, never read by a shell. */
static sb_job_t *run_external(const sb_command_config_t *command, const sb_envelope_t *request,
                              sb_command_result_t *result)
{
    size_t fixed;
    const char *reason;
    char **base = sb_exec_argv(command->exec, &fixed, &reason);
    if (!base)
        return answer(result, false, "internal", "bad exec for %s: %s", command->name, reason);
    char **argv = calloc(fixed + request->argc + 1, sizeof *argv);
    memcpy(argv, base, fixed * sizeof *argv);
    if (request->argc)   /* argv is NULL when there are no arguments */
        memcpy(argv + fixed, request->argv, request->argc * sizeof *argv);
    char command_var[128], client_var[128], token_var[96];
    snprintf(command_var, sizeof command_var, "SWITCHBOARD_COMMAND=%s", command->name);
    snprintf(client_var, sizeof client_var, "SWITCHBOARD_CLIENT=%s",
             request->client ? request->client : "");
    /* Who asked: the token's name, empty for an anonymous client. */
    snprintf(token_var, sizeof token_var, "SWITCHBOARD_TOKEN=%s",
             request->token ? request->token : "");
    char *envp[] = { "PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8", command_var, client_var,
                     token_var, NULL };
    sb_process_spec_t spec = {
        .name = command->name, .argv = argv, .envp = envp,
        .deadline_ms = monotonic_ms() + (request->timeout_ms ? request->timeout_ms : 30000),
        .max_output = command->max_output ? command->max_output : SB_DEFAULT_MAX_OUTPUT,
    };
    sb_job_t *job = sb_job_process(&spec, result);
    free(argv);
    sb_exec_argv_free(&base);
    return job;
}

/* ---------------------------------------------------------------- dispatch */

/* The code of each built-in (common/builtin_commands.c names them). */
static command_fn *const s_runs[SB_BUILTIN_COUNT] = {
    [SB_BUILTIN_ECHO] = run_echo,
    [SB_BUILTIN_HELLO] = run_hello,
    [SB_BUILTIN_SLEEP] = run_sleep,
    [SB_BUILTIN_TIME] = run_time,
    [SB_BUILTIN_ACCOUNT] = run_account,
};

sb_job_t *sb_command_start(sb_command_context_t *context, const sb_envelope_t *request,
                           sb_command_result_t *result)
{
    const sb_command_config_t *configured = sb_config_command(context->config, request->command);
    if (configured && configured->exec)
        return run_external(configured, request, result);
    const sb_builtin_command_t *builtin = sb_builtin_command(request->command);
    if (builtin && s_runs[builtin->id])
        return s_runs[builtin->id](context, request->argc, request->argv, result);
    return answer(result, false, "unknown-command", "unknown command '%.64s' (try help)",
                  request->command);
}
