/* main.c — sb-gateway-mqtt: settings, then the loop of mqtt_gateway.c. */
#include <czmq.h>
#include <string.h>

#include "data_path.h"
#include "gateway_base.h"
#include "mqtt_gateway.h"
#include "options.h"
#include "process.h"
#include "programs.h"

/* A HOST:PORT setting, NULL for `off`. */
static const char *listen_setting(const sb_options_t *options, const char *name)
{
    const char *value = sb_options_text(options, name);
    return strcmp(value, "off") == 0 ? NULL : value;
}

/* --session-store, else mqtt-sessions.db in the data folder; `off`: none (NULL). */
static const char *session_store(const sb_options_t *options, char *path, size_t size)
{
    const char *given = sb_options_text(options, "session-store");
    if (given && strcmp(given, "off") == 0)
        return NULL;
    if (given)
        return given;
    sb_data_path_default("mqtt-sessions.db", path, size);
    return path;
}

int main(int argc, char **argv)
{
    sb_process_init();
    int exit_code;
    sb_options_t *options = sb_options_load(&sb_program_gateway_mqtt, argc, argv, &exit_code);
    if (!options)
        return exit_code;
    if (!sb_gateway_process_init(options)) {
        sb_options_destroy(&options);
        return 2;
    }
    char store_path[4096];
    sb_mqtt_gateway_settings_t settings = {
        .session_store = session_store(options, store_path, sizeof store_path),
        .base = sb_gateway_base_settings(options),
        .ws_listen = listen_setting(options, "ws-listen"),
        .wss_listen = listen_setting(options, "wss-listen"),
        .max_connections = (size_t) sb_options_int(options, "max-connections"),
        .max_packet = (size_t) sb_options_int(options, "max-packet"),
        .max_output = (size_t) sb_options_int(options, "max-output"),
        .max_queued = (size_t) sb_options_int(options, "max-queued"),
        .max_sessions = (size_t) sb_options_int(options, "max-sessions"),
        .max_subscriptions = (size_t) sb_options_int(options, "max-subscriptions"),
        .receive_maximum = (uint16_t) sb_options_int(options, "receive-maximum"),
        .max_session_expiry_s = (uint32_t) (sb_options_int(options, "max-session-expiry") / 1000),
        .max_keep_alive_s = (uint16_t) (sb_options_int(options, "max-keep-alive") / 1000),
    };
    settings.base.router.max_filters = settings.max_subscriptions;
    sb_mqtt_gateway_t *gateway = sb_mqtt_gateway_new(&settings);
    if (!gateway) {
        sb_options_destroy(&options);
        return 1;
    }
    sb_mqtt_gateway_run(gateway);
    sb_mqtt_gateway_destroy(&gateway);
    sb_options_destroy(&options);
    zsys_shutdown();
    return 0;
}
