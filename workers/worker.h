/* worker.h — one worker process: connects to the broker, registers for
 * its service, and runs one command at a time until told to stop. */
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
} sb_worker_settings_t;

/* Runs in a freshly forked child; returns the process exit code. SIGTERM
 * and SIGINT stop it after the command in hand, announcing the leave. */
int sb_worker_run(const sb_worker_settings_t *settings);

#endif
