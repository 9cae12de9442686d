/* main.c — sb-gateway-ws: settings, then the loop of ws_gateway.c. */
#include <czmq.h>

#include "gateway_base.h"
#include "log.h"
#include "options.h"
#include "programs.h"
#include "ws_gateway.h"

#define MAX_REQUEST_HEAD 8192

int main(int argc, char **argv)
{
    int exit_code;
    sb_options_t *options = sb_options_load(&sb_program_gateway_ws, argc, argv, &exit_code);
    if (!options)
        return exit_code;
    if (!sb_gateway_process_init(options)) {
        sb_options_destroy(&options);
        return 2;
    }
    sb_gateway_base_settings_t base = sb_gateway_base_settings(options);
    sb_ws_gateway_settings_t settings = {
        .base = base,
        .max_connections = (size_t) sb_options_int(options, "max-connections"),
        .limits = {
            .stream = {
                .max_head = MAX_REQUEST_HEAD,
                .max_message = (size_t) sb_options_int(options, "max-message"),
                .allowed_origins = sb_options_text(options, "allow-origin"),
            },
            .max_inflight = (size_t) sb_options_int(options, "max-inflight"),
            .max_output = (size_t) sb_options_int(options, "max-output"),
            .tls_handshake_timeout_ms = (uint64_t) base.tls_handshake_timeout_ms,
            .handshake_timeout_ms = (uint64_t) sb_options_int(options, "handshake-timeout"),
            .idle_timeout_ms = (uint64_t) sb_options_int(options, "idle-timeout"),
            .ping_interval_ms = (uint64_t) sb_options_int(options, "ping-interval"),
        },
    };
    sb_ws_gateway_t *gateway = sb_ws_gateway_new(&settings);
    if (!gateway) {
        sb_options_destroy(&options);
        return 1;
    }
    sb_ws_gateway_run(gateway);
    sb_ws_gateway_destroy(&gateway);
    sb_options_destroy(&options);
    zsys_shutdown();
    return 0;
}
