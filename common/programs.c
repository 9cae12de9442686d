/* programs.c — the settings of every switchboard program (see programs.h).
 * A setting's ini key "section.key" is where the config file sets it. */
#include "programs.h"

#include "envelope.h"

static const sb_option_spec_t s_broker_specs[] = {
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
    { "retained-store", SB_OPTION_TEXT, "broker.retained_store", NULL, 0, 0, "FILE",
      "SQLite file of retained values (`off`: memory only; default: retained.db next to the "
      "pools' --store, /var/lib/switchboard/ as root, else ~/.local/share/switchboard/)" },
    { "retained-max", SB_OPTION_INT, "broker.retained_max", "10000", 0, 10000000, "N",
      "retained topics held at once; a new topic beyond it is refused" },
    { "retained-max-bytes", SB_OPTION_INT, "broker.retained_max_bytes", "16777216", 0,
      1073741824, "BYTES", "topic and payload bytes of all retained values together" },
    { "retained-flush", SB_OPTION_SECONDS, "broker.retained_flush", "0.1", 1, 60000, "SECONDS",
      "longest a retained change waits to be written (changes are written in one transaction)" },
    { "history-points", SB_OPTION_INT, "broker.history_points", "120", 0, 1000, "N",
      "recent values kept per numeric topic for `history` (memory only; 0: no history)" },
    { "history-topics", SB_OPTION_INT, "broker.history_topics", "1000", 0, 100000, "N",
      "numeric topics with a history at once; a new topic beyond it gets none" },
};

const sb_program_t sb_program_broker = {
    "sb-broker", "Routes requests from gateways to worker pools by service name, and replies back.",
    s_broker_specs, sizeof s_broker_specs / sizeof s_broker_specs[0],
};

static const sb_option_spec_t s_workers_specs[] = {
    { "service", SB_OPTION_TEXT, NULL, "default", 0, 0, "NAME",
      "the service this pool serves" },
    { "workers", SB_OPTION_INT, NULL, NULL, 0, 256, "N",
      "number of worker processes (else [service NAME] workers, else 2)" },
    { "broker", SB_OPTION_TEXT, "workers.broker", "tcp://127.0.0.1:7101", 0, 0, "ENDPOINT",
      "the broker's backend endpoint" },
    { "graceful-timeout", SB_OPTION_SECONDS, "workers.graceful_timeout", "30", 0, 86400000,
      "SECONDS", "on SIGTERM, how long workers may finish their command before SIGKILL" },
    { "heartbeat-interval", SB_OPTION_SECONDS, "workers.heartbeat_interval", "1", 10, 600000,
      "SECONDS", "how often each worker tells the broker it is alive" },
    { "heartbeat-liveness", SB_OPTION_INT, "workers.heartbeat_liveness", "3", 1, 100, "N",
      "intervals of broker silence before a worker reconnects" },
    { "store", SB_OPTION_TEXT, "store.path", NULL, 0, 0, "FILE",
      "SQLite file of account balances, shared by every pool (default: "
      "/var/lib/switchboard/switchboard.db as root, else ~/.local/share/switchboard/)" },
    { "max-requests", SB_OPTION_INT, "workers.max_requests", "0", 0, 1000000000, "N",
      "a worker exits after this many requests and is replaced (0: never)" },
    { "max-sleep", SB_OPTION_SECONDS, "workers.max_sleep", "300", 0, 86400000, "SECONDS",
      "longest `sleep` a client may ask for" },
    { "prefetch", SB_OPTION_INT, NULL, NULL, 1, SB_ENVELOPE_MAX_CREDIT, "K",
      "requests each worker may hold at once (else [service NAME] prefetch, else 8); "
      "a worker runs one job (sleep, a program) at a time and its other commands beside it" },
};

const sb_program_t sb_program_workers = {
    "sb-workers", "Pre-forks a pool of workers that serve one service's commands.",
    s_workers_specs, sizeof s_workers_specs / sizeof s_workers_specs[0],
};

/* A gateway's TLS listener (gateways/tls.h), the same settings in each gateway's section. */
#define SB_TLS_LISTENER_SPECS(section)                                                             \
    { "tls-listen", SB_OPTION_TEXT, section ".tls_listen", "off", 0, 0, "HOST:PORT",               \
      "a second address, for TLS clients (`off`: none)" },                                         \
    { "tls-cert", SB_OPTION_TEXT, section ".tls_cert", NULL, 0, 0, "FILE",                         \
      "PEM certificate (chain) of the TLS listener; reread on SIGHUP" },                           \
    { "tls-key", SB_OPTION_TEXT, section ".tls_key", NULL, 0, 0, "FILE",                           \
      "PEM private key of the TLS listener; reread on SIGHUP" },                                   \
    { "tls-handshake-timeout", SB_OPTION_SECONDS, section ".tls_handshake_timeout", "10", 10,      \
      600000, "SECONDS", "how long a TLS client may take to complete its handshake" }

/* What a gateway does with what it would send while the broker is away
 * (every gateway: tcp, ws, device). */
#define SB_GATEWAY_BROKER_WAIT_SPECS(section, what)                                               \
    { "broker-wait", SB_OPTION_SECONDS, section ".broker_wait", "5", 0, 3600000, "SECONDS",        \
      "how long " what " is held while the broker link is down before it is given up "            \
      "(0: not held)" },                                                                          \
    { "broker-wait-max", SB_OPTION_INT, section ".broker_wait_max", "4096", 0, 1000000, "N",      \
      "how many are held at once while the broker is away; more are given up at once" }

/* How long a gateway that serves clients waits for an answer. They are the
 * broker's own keys, so one config file sets both alike. */
#define SB_GATEWAY_TIMEOUT_SPECS                                                                  \
    { "request-timeout", SB_OPTION_SECONDS, "broker.request_timeout", "30", 1, 86400000,          \
      "SECONDS", "the deadline the broker gives a request whose command sets none; the gateway "  \
      "answers ERR timeout 1 s after a request's deadline at the latest" },                       \
    { "max-timeout", SB_OPTION_SECONDS, "broker.max_timeout", "3600", 1, 86400000, "SECONDS",     \
      "the broker's longest deadline (caps the gateway's)" }

#define SB_GATEWAY_REQUEST_SPECS(section)                                                         \
    SB_GATEWAY_BROKER_WAIT_SPECS(section, "a request (or pub)"), SB_GATEWAY_TIMEOUT_SPECS

/* How a gateway that serves clients watches the broker and stops (tcp, ws, mqtt). */
#define SB_GATEWAY_LINK_SPECS(section)                                                            \
    { "heartbeat-interval", SB_OPTION_SECONDS, section ".heartbeat_interval", "1", 10, 600000,   \
      "SECONDS", "how often the gateway checks that the broker is alive" },                       \
    { "heartbeat-liveness", SB_OPTION_INT, section ".heartbeat_liveness", "3", 1, 100, "N",      \
      "intervals without an answer before the broker counts as lost" },                          \
    { "drain-timeout", SB_OPTION_SECONDS, section ".drain_timeout", "5", 0, 3600000, "SECONDS",  \
      "on SIGTERM, how long clients may wait for replies to what they asked" }

static const sb_option_spec_t s_gateway_tcp_specs[] = {
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
    SB_GATEWAY_LINK_SPECS("gateway-tcp"),
    { "max-output", SB_OPTION_INT, "gateway-tcp.max_output", "1048576", 1024, 1073741824, "BYTES",
      "unsent output to a client before it is disconnected as not reading" },
    SB_TLS_LISTENER_SPECS("gateway-tcp"),
    SB_GATEWAY_REQUEST_SPECS("gateway-tcp"),
};

const sb_program_t sb_program_gateway_tcp = {
    "sb-gateway-tcp", "Serves the line protocol over TCP (nc, telnet, scripts).",
    s_gateway_tcp_specs, sizeof s_gateway_tcp_specs / sizeof s_gateway_tcp_specs[0],
};

static const sb_option_spec_t s_gateway_ws_specs[] = {
    { "listen", SB_OPTION_TEXT, "gateway-ws.listen", "127.0.0.1:8080", 0, 0, "HOST:PORT",
      "address browsers connect to (WebSocket and HTTP on one port)" },
    { "broker", SB_OPTION_TEXT, "gateway-ws.broker", "tcp://127.0.0.1:7100", 0, 0, "ENDPOINT",
      "the broker's frontend endpoint" },
    { "name", SB_OPTION_TEXT, "gateway-ws.name", "ws", 0, 0, "NAME",
      "prefix of client ids (unique per gateway)" },
    { "max-connections", SB_OPTION_INT, "gateway-ws.max_connections", "1024", 1, 1000000, "N",
      "WebSocket clients served at once; more are refused with HTTP 503" },
    { "max-message", SB_OPTION_INT, "gateway-ws.max_message", "65536", 126, 16777216, "BYTES",
      "largest frame or message a client may send; larger ones close with 1009" },
    { "max-inflight", SB_OPTION_INT, "gateway-ws.max_inflight", "128", 1, 100000, "N",
      "requests a client may have unanswered before its input is paused" },
    { "max-output", SB_OPTION_INT, "gateway-ws.max_output", "1048576", 1024, 1073741824, "BYTES",
      "unsent output to a client before it is disconnected as not reading" },
    { "handshake-timeout", SB_OPTION_SECONDS, "gateway-ws.handshake_timeout", "10", 10, 600000,
      "SECONDS", "how long a new connection may take to send its HTTP request (head and body)" },
    { "idle-timeout", SB_OPTION_SECONDS, "gateway-ws.idle_timeout", "60", 10, 86400000, "SECONDS",
      "a WebSocket client that sends nothing (not even a pong) this long is closed" },
    { "ping-interval", SB_OPTION_SECONDS, "gateway-ws.ping_interval", "20", 10, 86400000,
      "SECONDS", "how often the gateway pings each WebSocket client" },
    { "allow-origin", SB_OPTION_TEXT, "gateway-ws.allow_origin", "self", 0, 0, "LIST",
      "origins whose pages may connect, comma-separated (`self`: pages this gateway served; "
      "`*`: any)" },
    { "allow-host", SB_OPTION_TEXT, "gateway-ws.allow_host", NULL, 0, 0, "LIST",
      "more names the gateway answers to in the Host header, comma-separated (`*.example`: "
      "names under example; `*`: any); localhost, IP addresses, this host's name and the listen "
      "address always are" },
    { "reuse-port", SB_OPTION_INT, "gateway-ws.reuse_port", "0", 0, 1, "0|1",
      "1: listen with SO_REUSEPORT, so several sb-gateway-ws processes (each with its own "
      "--name) share the port and the kernel spreads connections over them" },
    { "api-max-body", SB_OPTION_INT, "gateway-ws.api_max_body", "65536", 0, 16777216, "BYTES",
      "largest HTTP request body (the HTTP API's JSON, /api/v1/...); larger ones get 413" },
    { "api-cors", SB_OPTION_TEXT, "gateway-ws.api_cors", NULL, 0, 0, "LIST",
      "origins whose pages may call the HTTP API from a browser (CORS), comma-separated "
      "(`*`: any); none by default" },
    SB_GATEWAY_LINK_SPECS("gateway-ws"),
    SB_TLS_LISTENER_SPECS("gateway-ws"),
    SB_GATEWAY_REQUEST_SPECS("gateway-ws"),
};

const sb_program_t sb_program_gateway_ws = {
    "sb-gateway-ws",
    "Serves WebSocket clients (JSON or lines), the HTTP API (/api/v1), the dashboard, /metrics "
    "and /healthz.",
    s_gateway_ws_specs, sizeof s_gateway_ws_specs / sizeof s_gateway_ws_specs[0],
};

static const sb_option_spec_t s_gateway_mqtt_specs[] = {
    { "listen", SB_OPTION_TEXT, "gateway-mqtt.listen", "127.0.0.1:1883", 0, 0, "HOST:PORT",
      "address MQTT clients connect to (TLS: --tls-listen, 8883 by convention)" },
    { "broker", SB_OPTION_TEXT, "gateway-mqtt.broker", "tcp://127.0.0.1:7100", 0, 0, "ENDPOINT",
      "the broker's frontend endpoint" },
    { "name", SB_OPTION_TEXT, "gateway-mqtt.name", "mqtt", 0, 0, "NAME",
      "prefix of client ids (unique per gateway)" },
    { "ws-listen", SB_OPTION_TEXT, "gateway-mqtt.ws_listen", "off", 0, 0, "HOST:PORT",
      "an address for MQTT over WebSocket (subprotocol mqtt; 9001 by convention; `off`: none)" },
    { "wss-listen", SB_OPTION_TEXT, "gateway-mqtt.wss_listen", "off", 0, 0, "HOST:PORT",
      "an address for MQTT over secure WebSocket, with the --tls-listen certificate "
      "(`off`: none)" },
    { "max-connections", SB_OPTION_INT, "gateway-mqtt.max_connections", "1024", 1, 1000000, "N",
      "MQTT connections served at once; more get CONNACK server unavailable" },
    { "max-packet", SB_OPTION_INT, "gateway-mqtt.max_packet", "65536", 128, 65536, "BYTES",
      "largest packet a client may send (v5: announced as Maximum Packet Size); larger ones "
      "close the connection (0x95); the hub carries payloads up to 64 KiB" },
    { "receive-maximum", SB_OPTION_INT, "gateway-mqtt.receive_maximum", "64", 1, 65535, "N",
      "QoS 1 and 2 publishes a client may have unacknowledged towards the gateway (v5: "
      "announced); also the most the gateway sends unacknowledged to a 3.1.1 client, and the "
      "publishes and commands a session may have waiting for the hub (then QoS 0 ones are "
      "dropped, commands answered ERR busy)" },
    { "max-queued", SB_OPTION_INT, "gateway-mqtt.max_queued", "1000", 0, 1000000, "N",
      "messages kept per session while its client is away or its window is full; past it, "
      "the oldest QoS 0 one goes first, then the oldest" },
    { "session-store", SB_OPTION_TEXT, "gateway-mqtt.session_store", NULL, 0, 0, "FILE",
      "SQLite file of the persistent sessions, so they survive a restart (default: "
      "mqtt-sessions.db beside the account store; `off`: memory only)" },
    { "max-sessions", SB_OPTION_INT, "gateway-mqtt.max_sessions", "10000", 1, 10000000, "N",
      "sessions kept (connected or away); when full, the one away the longest is ended for a new "
      "client (logged); with none away, CONNACK quota exceeded" },
    { "max-subscriptions", SB_OPTION_INT, "gateway-mqtt.max_subscriptions", "1000", 1, 100000, "N",
      "topic filters per session, $switchboard/ and $share/ ones included; past it, SUBACK "
      "quota exceeded" },
    { "max-session-expiry", SB_OPTION_SECONDS, "gateway-mqtt.max_session_expiry", "604800", 0,
      2147483647, "SECONDS", "longest a session is kept while its client is away (caps v5 "
      "Session Expiry; a 3.1.1 persistent session gets this)" },
    { "max-keep-alive", SB_OPTION_SECONDS, "gateway-mqtt.max_keep_alive", "0", 0, 65535000,
      "SECONDS", "cap on a client's keep alive (v5: sent as Server Keep Alive; 0: no cap)" },
    { "max-output", SB_OPTION_INT, "gateway-mqtt.max_output", "1048576", 1024, 1073741824, "BYTES",
      "unsent output to a client before it is disconnected as not reading" },
    SB_GATEWAY_LINK_SPECS("gateway-mqtt"),
    SB_TLS_LISTENER_SPECS("gateway-mqtt"),
    SB_GATEWAY_REQUEST_SPECS("gateway-mqtt"),
};

const sb_program_t sb_program_gateway_mqtt = {
    "sb-gateway-mqtt", "Serves MQTT 3.1.1 and 5.0 clients on the hub's topics and commands.",
    s_gateway_mqtt_specs, sizeof s_gateway_mqtt_specs / sizeof s_gateway_mqtt_specs[0],
};

static const sb_option_spec_t s_gateway_device_specs[] = {
    { "broker", SB_OPTION_TEXT, "gateway-device.broker", "tcp://127.0.0.1:7100", 0, 0, "ENDPOINT",
      "the broker's frontend, where device events are published" },
    { "backend", SB_OPTION_TEXT, "gateway-device.backend", "tcp://127.0.0.1:7101", 0, 0,
      "ENDPOINT", "the broker's backend, where the `device` service is provided" },
    { "listen", SB_OPTION_TEXT, "gateway-device.listen", "off", 0, 0, "HOST:PORT",
      "where devices dial in with HELLO NAME [TOKEN] (`off`: no dial-in)" },
    { "slots", SB_OPTION_INT, "gateway-device.slots", "8", 1, 256, "N",
      "device commands served at once (each a provider of `device` at the broker)" },
    { "max-line", SB_OPTION_INT, "gateway-device.max_line", "4096", 16, 65536, "BYTES",
      "longest line to or from a device" },
    { "hello-timeout", SB_OPTION_SECONDS, "gateway-device.hello_timeout", "5", 10, 600000,
      "SECONDS", "how long a device that dials in may take to say HELLO" },
    { "heartbeat-interval", SB_OPTION_SECONDS, "gateway-device.heartbeat_interval", "1", 10,
      600000, "SECONDS", "how often the gateway and the broker exchange heartbeats" },
    { "heartbeat-liveness", SB_OPTION_INT, "gateway-device.heartbeat_liveness", "3", 1, 100, "N",
      "intervals without an answer before the broker counts as lost" },
    SB_GATEWAY_BROKER_WAIT_SPECS("gateway-device", "a device's event"),
    { "hub-name", SB_OPTION_TEXT, "hub.name", "hub", 0, 0, "NAME",
      "this hub's name in Home Assistant ids and topics (switchboard_NAME_DEVICE; letters, "
      "digits, -)" },
    { "ha-prefix", SB_OPTION_TEXT, "hub.ha_prefix", "homeassistant", 0, 0, "TOPIC",
      "Home Assistant's MQTT discovery prefix (its status is PREFIX/status)" },
};

const sb_program_t sb_program_gateway_device = {
    "sb-gateway-device", "Links the hub to devices ([device NAME] sections) and serves `device`.",
    s_gateway_device_specs, sizeof s_gateway_device_specs / sizeof s_gateway_device_specs[0],
};

static const sb_option_spec_t s_bridge_specs[] = {
    { "broker", SB_OPTION_TEXT, "bridges.broker", "tcp://127.0.0.1:7100", 0, 0, "ENDPOINT",
      "the broker's frontend, where the bridges publish and subscribe" },
    { "heartbeat-interval", SB_OPTION_SECONDS, "bridges.heartbeat_interval", "1", 10, 600000,
      "SECONDS", "how often the process and the broker exchange heartbeats" },
    { "heartbeat-liveness", SB_OPTION_INT, "bridges.heartbeat_liveness", "3", 1, 100, "N",
      "intervals without an answer before the broker counts as lost" },
    { "stats-interval", SB_OPTION_SECONDS, "bridges.stats_interval", "1", 100, 3600000,
      "SECONDS", "how often each bridge's changed counters are published on "
      "$sys/bridges/NAME/stats" },
    SB_GATEWAY_BROKER_WAIT_SPECS("bridges", "a message that came in"),
};

const sb_program_t sb_program_bridge = {
    "sb-bridge", "Bridges the hub to remote MQTT brokers ([bridge NAME] sections).",
    s_bridge_specs, sizeof s_bridge_specs / sizeof s_bridge_specs[0],
};

static const sb_option_spec_t s_launcher_specs[] = {
    { "check-config", SB_OPTION_TEXT, NULL, NULL, 0, 0, "FILE",
      "check FILE, print every problem with its line, and exit (0: valid)" },
    { "tcp", SB_OPTION_TEXT, "launcher.tcp", "127.0.0.1:7000", 0, 0, "HOST:PORT",
      "where the TCP gateway listens" },
    { "ws", SB_OPTION_TEXT, "launcher.ws", "127.0.0.1:8080", 0, 0, "HOST:PORT",
      "where the WebSocket gateway listens (dashboard, /metrics, /healthz); `off`: none" },
    { "ws-processes", SB_OPTION_INT, "launcher.ws_processes", "1", 1, 64, "N",
      "WebSocket gateway processes sharing that port (SO_REUSEPORT), each its own gateway to "
      "the broker (client ids ws-N, ws2-N, ...): fan-out to many clients on several cores" },
    { "mqtt", SB_OPTION_TEXT, "launcher.mqtt", "127.0.0.1:1883", 0, 0, "HOST:PORT",
      "where the MQTT gateway listens; `off`: none" },
    { "workers", SB_OPTION_INT, NULL, NULL, 0, 256, "N",
      "size of the `default` pool (else [service default] workers, else 2)" },
    { "runtime-dir", SB_OPTION_TEXT, "launcher.runtime_dir", NULL, 0, 0, "DIR",
      "where the ipc:// sockets live (default: $XDG_RUNTIME_DIR or /tmp, per launch)" },
    { "graceful-timeout", SB_OPTION_SECONDS, "launcher.graceful_timeout", "35", 0, 3600000,
      "SECONDS", "how long each child may take to stop before SIGKILL (longer than the "
      "pools' own --graceful-timeout, so they finish their commands first)" },
};

const sb_program_t sb_program_launcher = {
    "switchboard", "Runs the whole hub on this machine: broker, worker pools, TCP, WebSocket and MQTT gateways, "
    "the device gateway when the config has [device] sections, and sb-bridge when it has [bridge] "
    "sections.",
    s_launcher_specs, sizeof s_launcher_specs / sizeof s_launcher_specs[0],
};

const sb_program_t *const sb_programs[] = {
    &sb_program_broker, &sb_program_workers, &sb_program_gateway_tcp, &sb_program_gateway_ws,
    &sb_program_gateway_mqtt, &sb_program_gateway_device, &sb_program_bridge, &sb_program_launcher,
    NULL,
};
