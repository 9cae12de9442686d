/* main.c — sb-gateway-tcp: settings, then the loop of tcp_gateway.c. */
#include <czmq.h>

#include "curve.h"
#include "gateway_base.h"
#include "log.h"
#include "options.h"
#include "programs.h"
#include "tcp_gateway.h"



int main(int argc, char **argv)
{
    int exit_code;
    sb_options_t *options = sb_options_load(&sb_program_gateway_tcp, argc, argv, &exit_code);
    if (!options)
        return exit_code;
    if (!sb_curve_setup(options, false)) {
        sb_options_destroy(&options);
        return 2;
    }
    sb_gateway_process_init();
    sb_tcp_gateway_settings_t settings = {
        .listen = sb_options_text(options, "listen"),
        .broker = sb_options_text(options, "broker"),
        .heartbeat_interval_ms = sb_options_int(options, "heartbeat-interval"),
        .heartbeat_liveness = sb_options_int(options, "heartbeat-liveness"),
        .name = sb_options_text(options, "name"),
        .max_connections = (size_t) sb_options_int(options, "max-connections"),
        .max_line = (size_t) sb_options_int(options, "max-line"),
        .max_inflight = (size_t) sb_options_int(options, "max-inflight"),
        .max_output = (size_t) sb_options_int(options, "max-output"),
        .drain_timeout_ms = sb_options_int(options, "drain-timeout"),
        .config = sb_options_config(options),
    };
    sb_tcp_gateway_t *gateway = sb_tcp_gateway_new(&settings);
    if (!gateway) {
        sb_options_destroy(&options);
        return 1;
    }
    sb_tcp_gateway_run(gateway);
    sb_tcp_gateway_destroy(&gateway);
    sb_options_destroy(&options);
    zsys_shutdown();
    return 0;
}
