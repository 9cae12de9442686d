/* worker.h — one worker process: connects to the broker, registers for
 * its service with a credit (how many requests it may hold), and runs what
 * it is given until told to stop: one job at a time, fast commands beside it. */
#ifndef SB_WORKER_H
#define SB_WORKER_H

#include "commands.h"

typedef struct {
    const char *broker;             /* the broker's backend endpoint */
    const char *service;
    sb_command_context_t commands;  /* each worker starts from a copy */
    long heartbeat_interval_ms;     /* how often the worker says it is alive */
    long heartbeat_liveness;        /* intervals of broker silence before reconnecting */
    long max_requests;              /* leave after this many (0: never), to be replaced */
    long prefetch;                  /* requests it may hold at once (its credit), >= 1 */
} sb_worker_settings_t;

/* Runs in a freshly forked child; returns the process exit code. SIGTERM
 * and SIGINT stop it after the command in hand, announcing the leave. */
int sb_worker_run(const sb_worker_settings_t *settings);

#endif
