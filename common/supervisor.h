/* supervisor.h — keeps a set of child processes running.
 *
 * Used by the sb-workers master (children are forked workers) and by the
 * switchboard launcher (children are the other programs). It restarts a
 * child that dies, braking crash loops with exponential backoff, and on
 * SIGTERM or SIGINT stops the children rank by rank (highest first): each
 * rank gets SIGTERM, then SIGKILL once the graceful timeout has passed.
 * Signals are read from a signalfd, so no work happens in signal handlers.
 * A child that exits with status 0 stopped on purpose (a worker recycled
 * after --max-requests) and is restarted at once, without the brake. */
#ifndef SB_SUPERVISOR_H
#define SB_SUPERVISOR_H

#include <stdbool.h>
#include <sys/types.h>

typedef struct sb_supervisor sb_supervisor_t;

/* Starts one child: forks with sb_supervisor_fork and returns the pid, or -1. */
typedef pid_t (sb_child_start_fn)(void *arg);

/* Called for a signal the supervisor does not handle itself (SIGHUP,
 * SIGTTIN, SIGTTOU, SIGUSR1, SIGUSR2). */
typedef void (sb_signal_fn)(sb_supervisor_t *self, int signo, void *arg);

/* Blocks the signals the supervisor reads; call before starting children
 * or any thread. NULL if the signalfd cannot be made. */
sb_supervisor_t *sb_supervisor_new(const char *name, long graceful_timeout_ms);

void sb_supervisor_destroy(sb_supervisor_t **self_p);

void sb_supervisor_set_signal_handler(sb_supervisor_t *self, sb_signal_fn *handler, void *arg);

/* Called with the pid of each child the supervisor has reaped, whatever
 * ended it (the sb-workers master kills what the worker left behind).
 * Exits of processes that are not its children (orphans reparented to a
 * subreaper) are reaped too, without a call. */
typedef void (sb_child_exit_fn)(pid_t pid, void *arg);

void sb_supervisor_set_exit_handler(sb_supervisor_t *self, sb_child_exit_fn *handler, void *arg);

/* Adds a child and starts it at once; returns its index, -1 on failure. */
int sb_supervisor_add(sb_supervisor_t *self, const char *label, int stop_rank,
                      sb_child_start_fn *start, void *arg);

/* Stops the child added last (SIGTERM, then SIGKILL after the graceful
 * timeout) and does not restart it; false when there is none. */
bool sb_supervisor_remove_last(sb_supervisor_t *self);

/* Rolling restart: starts a fresh copy of every child (its start function
 * is called again, so it sees changed settings), then stops the old ones
 * gracefully. */
void sb_supervisor_restart_all(sb_supervisor_t *self);

/* Sends `signo` to every running child of `rank`. */
void sb_supervisor_signal_rank(sb_supervisor_t *self, int rank, int signo);

/* Whether `pid` is one of its children (running, or being stopped). */
bool sb_supervisor_has_child(const sb_supervisor_t *self, pid_t pid);

/* How many children are being kept (not counting ones being stopped). */
int sb_supervisor_size(const sb_supervisor_t *self);

/* SIGINT and SIGQUIT stop the children at once (SIGKILL) instead of
 * gracefully: how sb-workers reads them. Off by default. */
void sb_supervisor_set_fast_stop(sb_supervisor_t *self, bool fast);

/* Runs until SIGTERM, SIGINT or SIGQUIT, then stops every child. Returns 0. */
int sb_supervisor_run(sb_supervisor_t *self);

/* fork() for a child start function: in the child, signals are back to
 * their defaults and the child gets SIGTERM if the supervisor dies. */
pid_t sb_supervisor_fork(void);

/* Like sb_supervisor_fork, but the child leads a session of its own (its
 * pid is the session id of everything it starts that does not leave it). */
pid_t sb_supervisor_fork_session(void);

#endif
