/* supervisor.c — restarts children that die, stops them in order (see supervisor.h). */
#include "supervisor.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "backoff.h"
#include "log.h"

/* A child that ran at least this long before dying was healthy: restart it at once. */
#define HEALTHY_RUN_MS       5000
#define RESTART_INITIAL_MS   100
#define RESTART_MAX_MS       30000

typedef struct {
    char label[64];
    int stop_rank;
    sb_child_start_fn *start;
    void *arg;
    pid_t pid;                 /* 0 while waiting to restart */
    long started_at_ms;
    long restart_at_ms;        /* when pid is 0: when to start it again */
    sb_backoff_t restart_backoff;
    bool removed;              /* stopping for good: not restarted */
    long kill_at_ms;           /* removed and still running: SIGKILL then */
} child_t;

struct sb_supervisor {
    char name[64];
    long graceful_timeout_ms;
    int signal_fd;
    sigset_t previous_mask;
    child_t *children;
    int child_count;
    sb_signal_fn *signal_handler;
    void *signal_arg;
    sb_child_exit_fn *exit_handler;
    void *exit_arg;
    bool stopping;
    bool fast_stop;            /* SIGINT/SIGQUIT kill at once */
};

static const int s_handled_signals[] = {
    SIGCHLD, SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGTTIN, SIGTTOU, SIGUSR1, SIGUSR2
};

static long now_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return now.tv_sec * 1000L + now.tv_nsec / 1000000L;
}

sb_supervisor_t *sb_supervisor_new(const char *name, long graceful_timeout_ms)
{
    sb_supervisor_t *self = calloc(1, sizeof *self);
    snprintf(self->name, sizeof self->name, "%s", name);
    self->graceful_timeout_ms = graceful_timeout_ms;
    sigset_t mask;
    sigemptyset(&mask);
    for (size_t i = 0; i < sizeof s_handled_signals / sizeof s_handled_signals[0]; i++)
        sigaddset(&mask, s_handled_signals[i]);
    sigprocmask(SIG_BLOCK, &mask, &self->previous_mask);
    self->signal_fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
    if (self->signal_fd < 0) {
        sb_log_error("cannot create signalfd", "error=\"%s\"", strerror(errno));
        sigprocmask(SIG_SETMASK, &self->previous_mask, NULL);
        free(self);
        return NULL;
    }
    return self;
}

void sb_supervisor_destroy(sb_supervisor_t **self_p)
{
    sb_supervisor_t *self = *self_p;
    if (!self)
        return;
    close(self->signal_fd);
    sigprocmask(SIG_SETMASK, &self->previous_mask, NULL);
    free(self->children);
    free(self);
    *self_p = NULL;
}

void sb_supervisor_set_signal_handler(sb_supervisor_t *self, sb_signal_fn *handler, void *arg)
{
    self->signal_handler = handler;
    self->signal_arg = arg;
}

void sb_supervisor_set_exit_handler(sb_supervisor_t *self, sb_child_exit_fn *handler, void *arg)
{
    self->exit_handler = handler;
    self->exit_arg = arg;
}

static pid_t fork_child(bool own_session)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    /* Child: undo what the supervisor set up for itself. */
    sigset_t none;
    sigemptyset(&none);
    for (size_t i = 0; i < sizeof s_handled_signals / sizeof s_handled_signals[0]; i++)
        signal(s_handled_signals[i], SIG_DFL);
    sigprocmask(SIG_SETMASK, &none, NULL);
    /* A group of its own: a terminal's Ctrl-C reaches the supervisor
     * alone, which then stops the children in order. A session is a group
     * too, and also marks everything the child will start. */
    if (!own_session || setsid() < 0)
        setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent)   /* the supervisor died before prctl took effect */
        _exit(1);
    return 0;
}

pid_t sb_supervisor_fork(void)
{
    return fork_child(false);
}

pid_t sb_supervisor_fork_session(void)
{
    return fork_child(true);
}

static void start_child(sb_supervisor_t *self, child_t *child)
{
    child->pid = child->start(child->arg);
    child->started_at_ms = now_ms();
    if (child->pid < 0) {
        sb_log_error("cannot start child", "child=%s error=\"%s\"", child->label, strerror(errno));
        child->pid = 0;
        child->restart_at_ms = now_ms() + sb_backoff_next_delay(&child->restart_backoff);
        return;
    }
    sb_log_info("child started", "supervisor=%s child=%s child_pid=%d",
                self->name, child->label, (int) child->pid);
}

int sb_supervisor_add(sb_supervisor_t *self, const char *label, int stop_rank,
                      sb_child_start_fn *start, void *arg)
{
    child_t *grown = realloc(self->children, (size_t) (self->child_count + 1) * sizeof *grown);
    if (!grown)
        return -1;
    self->children = grown;
    child_t *child = &self->children[self->child_count];
    memset(child, 0, sizeof *child);
    snprintf(child->label, sizeof child->label, "%s", label);
    child->stop_rank = stop_rank;
    child->start = start;
    child->arg = arg;
    sb_backoff_init(&child->restart_backoff, RESTART_INITIAL_MS, 2.0, RESTART_MAX_MS, 0.2,
                    (uint64_t) getpid() * 7919u + (uint64_t) self->child_count);
    start_child(self, child);
    return self->child_count++;
}

int sb_supervisor_size(const sb_supervisor_t *self)
{
    int kept = 0;
    for (int i = 0; i < self->child_count; i++)
        kept += !self->children[i].removed;
    return kept;
}

void sb_supervisor_set_fast_stop(sb_supervisor_t *self, bool fast)
{
    self->fast_stop = fast;
}

static child_t *find_child(const sb_supervisor_t *self, pid_t pid)
{
    for (int i = 0; i < self->child_count; i++)
        if (self->children[i].pid == pid)
            return &self->children[i];
    return NULL;
}

bool sb_supervisor_has_child(const sb_supervisor_t *self, pid_t pid)
{
    return pid > 0 && find_child(self, pid) != NULL;   /* pid 0 marks a child waiting to restart */
}

static void describe_status(int status, char *buffer, size_t size)
{
    char quoted[SB_LOG_QUOTE_MAX];
    if (WIFEXITED(status))
        snprintf(buffer, size, "exit_status=%d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(buffer, size, "signal=%s", sb_log_quote(quoted, strsignal(WTERMSIG(status))));
    else
        snprintf(buffer, size, "status=%d", status);
}

/* Forgets children that were removed and have now exited. */
static void compact_children(sb_supervisor_t *self)
{
    int kept = 0;
    for (int i = 0; i < self->child_count; i++)
        if (!(self->children[i].removed && self->children[i].pid == 0))
            self->children[kept++] = self->children[i];
    self->child_count = kept;
}

/* Collects every child that has exited and plans its restart. */
static void reap_children(sb_supervisor_t *self)
{
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        child_t *child = find_child(self, pid);
        if (!child)
            continue;   /* an orphan reparented to a subreaper: reaped, nothing more */
        char how[96];
        describe_status(status, how, sizeof how);
        child->pid = 0;
        if (self->exit_handler)
            self->exit_handler(pid, self->exit_arg);
        if (self->stopping || child->removed) {
            sb_log_info("child stopped", "child=%s child_pid=%d %s", child->label, (int) pid, how);
            continue;
        }
        long ran_ms = now_ms() - child->started_at_ms;
        bool on_purpose = WIFEXITED(status) && WEXITSTATUS(status) == 0;
        long delay = 0;
        if (ran_ms >= HEALTHY_RUN_MS || on_purpose)
            sb_backoff_reset(&child->restart_backoff);
        else
            delay = sb_backoff_next_delay(&child->restart_backoff);
        child->restart_at_ms = now_ms() + delay;
        sb_log(on_purpose ? SB_LOG_INFO : SB_LOG_WARN,
               on_purpose ? "child exited, restarting" : "child died, restarting",
               "child=%s child_pid=%d %s ran_ms=%ld restart_in_ms=%ld",
               child->label, (int) pid, how, ran_ms, delay);
    }
    compact_children(self);
}

static void restart_due_children(sb_supervisor_t *self)
{
    long now = now_ms();
    for (int i = 0; i < self->child_count; i++) {
        child_t *child = &self->children[i];
        if (child->pid == 0 && !child->removed && child->restart_at_ms <= now)
            start_child(self, child);
    }
}

/* Milliseconds until the next planned restart or kill, or -1 when none is planned. */
static int next_restart_timeout(const sb_supervisor_t *self)
{
    long soonest = -1, now = now_ms();
    for (int i = 0; i < self->child_count; i++) {
        const child_t *child = &self->children[i];
        /* A kept child may be waiting to restart; a removed one to be killed. */
        long due = child->removed ? child->kill_at_ms : child->restart_at_ms;
        bool waiting = child->removed ? child->pid > 0 : child->pid == 0;
        if (waiting) {
            long wait = due > now ? due - now : 0;
            if (soonest < 0 || wait < soonest)
                soonest = wait;
        }
    }
    return (int) soonest;
}

/* Reads one pending signal; 0 when there is none. */
static int read_signal(sb_supervisor_t *self)
{
    struct signalfd_siginfo info;
    ssize_t got = read(self->signal_fd, &info, sizeof info);
    return got == (ssize_t) sizeof info ? (int) info.ssi_signo : 0;
}

/* Waits up to `timeout_ms` for a signal and handles it; SIGCHLD reaps.
 * Returns the signal number, or 0 on timeout. */
static int wait_signal(sb_supervisor_t *self, int timeout_ms)
{
    struct pollfd poll_fd = { .fd = self->signal_fd, .events = POLLIN };
    if (poll(&poll_fd, 1, timeout_ms) <= 0)
        return 0;
    int signo = read_signal(self);
    if (signo == SIGCHLD)
        reap_children(self);
    return signo;
}

static bool rank_alive(const sb_supervisor_t *self, int rank)
{
    for (int i = 0; i < self->child_count; i++)
        if (self->children[i].stop_rank == rank && self->children[i].pid > 0)
            return true;
    return false;
}

void sb_supervisor_signal_rank(sb_supervisor_t *self, int rank, int signo)
{
    for (int i = 0; i < self->child_count; i++)
        if (self->children[i].stop_rank == rank && self->children[i].pid > 0)
            kill(self->children[i].pid, signo);
}

/* SIGTERM to every child of `rank`, SIGKILL to those left after the timeout. */
static void stop_rank(sb_supervisor_t *self, int rank)
{
    sb_supervisor_signal_rank(self, rank, SIGTERM);
    long deadline = now_ms() + self->graceful_timeout_ms;
    while (rank_alive(self, rank) && now_ms() < deadline)
        wait_signal(self, (int) (deadline - now_ms()));
    if (rank_alive(self, rank)) {
        if (self->graceful_timeout_ms > 0)
            sb_log_warn("graceful stop timed out, killing", "supervisor=%s rank=%d",
                        self->name, rank);
        sb_supervisor_signal_rank(self, rank, SIGKILL);
        while (rank_alive(self, rank))
            wait_signal(self, 1000);
    }
}

static int highest_live_rank(const sb_supervisor_t *self)
{
    int highest = -1;
    for (int i = 0; i < self->child_count; i++)
        if (self->children[i].pid > 0 && self->children[i].stop_rank > highest)
            highest = self->children[i].stop_rank;
    return highest;
}

/* Stops a child for good: SIGTERM now, SIGKILL if it outlives the graceful timeout. */
static void retire(sb_supervisor_t *self, child_t *child)
{
    child->removed = true;
    child->kill_at_ms = now_ms() + self->graceful_timeout_ms;
    if (child->pid > 0)
        kill(child->pid, SIGTERM);
}

bool sb_supervisor_remove_last(sb_supervisor_t *self)
{
    for (int i = self->child_count - 1; i >= 0; i--)
        if (!self->children[i].removed) {
            sb_log_info("removing child", "child=%s", self->children[i].label);
            retire(self, &self->children[i]);
            compact_children(self);   /* drops it now if it was waiting to restart */
            return true;
        }
    return false;
}

void sb_supervisor_restart_all(sb_supervisor_t *self)
{
    int count = self->child_count;
    for (int i = 0; i < count; i++) {
        if (self->children[i].removed)
            continue;
        child_t old = self->children[i];   /* sb_supervisor_add may move the array */
        retire(self, &self->children[i]);
        sb_supervisor_add(self, old.label, old.stop_rank, old.start, old.arg);
    }
    compact_children(self);
}

/* Removed children that ignore SIGTERM past the graceful timeout. */
static void kill_overdue_children(sb_supervisor_t *self)
{
    long now = now_ms();
    for (int i = 0; i < self->child_count; i++) {
        child_t *child = &self->children[i];
        if (child->removed && child->pid > 0 && child->kill_at_ms <= now) {
            sb_log_warn("child did not stop in time, killing", "child=%s child_pid=%d",
                        child->label, (int) child->pid);
            kill(child->pid, SIGKILL);
            child->kill_at_ms = now + 1000;
        }
    }
}

static void stop_all(sb_supervisor_t *self, bool fast)
{
    self->stopping = true;
    if (fast)
        self->graceful_timeout_ms = 0;
    for (int rank; (rank = highest_live_rank(self)) >= 0;)
        stop_rank(self, rank);
}

int sb_supervisor_run(sb_supervisor_t *self)
{
    int signo;
    for (;;) {
        signo = wait_signal(self, next_restart_timeout(self));
        if (signo == SIGTERM || signo == SIGINT || signo == SIGQUIT)
            break;
        if (signo != 0 && signo != SIGCHLD && self->signal_handler)
            self->signal_handler(self, signo, self->signal_arg);
        restart_due_children(self);
        kill_overdue_children(self);
    }
    bool fast = self->fast_stop && signo != SIGTERM;
    char quoted[SB_LOG_QUOTE_MAX];
    sb_log_info("stopping", "supervisor=%s signal=%s mode=%s", self->name,
                sb_log_quote(quoted, strsignal(signo)), fast ? "fast" : "graceful");
    stop_all(self, fast);
    return 0;
}
