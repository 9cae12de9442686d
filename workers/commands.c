/* commands.c — the built-in worker commands (see commands.h). Each takes
 * the client's arguments and writes a one-line result, or returns a job
 * (only `sleep` does) that is finished later. */
#include "commands.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct sb_job {
    int64_t due_ms;
    char text[64];            /* the result once due */
};

typedef sb_job_t *(command_fn)(const sb_command_limits_t *limits, size_t argc, char **argv,
                               sb_command_result_t *result);

static int64_t monotonic_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t) now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

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

static sb_job_t *run_echo(const sb_command_limits_t *limits, size_t argc, char **argv,
                          sb_command_result_t *result)
{
    (void) limits;
    result->ok = true;
    result->code = NULL;
    join(argc, argv, result->text, sizeof result->text);
    return NULL;
}

static sb_job_t *run_hello(const sb_command_limits_t *limits, size_t argc, char **argv,
                           sb_command_result_t *result)
{
    (void) limits;
    if (argc != 1 || argv[0][0] == '\0') {
        fail(result, "bad-args", "usage: hello NAME");
        return NULL;
    }
    char name[256];
    snprintf(name, sizeof name, "%s", argv[0]);
    for (char *c = name; *c; c++)
        *c = (char) toupper((unsigned char) *c);
    succeed(result, "Hello %s", name);
    return NULL;
}

/* Plain decimal seconds: strtod alone would also take hex, "inf" and exponents. */
static bool parse_seconds(const char *text, double *seconds)
{
    if (!*text || strspn(text, "0123456789.") != strlen(text) || strchr(text, '.') != strrchr(text, '.'))
        return false;
    *seconds = strtod(text, NULL);
    return true;
}

static sb_job_t *run_sleep(const sb_command_limits_t *limits, size_t argc, char **argv,
                           sb_command_result_t *result)
{
    double seconds;
    if (argc != 1 || strlen(argv[0]) > 16 || !parse_seconds(argv[0], &seconds)) {
        fail(result, "bad-args", "usage: sleep SECONDS (a number, at most %g)",
             limits->max_sleep_ms / 1000.0);
        return NULL;
    }
    if (seconds * 1000 > (double) limits->max_sleep_ms) {
        fail(result, "bad-args", "sleep is limited to %g seconds", limits->max_sleep_ms / 1000.0);
        return NULL;
    }
    sb_job_t *job = calloc(1, sizeof *job);
    job->due_ms = monotonic_ms() + (int64_t) (seconds * 1000 + 0.5);
    snprintf(job->text, sizeof job->text, "slept %s", argv[0]);
    return job;
}

static sb_job_t *run_time(const sb_command_limits_t *limits, size_t argc, char **argv,
                          sb_command_result_t *result)
{
    (void) limits;
    (void) argv;
    if (argc != 0) {
        fail(result, "bad-args", "usage: time");
        return NULL;
    }
    time_t now = time(NULL);
    struct tm utc;
    gmtime_r(&now, &utc);
    result->ok = true;
    result->code = NULL;
    strftime(result->text, sizeof result->text, "%Y-%m-%dT%H:%M:%SZ", &utc);
    return NULL;
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

sb_job_t *sb_command_start(const sb_command_limits_t *limits, const char *command, size_t argc,
                           char **argv, sb_command_result_t *result)
{
    for (size_t i = 0; i < sizeof s_commands / sizeof s_commands[0]; i++)
        if (strcmp(command, s_commands[i].name) == 0)
            return s_commands[i].run(limits, argc, argv, result);
    fail(result, "unknown-command", "unknown command '%.64s' (try help)", command);
    return NULL;
}

int64_t sb_job_due_ms(const sb_job_t *job)
{
    return job->due_ms;
}

bool sb_job_finish(sb_job_t **job_p, int64_t now_ms, sb_command_result_t *result)
{
    sb_job_t *job = *job_p;
    if (now_ms < job->due_ms)
        return false;
    succeed(result, "%s", job->text);
    free(job);
    *job_p = NULL;
    return true;
}

void sb_job_cancel(sb_job_t **job_p)
{
    free(*job_p);
    *job_p = NULL;
}
