/* main.c — sb-gateway-ws: settings, then the loop of ws_gateway.c. */
#include <czmq.h>
#include <stdlib.h>

#include "gateway_base.h"
#include "host_check.h"
#include "log.h"
#include "options.h"
#include "process.h"
#include "programs.h"
#include "ws_gateway.h"

#define MAX_REQUEST_HEAD 8192

int main(int argc, char **argv)
{
    sb_process_init();
    int exit_code;
    sb_options_t *options = sb_options_load(&sb_program_gateway_ws, argc, argv, &exit_code);
    if (!options)
        return exit_code;
    if (!sb_gateway_process_init(options)) {
        sb_options_destroy(&options);
        return 2;
    }
    sb_gateway_base_settings_t base = sb_gateway_base_settings(options);
    base.reuse_port = sb_options_int(options, "reuse-port") == 1;
    /* Every address the gateway listens on names it (a TLS listener's too). */
    const char *listen_addresses[] = { base.listen, base.tls_listen, NULL };
    char *allowed_hosts = sb_host_allow_list_new(sb_options_text(options, "allow-host"),
                                                 listen_addresses);
    sb_ws_gateway_settings_t settings = {
        .base = base,
        .max_connections = (size_t) sb_options_int(options, "max-connections"),
        .limits = {
            .stream = {
                .max_head = MAX_REQUEST_HEAD,
                .max_message = (size_t) sb_options_int(options, "max-message"),
                .allowed_origins = sb_options_text(options, "allow-origin"),
                .allowed_hosts = allowed_hosts,
                .max_body = (size_t) sb_options_int(options, "api-max-body"),
            },
            .max_inflight = (size_t) sb_options_int(options, "max-inflight"),
            .max_output = (size_t) sb_options_int(options, "max-output"),
            .tls_handshake_timeout_ms = (uint64_t) base.tls_handshake_timeout_ms,
            .handshake_timeout_ms = (uint64_t) sb_options_int(options, "handshake-timeout"),
            .idle_timeout_ms = (uint64_t) sb_options_int(options, "idle-timeout"),
            .ping_interval_ms = (uint64_t) sb_options_int(options, "ping-interval"),
        },
        .api = {
            .cors_origins = sb_options_text(options, "api-cors"),
            /* As many as WebSocket clients, counted apart from them. */
            .max_streams = (size_t) sb_options_int(options, "max-connections"),
        },
    };
    sb_log_debug("allowed hosts", "list=%s", allowed_hosts);
    sb_ws_gateway_t *gateway = sb_ws_gateway_new(&settings);
    if (!gateway) {
        free(allowed_hosts);
        sb_options_destroy(&options);
        return 1;
    }
    sb_ws_gateway_run(gateway);
    sb_ws_gateway_destroy(&gateway);
    free(allowed_hosts);
    sb_options_destroy(&options);
    zsys_shutdown();
    return 0;
}
