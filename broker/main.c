/* main.c — sb-broker: settings, then the routing loop of broker.c. */
#include <czmq.h>
#include <signal.h>

#include "broker.h"
#include "curve.h"
#include "data_path.h"
#include "log.h"
#include "options.h"
#include "process.h"
#include "programs.h"

/* --retained-store, else retained.db in the data folder; `off`: none (NULL). */
static const char *retained_path(const sb_options_t *options)
{
    static char path[4096];
    const char *given = sb_options_text(options, "retained-store");
    if (given)
        return strcmp(given, "off") == 0 ? NULL : given;
    sb_data_path_default("retained.db", path, sizeof path);
    return path;
}

int main(int argc, char **argv)
{
    sb_process_init();
    int exit_code;
    sb_options_t *options = sb_options_load(&sb_program_broker, argc, argv, &exit_code);
    if (!options)
        return exit_code;
    sb_broker_settings_t settings = {
        .frontend = sb_options_text(options, "frontend"),
        .backend = sb_options_text(options, "backend"),
        .request_timeout_ms = sb_options_int(options, "request-timeout"),
        .max_timeout_ms = sb_options_int(options, "max-timeout"),
        .queue_max = sb_options_int(options, "queue-max"),
        .startup_grace_ms = sb_options_int(options, "startup-grace"),
        .heartbeat_interval_ms = sb_options_int(options, "heartbeat-interval"),
        .heartbeat_liveness = sb_options_int(options, "heartbeat-liveness"),
        .retained = {
            .path = retained_path(options),
            .max_count = (size_t) sb_options_int(options, "retained-max"),
            .max_bytes = (size_t) sb_options_int(options, "retained-max-bytes"),
            .flush_ms = sb_options_int(options, "retained-flush"),
            .flush_changes = SB_BROKER_RETAINED_BATCH,
        },
        .history = {
            .points = (size_t) sb_options_int(options, "history-points"),
            .max_topics = (size_t) sb_options_int(options, "history-topics"),
        },
    };
    signal(SIGHUP, SIG_IGN);   /* nothing to reload; a stray HUP must not stop routing */
    if (!sb_curve_setup(options, true)) {
        sb_curve_shutdown();
        sb_options_destroy(&options);
        return 2;
    }
    sb_broker_t *broker = sb_broker_new(&settings);
    if (!broker) {
        sb_curve_shutdown();
        sb_options_destroy(&options);
        return 1;
    }
    sb_broker_run(broker);
    sb_broker_destroy(&broker);
    sb_curve_shutdown();
    sb_options_destroy(&options);
    return 0;
}
