/* reaper.h — nothing a worker started outlives it.
 *
 * Each worker runs in a session of its own (sb_supervisor_fork_session: its
 * pid is the session id), and
 * every program it starts for a request runs in a process group of its own
 * inside that session (job.c). The master is a subreaper: what a dead worker
 * leaves behind is reparented to the master, not to init. When the master
 * reaps a worker, for whatever reason it died (kill -9, the watchdog's
 * SIGALRM, a graceful stop that ran out of time and ended in SIGKILL), it
 * kills every process left in that worker's session; the supervisor's reap
 * loop then collects them like any other child. */
#ifndef SB_REAPER_H
#define SB_REAPER_H

#include <stdbool.h>
#include <sys/types.h>

/* Makes this process (the master) the subreaper of its descendants. */
bool sb_reaper_init(void);

/* SIGKILL to every live process of session `session` (a worker's pid) until
 * none is left; returns how many were killed. */
int sb_reaper_kill_session(pid_t session);

#endif
