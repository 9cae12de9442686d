/* job.c — timers and external programs as jobs (see job.h).
 *
 * Programs are started with posix_spawn: the worker has ZeroMQ threads,
 * and posix_spawn does in the child only what is safe after fork in a
 * threaded process. The worker never blocks on a program: its output is
 * read as it comes, and it is killed when its time is up. */
#include "job.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"

/* While a program's pipes are closed but it has not been reaped, look this often. */
#define REAP_POLL_MS 20
#define STDERR_LINE_MAX 512

enum { OUT, ERR };

struct sb_job {
    int64_t due_ms;
    int64_t reap_check_ms;        /* program: when to look for its exit again, or 0 */
    char text[64];                /* timer: the result */
    /* program */
    char name[64];
    pid_t pid;                    /* 0 once reaped */
    pid_t group;                  /* its process group: outlives it while children remain */
    int status;
    int fds[2];                   /* stdout, stderr read ends; -1 once at EOF */
    char *output;
    size_t output_length, max_output;
    bool truncated;
    char error_line[STDERR_LINE_MAX];
    size_t error_length;
};

static void result_set(sb_command_result_t *result, bool ok, const char *code,
                       const char *format, ...) __attribute__((format(printf, 4, 5)));

static void result_set(sb_command_result_t *result, bool ok, const char *code,
                       const char *format, ...)
{
    va_list args;
    va_start(args, format);
    result->ok = ok;
    result->code = code;
    vsnprintf(result->text, sizeof result->text, format, args);
    va_end(args);
}

sb_job_t *sb_job_timer(int64_t due_ms, const char *text)
{
    sb_job_t *job = calloc(1, sizeof *job);
    job->due_ms = due_ms;
    job->fds[OUT] = job->fds[ERR] = -1;
    snprintf(job->text, sizeof job->text, "%s", text);
    return job;
}

/* ---------------------------------------------------------------- starting */

static bool make_pipe(int ends[2])
{
    if (pipe2(ends, O_CLOEXEC) != 0)
        return false;
    fcntl(ends[0], F_SETFL, O_NONBLOCK);
    return true;
}

static int spawn(const sb_process_spec_t *spec, int out[2], int err[2], pid_t *pid)
{
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attributes;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&actions, err[1], STDERR_FILENO);
    posix_spawnattr_init(&attributes);
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&attributes, &none);
    posix_spawnattr_setsigdefault(&attributes, &all);   /* nothing the worker ignores */
    posix_spawnattr_setpgroup(&attributes, 0);
    posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF
                                              | POSIX_SPAWN_SETPGROUP);
    int error = posix_spawn(pid, spec->argv[0], &actions, &attributes, spec->argv, spec->envp);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attributes);
    return error;
}

sb_job_t *sb_job_process(const sb_process_spec_t *spec, sb_command_result_t *result)
{
    int out[2], err[2];
    if (!make_pipe(out)) {
        result_set(result, false, "internal", "cannot make a pipe: %s", strerror(errno));
        return NULL;
    }
    if (!make_pipe(err)) {
        result_set(result, false, "internal", "cannot make a pipe: %s", strerror(errno));
        close(out[0]);
        close(out[1]);
        return NULL;
    }
    pid_t pid;
    int error = spawn(spec, out, err, &pid);
    close(out[1]);
    close(err[1]);
    if (error != 0) {
        close(out[0]);
        close(err[0]);
        result_set(result, false, "internal", "cannot run %s: %s", spec->argv[0], strerror(error));
        return NULL;
    }
    sb_job_t *job = calloc(1, sizeof *job);
    job->due_ms = spec->deadline_ms;
    snprintf(job->name, sizeof job->name, "%s", spec->name);
    job->pid = pid;
    job->group = pid;
    job->fds[OUT] = out[0];
    job->fds[ERR] = err[0];
    job->max_output = spec->max_output;
    job->output = malloc(spec->max_output + 1);
    return job;
}

/* ---------------------------------------------------------------- running */

int64_t sb_job_due_ms(const sb_job_t *job)
{
    return job->reap_check_ms && job->reap_check_ms < job->due_ms ? job->reap_check_ms
                                                                   : job->due_ms;
}

size_t sb_job_fds(const sb_job_t *job, int fds[2])
{
    size_t count = 0;
    for (int i = OUT; i <= ERR; i++)
        if (job->fds[i] >= 0)
            fds[count++] = job->fds[i];
    return count;
}

static void keep_output(sb_job_t *job, const char *data, size_t length)
{
    size_t room = job->max_output - job->output_length;
    if (length > room) {
        job->truncated = true;
        length = room;
    }
    memcpy(job->output + job->output_length, data, length);
    job->output_length += length;
}

/* stderr goes to the log a line at a time; an over-long line in pieces. */
static void log_errors(sb_job_t *job, const char *data, size_t length)
{
    for (size_t i = 0; i < length; i++) {
        bool line_end = data[i] == '\n';
        if (!line_end)
            job->error_line[job->error_length++] = data[i];
        if (line_end || job->error_length == STDERR_LINE_MAX - 1) {
            job->error_line[job->error_length] = '\0';
            char quoted[SB_LOG_QUOTE_MAX];
            sb_log_info("command stderr", "command=%s pid=%d line=%s", job->name, (int) job->pid,
                        sb_log_quote(quoted, job->error_line));
            job->error_length = 0;
        }
    }
}

static void read_pipe(sb_job_t *job, int which)
{
    char buffer[8192];
    while (job->fds[which] >= 0) {
        ssize_t got = read(job->fds[which], buffer, sizeof buffer);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0 && errno == EAGAIN)
            return;
        if (got <= 0) {   /* end of file, or an error that ends it the same way */
            close(job->fds[which]);
            job->fds[which] = -1;
            if (which == ERR && job->error_length > 0)
                log_errors(job, "\n", 1);   /* a last line without its newline */
            return;
        }
        if (which == OUT)
            keep_output(job, buffer, (size_t) got);
        else
            log_errors(job, buffer, (size_t) got);
    }
}

/* The program may be gone already while children it left hold its pipes
 * open: the group is killed either way. */
static void kill_group(sb_job_t *job)
{
    if (job->group > 0)
        kill(-job->group, SIGKILL);
    if (job->pid > 0)
        waitpid(job->pid, &job->status, 0);
    job->pid = 0;
}

static void job_free(sb_job_t **job_p)
{
    sb_job_t *job = *job_p;
    for (int i = OUT; i <= ERR; i++)
        if (job->fds[i] >= 0)
            close(job->fds[i]);
    free(job->output);
    free(job);
    *job_p = NULL;
}

/* The output as one line: trailing line breaks dropped, the others and
 * tabs turned into spaces, a marker where it was cut. */
static void fold_output(sb_job_t *job, char *out, size_t size)
{
    size_t length = job->output_length;
    while (length > 0 && strchr("\n\r \t", job->output[length - 1]))
        length--;
    size_t used = 0;
    for (size_t i = 0; i < length && used + 1 < size; i++) {
        char c = job->output[i];
        out[used++] = (c == '\n' || c == '\r' || c == '\t') ? ' ' : c;
    }
    out[used] = '\0';
    if (job->truncated)
        snprintf(out + used, size - used, " [output cut at %zu bytes]", job->max_output);
}

static void process_result(sb_job_t *job, sb_command_result_t *result)
{
    char output[SB_COMMAND_MAX_RESULT - 64];
    fold_output(job, output, sizeof output);
    if (WIFEXITED(job->status) && WEXITSTATUS(job->status) == 0)
        result_set(result, true, NULL, "%s", output);
    else if (WIFEXITED(job->status))
        result_set(result, false, "exit-status", "%d%s%s", WEXITSTATUS(job->status),
                   *output ? " " : "", output);
    else
        result_set(result, false, "exit-status", "killed by signal %d", WTERMSIG(job->status));
}

bool sb_job_finish(sb_job_t **job_p, int64_t now_ms, sb_command_result_t *result)
{
    sb_job_t *job = *job_p;
    bool is_timer = job->pid == 0 && !job->output;
    if (is_timer) {
        if (now_ms < job->due_ms)
            return false;
        result_set(result, true, NULL, "%s", job->text);
        job_free(job_p);
        return true;
    }
    read_pipe(job, OUT);
    read_pipe(job, ERR);
    if (job->pid > 0 && waitpid(job->pid, &job->status, WNOHANG) == job->pid)
        job->pid = 0;
    bool done = job->pid == 0 && job->fds[OUT] < 0 && job->fds[ERR] < 0;
    if (!done && now_ms >= job->due_ms) {
        sb_log_warn("command timed out, killing its process group", "command=%s pid=%d",
                    job->name, (int) job->pid);
        kill_group(job);
        result_set(result, false, "timeout", "%s ran out of time", job->name);
        job_free(job_p);
        return true;
    }
    if (!done) {
        /* Pipes closed but the program not gone: nothing will wake the
         * worker for it, so look again soon. */
        job->reap_check_ms = job->fds[OUT] < 0 && job->fds[ERR] < 0 ? now_ms + REAP_POLL_MS : 0;
        return false;
    }
    process_result(job, result);
    job_free(job_p);
    return true;
}

void sb_job_cancel(sb_job_t **job_p)
{
    if (!*job_p)
        return;
    kill_group(*job_p);
    job_free(job_p);
}
