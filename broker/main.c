/* main.c — sb-broker: settings, then the routing loop of broker.c. */
#include <czmq.h>
#include <signal.h>

#include "broker.h"
#include "curve.h"
#include "log.h"
#include "options.h"
#include "process.h"
#include "programs.h"



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
