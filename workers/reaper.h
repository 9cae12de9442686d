/* reaper.h — nothing a worker started outlives it.
 *
 * Each worker runs in a session of its own (sb_supervisor_fork_session: its
 * pid is the session id), and
 * every program it starts for a request runs in a process group of its own
 * inside that session (job.c). The master is a subreaper: what a dead worker
 * leaves behind is reparented to the master, not to init. When the master
 * reaps a worker, for whatever reason it died (kill -9, the watchdog's
 * SIGALRM, a graceful stop that ran out of time and ended in SIGKILL), it
 * kills every process left in that worker's session, then every child of
 * its own that is not a worker: a program that left the session (setsid)
 * and whose parent has died is reparented to the master, and a live
 * worker's programs are that worker's children, never the master's. The
 * supervisor's reap loop then collects them like any other child. */
#ifndef SB_REAPER_H
#define SB_REAPER_H

#include <stdbool.h>
#include <sys/types.h>

/* Makes this process (the master) the subreaper of its descendants. */
bool sb_reaper_init(void);

/* SIGKILL to every live process of session `session` (a worker's pid) until
 * none is left; returns how many were killed. */
int sb_reaper_kill_session(pid_t session);

/* Whether `pid`, a child of the master, is one of its workers. */
typedef bool (sb_reaper_is_worker_fn)(pid_t pid, void *arg);

/* SIGKILL to every live child of this process that `is_worker` does not
 * name, until none is left; returns how many were killed. `dead_worker`
 * names the worker whose death this follows, for the log. */
int sb_reaper_kill_orphans(pid_t dead_worker, sb_reaper_is_worker_fn *is_worker, void *arg);

#endif
