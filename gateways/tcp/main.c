/* main.c — sb-gateway-tcp: settings, then the loop of tcp_gateway.c. */
#include <czmq.h>

#include "gateway_base.h"
#include "log.h"
#include "options.h"
#include "process.h"
#include "programs.h"
#include "tcp_gateway.h"

int main(int argc, char **argv)
{
    sb_process_init();
    int exit_code;
    sb_options_t *options = sb_options_load(&sb_program_gateway_tcp, argc, argv, &exit_code);
    if (!options)
        return exit_code;
    if (!sb_gateway_process_init(options)) {
        sb_options_destroy(&options);
        return 2;
    }
    sb_tcp_gateway_settings_t settings = {
        .base = sb_gateway_base_settings(options),
        .max_connections = (size_t) sb_options_int(options, "max-connections"),
        .max_line = (size_t) sb_options_int(options, "max-line"),
        .max_inflight = (size_t) sb_options_int(options, "max-inflight"),
        .max_output = (size_t) sb_options_int(options, "max-output"),
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
