/* main.c — sb-bridge: settings, then the loop of bridge_hub.c. */
#include <czmq.h>

#include "bridge_hub.h"
#include "gateway_base.h"
#include "log.h"
#include "options.h"
#include "process.h"
#include "programs.h"

int main(int argc, char **argv)
{
    sb_process_init();
    int exit_code;
    sb_options_t *options = sb_options_load(&sb_program_bridge, argc, argv, &exit_code);
    if (!options)
        return exit_code;
    if (!sb_gateway_process_init(options)) {
        sb_options_destroy(&options);
        return 2;
    }
    sb_bridge_hub_settings_t settings = {
        .broker = sb_options_text(options, "broker"),
        .heartbeat_interval_ms = sb_options_int(options, "heartbeat-interval"),
        .heartbeat_liveness = sb_options_int(options, "heartbeat-liveness"),
        .broker_wait_ms = sb_options_int(options, "broker-wait"),
        .broker_wait_max = (size_t) sb_options_int(options, "broker-wait-max"),
        .stats_interval_ms = sb_options_int(options, "stats-interval"),
        .config = sb_options_config(options),
    };
    sb_config_t *empty = NULL;
    if (!settings.config)
        settings.config = empty = sb_config_new();
    /* Without bridges it idles (a compose service or unit that is always
     * there does not restart in a loop); the launcher does not start it. */
    if (sb_config_bridge_count(settings.config) == 0)
        sb_log_warn("no [bridge NAME] section in the config: nothing to bridge", NULL);
    sb_bridge_hub_t *hub = sb_bridge_hub_new(&settings);
    if (!hub) {
        sb_config_destroy(&empty);
        sb_options_destroy(&options);
        return 1;
    }
    sb_bridge_hub_run(hub);
    sb_bridge_hub_destroy(&hub);
    sb_config_destroy(&empty);
    sb_options_destroy(&options);
    zsys_shutdown();
    return 0;
}
