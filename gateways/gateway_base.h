/* gateway_base.h — what every gateway process does around its clients,
 * whatever protocol they speak: listen, keep the clients by serial, flush
 * their output before the loop sleeps, and on SIGTERM or SIGINT accept no
 * more and let each client have its last replies (bounded by a drain
 * timeout) before the loop ends. It also owns the router (requests, the
 * broker link, presence).
 *
 * With --tls-listen it listens a second time, for TLS (gateways/tls.h):
 * the gateway asks sb_gateway_base_tls_of which listener a connection came
 * from. SIGHUP rereads the certificate and key.
 *
 * A gateway embeds an sb_gateway_base_t and tells it, through
 * sb_gateway_client_actions_t, how to flush, finish and close one of its
 * clients; it reports each client it accepts, each that has output, and
 * each that has closed. */
#ifndef SB_GATEWAY_BASE_H
#define SB_GATEWAY_BASE_H

#include <czmq.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "options.h"
#include "router.h"
#include "tls.h"

typedef struct {
    void (*flush)(void *client);    /* send buffered output */
    void (*finish)(void *client);   /* answer what it asked, then close */
    void (*close)(void *client);    /* close at once */
} sb_gateway_client_actions_t;

/* What every gateway is told, whatever its protocol. */
typedef struct {
    const char *listen;              /* HOST:PORT */
    const char *tls_listen;          /* HOST:PORT, or NULL: no TLS listener */
    bool reuse_port;                 /* SO_REUSEPORT on both: other processes share the ports */
    const char *tls_cert, *tls_key;  /* PEM files */
    long tls_handshake_timeout_ms;
    long drain_timeout_ms;           /* on SIGTERM, how long clients get their last replies */
    sb_router_settings_t router;     /* broker, heartbeats, client id prefix, config */
} sb_gateway_base_settings_t;

/* Reads them: --listen, --tls-*, --broker, --name, --heartbeat-*, --drain-timeout,
 * --broker-wait, --broker-wait-max, --request-timeout, --max-timeout, --config. */
sb_gateway_base_settings_t sb_gateway_base_settings(const sb_options_t *options);

typedef struct {
    uv_loop_t *loop;
    uv_tcp_t listener;
    uv_tcp_t tls_listener;           /* when `tls` */
    sb_tls_context_t *tls;
    uv_signal_t reload_signal;       /* SIGHUP, when `tls` */
    uv_prepare_t before_sleep;
    uv_signal_t stop_signals[2];
    uv_timer_t drain_timer;
    bool stopping;
    long drain_timeout_ms;
    sb_router_t *router;
    zhashx_t *clients;               /* serial -> the gateway's client */
    zlistx_t *with_output;           /* clients to flush before the loop sleeps */
    uint64_t next_serial;
    const sb_gateway_client_actions_t *actions;
} sb_gateway_base_t;

/* Ignores SIGPIPE and SIGHUP (until a TLS listener watches it), leaves SIGTERM and SIGINT to libuv, sets up
 * CURVE from the options and starts czmq; false (after logging why) when
 * the CURVE settings cannot work. */
bool sb_gateway_process_init(const sb_options_t *options);

/* Calls `on_stop` (with `data` in each handle) on SIGTERM and SIGINT. */
void sb_gateway_watch_stop_signals(uv_loop_t *loop, uv_signal_t signals[2], uv_signal_cb on_stop,
                                   void *data);

/* Connects the router and listens (and loads the TLS files); `on_connection`
 * gets either listener with `owner` as its data. False after logging why
 * (call sb_gateway_base_destroy). */
bool sb_gateway_base_init(sb_gateway_base_t *self, const sb_gateway_base_settings_t *settings,
                          const sb_router_client_ops_t *ops,
                          const sb_gateway_client_actions_t *actions, void *owner,
                          uv_connection_cb on_connection);
void sb_gateway_base_destroy(sb_gateway_base_t *self);

/* The TLS context of connections from `listener`, NULL for the plain one. */
sb_tls_context_t *sb_gateway_base_tls_of(const sb_gateway_base_t *self, const uv_stream_t *listener);

/* A gateway's own counts of its clients, for `stats`. */
typedef struct {
    size_t connections;
    uint64_t accepted, refused;
    uint64_t misdirected;   /* closed or refused for speaking HTTP to the wrong door */
} sb_gateway_client_counts_t;

/* The `stats` words of a gateway: "connections=N accepted=N refused=N
 * misdirected=N" and the TLS counters (tls_handshakes, tls_failed,
 * tls_timeouts); the length written. */
int sb_gateway_base_describe(const sb_gateway_base_t *self, const sb_gateway_client_counts_t *counts,
                             char *buffer, size_t size);

/* The TLS listener's counters (zero without one). */
sb_tls_counters_t sb_gateway_base_tls_counters(const sb_gateway_base_t *self);
/* Logs a warning when `listen` is not on loopback and the config has no
 * access rules (called for the main listener; call it for any other). */
void sb_gateway_warn_if_open(const sb_router_t *router, const char *listen);

/* Runs until stopped and drained. */
void sb_gateway_base_run(sb_gateway_base_t *self);

/* The serial for the next client. */
uint64_t sb_gateway_base_next_serial(sb_gateway_base_t *self);
void sb_gateway_base_add(sb_gateway_base_t *self, uint64_t serial, void *client);
void *sb_gateway_base_find(const sb_gateway_base_t *self, uint64_t serial);
size_t sb_gateway_base_count(const sb_gateway_base_t *self);
/* The client has output: it is flushed before the loop next sleeps. */
void sb_gateway_base_has_output(sb_gateway_base_t *self, void *client);
/* The client has closed and is about to be freed. */
void sb_gateway_base_remove(sb_gateway_base_t *self, uint64_t serial, void *client);

#endif
