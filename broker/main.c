/* main.c — sb-broker: settings, then the routing loop of broker.c. */
#include <czmq.h>
#include <signal.h>

#include "broker.h"
#include "log.h"
#include "options.h"

static const sb_option_spec_t s_specs[] = {
    { "frontend", SB_OPTION_TEXT, "broker.frontend", "tcp://127.0.0.1:7100", 0, 0, "ENDPOINT",
      "where gateways connect (bound)" },
    { "backend", SB_OPTION_TEXT, "broker.backend", "tcp://127.0.0.1:7101", 0, 0, "ENDPOINT",
      "where worker pools and other providers connect (bound)" },
    { "request-timeout", SB_OPTION_SECONDS, "broker.request_timeout", "30", 1, 86400000, "SECONDS",
      "deadline of a request whose command sets none" },
    { "max-timeout", SB_OPTION_SECONDS, "broker.max_timeout", "3600", 1, 86400000, "SECONDS",
      "longest deadline any request may ask for" },
    { "queue-max", SB_OPTION_INT, "broker.queue_max", "1000", 0, 1000000, "N",
      "requests waiting per service before ERR busy" },
    { "startup-grace", SB_OPTION_SECONDS, "broker.startup_grace", "2", 0, 600000, "SECONDS",
      "after start, how long a service may take to appear before ERR no-service" },
    { "heartbeat-interval", SB_OPTION_SECONDS, "broker.heartbeat_interval", "1", 10, 600000,
      "SECONDS", "how often the broker and providers exchange heartbeats" },
    { "heartbeat-liveness", SB_OPTION_INT, "broker.heartbeat_liveness", "3", 1, 100, "N",
      "intervals of silence after which a provider is dead" },
};

static const sb_program_t s_program = {
    "sb-broker", "Routes requests from gateways to worker pools by service name, and replies back.",
    s_specs, sizeof s_specs / sizeof s_specs[0],
};

int main(int argc, char **argv)
{
    int exit_code;
    sb_options_t *options = sb_options_load(&s_program, argc, argv, &exit_code);
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
    sb_broker_t *broker = sb_broker_new(&settings);
    if (!broker) {
        sb_options_destroy(&options);
        return 1;
    }
    sb_broker_run(broker);
    sb_broker_destroy(&broker);
    sb_options_destroy(&options);
    return 0;
}
