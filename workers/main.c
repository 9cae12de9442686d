/* main.c — sb-workers: the pre-fork master of one service's worker pool.
 *
 * The master opens no ZeroMQ context: it reads its settings, forks N
 * workers (worker.c) and supervises them (common/supervisor.c): a worker
 * that dies is replaced. Signals: TERM stops the workers after their
 * command (bounded by --graceful-timeout), INT and QUIT stop them at once,
 * HUP re-reads the settings and replaces every worker (rolling restart),
 * TTIN and TTOU add or remove one worker; that count survives HUP. The
 * master is a subreaper and kills whatever a dead worker left running
 * (reaper.c). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "curve.h"
#include "data_path.h"
#include "log.h"
#include "options.h"
#include "process.h"
#include "programs.h"
#include "reaper.h"
#include "supervisor.h"
#include "worker.h"

#define DEFAULT_WORKERS 2



/* --workers, else the pool size the config file gives the service, else the default. */
static int pool_size(const sb_options_t *options, const char *service)
{
    if (sb_options_text(options, "workers"))
        return (int) sb_options_int(options, "workers");
    const sb_service_config_t *config = sb_config_service(sb_options_config(options), service);
    return config && config->workers >= 0 ? config->workers : DEFAULT_WORKERS;
}

#define DEFAULT_PREFETCH 8

/* --prefetch, else the service's prefetch in the config file, else the default. */
static long pool_prefetch(const sb_options_t *options, const char *service)
{
    if (sb_options_text(options, "prefetch"))
        return sb_options_int(options, "prefetch");
    const sb_service_config_t *config = sb_config_service(sb_options_config(options), service);
    return config && config->prefetch > 0 ? config->prefetch : DEFAULT_PREFETCH;
}

/* What the master keeps between signals: the settings workers are forked
 * with (replaced on HUP) and the command line to re-read them from. */
typedef struct {
    int argc;
    char **argv;
    sb_options_t *options;
    sb_worker_settings_t settings;
    int added;                  /* workers added by TTIN so far, for labels */
} pool_t;

/* --store, else switchboard.db in the data folder (data_path.h). */
static const char *store_path(const sb_options_t *options)
{
    static char path[4096];
    const char *given = sb_options_text(options, "store");
    if (given)
        return given;
    sb_data_path_default("switchboard.db", path, sizeof path);
    return path;
}

static void take_settings(pool_t *pool, sb_options_t *options)
{
    sb_options_destroy(&pool->options);   /* forked workers have their own copies */
    pool->options = options;
    pool->settings = (sb_worker_settings_t) {
        .broker = sb_options_text(options, "broker"),
        .service = sb_options_text(options, "service"),
        .commands = {
            .max_sleep_ms = sb_options_int(options, "max-sleep"),
            .config = sb_options_config(options),
            .store_path = store_path(options),
        },
        .heartbeat_interval_ms = sb_options_int(options, "heartbeat-interval"),
        .heartbeat_liveness = sb_options_int(options, "heartbeat-liveness"),
        .max_requests = sb_options_int(options, "max-requests"),
        .prefetch = pool_prefetch(options, sb_options_text(options, "service")),
    };
}

static pid_t start_worker(void *arg)
{
    pool_t *pool = arg;
    pid_t pid = sb_supervisor_fork_session();   /* what it starts is found by its session */
    if (pid == 0)
        _exit(sb_worker_run(&pool->settings));
    return pid;
}

static bool is_worker(pid_t pid, void *arg)
{
    return sb_supervisor_has_child(arg, pid);
}

/* A worker is gone: so is everything it started, in its session or not. */
static void on_worker_exit(pid_t pid, void *arg)
{
    int killed = sb_reaper_kill_session(pid);
    killed += sb_reaper_kill_orphans(pid, is_worker, arg);
    if (killed > 0)
        sb_log_warn("killed what a dead worker left running", "worker_pid=%d processes=%d",
                    (int) pid, killed);
}

static void add_worker(sb_supervisor_t *supervisor, pool_t *pool)
{
    char label[96];
    snprintf(label, sizeof label, "worker-%s-%d", pool->settings.service, ++pool->added);
    sb_supervisor_add(supervisor, label, 0, start_worker, pool);
}

/* HUP: settings are read again from the same command line, environment
 * and file; a bad file keeps the running settings. */
static void reload(sb_supervisor_t *supervisor, pool_t *pool)
{
    int exit_code;
    sb_options_t *options = sb_options_load(&sb_program_workers, pool->argc, pool->argv, &exit_code);
    if (!options) {
        sb_log_error("reload failed, keeping the running settings", NULL);
        return;
    }
    take_settings(pool, options);
    sb_log_info("rolling restart", "service=%s workers=%d", pool->settings.service,
                sb_supervisor_size(supervisor));
    sb_supervisor_restart_all(supervisor);
}

static void on_signal(sb_supervisor_t *supervisor, int signo, void *arg)
{
    pool_t *pool = arg;
    if (signo == SIGHUP)
        reload(supervisor, pool);
    else if (signo == SIGTTIN)
        add_worker(supervisor, pool);
    else if (signo == SIGTTOU)
        sb_supervisor_remove_last(supervisor);
    if (signo == SIGTTIN || signo == SIGTTOU)
        sb_log_info("pool resized", "service=%s workers=%d", pool->settings.service,
                    sb_supervisor_size(supervisor));
}

int main(int argc, char **argv)
{
    sb_process_init();
    int exit_code;
    sb_options_t *options = sb_options_load(&sb_program_workers, argc, argv, &exit_code);
    if (!options)
        return exit_code;
    if (!sb_curve_setup(options, false)) {   /* loaded here, used by every forked worker */
        sb_options_destroy(&options);
        return 2;
    }
    pool_t pool = { .argc = argc, .argv = argv };
    take_settings(&pool, options);
    int workers = pool_size(options, pool.settings.service);
    sb_supervisor_t *supervisor = sb_supervisor_new("sb-workers",
                                                    sb_options_int(options, "graceful-timeout"));
    if (!supervisor)
        return 1;
    sb_supervisor_set_fast_stop(supervisor, true);
    sb_supervisor_set_signal_handler(supervisor, on_signal, &pool);
    sb_reaper_init();
    sb_supervisor_set_exit_handler(supervisor, on_worker_exit, supervisor);
    sb_log_info("starting worker pool", "service=%s workers=%d broker=%s",
                pool.settings.service, workers, pool.settings.broker);
    for (int i = 0; i < workers; i++)
        add_worker(supervisor, &pool);
    sb_supervisor_run(supervisor);
    sb_supervisor_destroy(&supervisor);
    sb_options_destroy(&pool.options);
    return 0;
}
