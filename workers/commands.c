/* commands.c — the built-in worker commands (see commands.h). Each takes
 * the client's arguments and writes a one-line result. */
#include "commands.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef void (command_fn)(const sb_command_limits_t *limits, size_t argc, char **argv,
                          sb_command_result_t *result);

static void succeed(sb_command_result_t *result, const char *format, ...)
    __attribute__((format(printf, 2, 3)));
static void fail(sb_command_result_t *result, const char *code, const char *format, ...)
    __attribute__((format(printf, 3, 4)));

static void succeed(sb_command_result_t *result, const char *format, ...)
{
    va_list args;
    va_start(args, format);
    result->ok = true;
    result->code = NULL;
    vsnprintf(result->text, sizeof result->text, format, args);
    va_end(args);
}

static void fail(sb_command_result_t *result, const char *code, const char *format, ...)
{
    va_list args;
    va_start(args, format);
    result->ok = false;
    result->code = code;
    vsnprintf(result->text, sizeof result->text, format, args);
    va_end(args);
}

/* Joins arguments with single spaces, as the client would have typed them. */
static void join(size_t argc, char **argv, char *out, size_t size)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < argc && used < size; i++)
        used += (size_t) snprintf(out + used, size - used, "%s%s", i ? " " : "", argv[i]);
}

static void run_echo(const sb_command_limits_t *limits, size_t argc, char **argv,
                     sb_command_result_t *result)
{
    (void) limits;
    result->ok = true;
    result->code = NULL;
    join(argc, argv, result->text, sizeof result->text);
}

static void run_hello(const sb_command_limits_t *limits, size_t argc, char **argv,
                      sb_command_result_t *result)
{
    (void) limits;
    if (argc != 1 || argv[0][0] == '\0') {
        fail(result, "bad-args", "usage: hello NAME");
        return;
    }
    char name[256];
    snprintf(name, sizeof name, "%s", argv[0]);
    for (char *c = name; *c; c++)
        *c = (char) toupper((unsigned char) *c);
    succeed(result, "Hello %s", name);
}

static void run_sleep(const sb_command_limits_t *limits, size_t argc, char **argv,
                      sb_command_result_t *result)
{
    char *end;
    double seconds = argc == 1 ? strtod(argv[0], &end) : -1;
    if (argc != 1 || end == argv[0] || *end || !isfinite(seconds) || seconds < 0) {
        fail(result, "bad-args", "usage: sleep SECONDS (a number, at most %g)",
             limits->max_sleep_ms / 1000.0);
        return;
    }
    if (seconds * 1000 > (double) limits->max_sleep_ms) {
        fail(result, "bad-args", "sleep is limited to %g seconds", limits->max_sleep_ms / 1000.0);
        return;
    }
    struct timespec left = { (time_t) seconds, (long) ((seconds - floor(seconds)) * 1e9) };
    /* A signal (the master asking for a graceful stop) must not cut the sleep short. */
    while (nanosleep(&left, &left) < 0 && errno == EINTR)
        ;
    succeed(result, "slept %s", argv[0]);
}

static void run_time(const sb_command_limits_t *limits, size_t argc, char **argv,
                     sb_command_result_t *result)
{
    (void) limits;
    (void) argv;
    if (argc != 0) {
        fail(result, "bad-args", "usage: time");
        return;
    }
    time_t now = time(NULL);
    struct tm utc;
    gmtime_r(&now, &utc);
    result->ok = true;
    result->code = NULL;
    strftime(result->text, sizeof result->text, "%Y-%m-%dT%H:%M:%SZ", &utc);
}

static const struct {
    const char *name;
    command_fn *run;
} s_commands[] = {
    { "echo", run_echo },
    { "hello", run_hello },
    { "sleep", run_sleep },
    { "time", run_time },
};

void sb_command_run(const sb_command_limits_t *limits, const char *command, size_t argc,
                    char **argv, sb_command_result_t *result)
{
    for (size_t i = 0; i < sizeof s_commands / sizeof s_commands[0]; i++)
        if (strcmp(command, s_commands[i].name) == 0) {
            s_commands[i].run(limits, argc, argv, result);
            return;
        }
    fail(result, "unknown-command", "unknown command '%.64s' (try help)", command);
}
