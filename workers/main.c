/* main.c — sb-workers: the pre-fork master of one service's worker pool.
 *
 * The master opens no ZeroMQ context: it reads its settings, forks N
 * workers (worker.c) and supervises them (common/supervisor.c): a worker
 * that dies is replaced, SIGTERM stops them all after their command. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "log.h"
#include "options.h"
#include "supervisor.h"
#include "worker.h"

#define DEFAULT_WORKERS 2

static const sb_option_spec_t s_specs[] = {
    { "service", SB_OPTION_TEXT, NULL, "default", 0, 0, "NAME",
      "the service this pool serves" },
    { "workers", SB_OPTION_INT, NULL, NULL, 0, 256, "N",
      "number of worker processes (else [service NAME] workers, else 2)" },
    { "broker", SB_OPTION_TEXT, "workers.broker", "tcp://127.0.0.1:7101", 0, 0, "ENDPOINT",
      "the broker's backend endpoint" },
    { "graceful-timeout", SB_OPTION_SECONDS, "workers.graceful_timeout", "30", 0, 86400000,
      "SECONDS", "on SIGTERM, how long workers may finish their command before SIGKILL" },
    { "heartbeat-interval", SB_OPTION_SECONDS, "workers.heartbeat_interval", "1", 10, 600000,
      "SECONDS", "how often each worker tells the broker it is alive" },
    { "heartbeat-liveness", SB_OPTION_INT, "workers.heartbeat_liveness", "3", 1, 100, "N",
      "intervals of broker silence before a worker reconnects" },
    { "max-sleep", SB_OPTION_SECONDS, "workers.max_sleep", "300", 0, 86400000, "SECONDS",
      "longest `sleep` a client may ask for" },
};

static const sb_program_t s_program = {
    "sb-workers", "Pre-forks a pool of workers that serve one service's commands.",
    s_specs, sizeof s_specs / sizeof s_specs[0],
};

/* --workers, else the pool size the config file gives the service, else the default. */
static int pool_size(const sb_options_t *options, const char *service)
{
    if (sb_options_text(options, "workers"))
        return (int) sb_options_int(options, "workers");
    const sb_service_config_t *config = sb_config_service(sb_options_config(options), service);
    return config && config->workers >= 0 ? config->workers : DEFAULT_WORKERS;
}

static pid_t start_worker(void *arg)
{
    pid_t pid = sb_supervisor_fork();
    if (pid == 0)
        _exit(sb_worker_run(arg));
    return pid;
}

int main(int argc, char **argv)
{
    int exit_code;
    sb_options_t *options = sb_options_load(&s_program, argc, argv, &exit_code);
    if (!options)
        return exit_code;
    sb_worker_settings_t settings = {
        .broker = sb_options_text(options, "broker"),
        .service = sb_options_text(options, "service"),
        .limits = { .max_sleep_ms = sb_options_int(options, "max-sleep") },
        .heartbeat_interval_ms = sb_options_int(options, "heartbeat-interval"),
        .heartbeat_liveness = sb_options_int(options, "heartbeat-liveness"),
    };
    int workers = pool_size(options, settings.service);
    sb_supervisor_t *supervisor = sb_supervisor_new("sb-workers",
                                                    sb_options_int(options, "graceful-timeout"));
    if (!supervisor)
        return 1;
    sb_log_info("starting worker pool", "service=%s workers=%d broker=%s", settings.service,
                workers, settings.broker);
    for (int i = 0; i < workers; i++) {
        char label[96];
        snprintf(label, sizeof label, "worker-%s-%d", settings.service, i + 1);
        sb_supervisor_add(supervisor, label, 0, start_worker, &settings);
    }
    sb_supervisor_run(supervisor);
    sb_supervisor_destroy(&supervisor);
    sb_options_destroy(&options);
    return 0;
}
