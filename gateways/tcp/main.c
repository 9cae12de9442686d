/* main.c — sb-gateway-tcp: settings, then the loop of tcp_gateway.c. */
#include <czmq.h>
#include <signal.h>

#include "log.h"
#include "options.h"
#include "tcp_gateway.h"

static const sb_option_spec_t s_specs[] = {
    { "listen", SB_OPTION_TEXT, "gateway-tcp.listen", "127.0.0.1:7000", 0, 0, "HOST:PORT",
      "address clients connect to" },
    { "broker", SB_OPTION_TEXT, "gateway-tcp.broker", "tcp://127.0.0.1:7100", 0, 0, "ENDPOINT",
      "the broker's frontend endpoint" },
    { "name", SB_OPTION_TEXT, "gateway-tcp.name", "tcp", 0, 0, "NAME",
      "prefix of client ids (unique per gateway)" },
    { "max-connections", SB_OPTION_INT, "gateway-tcp.max_connections", "1024", 1, 1000000, "N",
      "clients served at once; more are refused with ERR busy" },
    { "max-line", SB_OPTION_INT, "gateway-tcp.max_line", "65536", 16, 200000, "BYTES",
      "longest request line; longer ones get ERR too-long" },
    { "max-inflight", SB_OPTION_INT, "gateway-tcp.max_inflight", "128", 1, 100000, "N",
      "requests a client may have unanswered before its input is paused" },
    { "heartbeat-interval", SB_OPTION_SECONDS, "gateway-tcp.heartbeat_interval", "1", 10, 600000,
      "SECONDS", "how often the gateway checks that the broker is alive" },
    { "heartbeat-liveness", SB_OPTION_INT, "gateway-tcp.heartbeat_liveness", "3", 1, 100, "N",
      "intervals without an answer before the broker counts as lost" },
    { "drain-timeout", SB_OPTION_SECONDS, "gateway-tcp.drain_timeout", "5", 0, 3600000, "SECONDS",
      "on SIGTERM, how long clients may wait for replies to what they asked" },
    { "max-output", SB_OPTION_INT, "gateway-tcp.max_output", "1048576", 1024, 1073741824, "BYTES",
      "unsent output to a client before it is disconnected as not reading" },
};

static const sb_program_t s_program = {
    "sb-gateway-tcp", "Serves the line protocol over TCP (nc, telnet, scripts).",
    s_specs, sizeof s_specs / sizeof s_specs[0],
};

int main(int argc, char **argv)
{
    int exit_code;
    sb_options_t *options = sb_options_load(&s_program, argc, argv, &exit_code);
    if (!options)
        return exit_code;
    zsys_handler_set(NULL);   /* libuv handles SIGTERM and SIGINT */
    signal(SIGPIPE, SIG_IGN); /* a client gone mid-write is an error return, not a death */
    signal(SIGHUP, SIG_IGN);  /* nothing to reload; a stray HUP must not drop every client */
    zsys_init();
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
