/* main.c — sb-gateway-device: settings, then the loop of device_gateway.c. */
#include <czmq.h>

#include "device_gateway.h"
#include "gateway_base.h"
#include "options.h"
#include "process.h"
#include "programs.h"

int main(int argc, char **argv)
{
    sb_process_init();
    int exit_code;
    sb_options_t *options = sb_options_load(&sb_program_gateway_device, argc, argv, &exit_code);
    if (!options)
        return exit_code;
    if (!sb_gateway_process_init(options)) {
        sb_options_destroy(&options);
        return 2;
    }
    sb_device_gateway_settings_t settings = {
        .broker = sb_options_text(options, "broker"),
        .backend = sb_options_text(options, "backend"),
        .listen = sb_options_text(options, "listen"),
        .heartbeat_interval_ms = sb_options_int(options, "heartbeat-interval"),
        .heartbeat_liveness = sb_options_int(options, "heartbeat-liveness"),
        .slots = (size_t) sb_options_int(options, "slots"),
        .max_line = (size_t) sb_options_int(options, "max-line"),
        .hello_timeout_ms = sb_options_int(options, "hello-timeout"),
        .broker_wait_ms = sb_options_int(options, "broker-wait"),
        .broker_wait_max = (size_t) sb_options_int(options, "broker-wait-max"),
        .hub_name = sb_options_text(options, "hub-name"),
        .ha_prefix = sb_options_text(options, "ha-prefix"),
        .config = sb_options_config(options),
    };
    sb_config_t *empty = NULL;
    if (!settings.config)
        settings.config = empty = sb_config_new();
    sb_device_gateway_t *gateway = sb_device_gateway_new(&settings);
    if (!gateway) {
        sb_config_destroy(&empty);
        sb_options_destroy(&options);
        return 1;
    }
    sb_device_gateway_run(gateway);
    sb_device_gateway_destroy(&gateway);
    sb_config_destroy(&empty);
    sb_options_destroy(&options);
    zsys_shutdown();
    return 0;
}
