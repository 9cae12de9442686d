/* gateway_base.c — a gateway's listener, client table and stop (see gateway_base.h). */
#include "gateway_base.h"

#include <inttypes.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "address.h"
#include "curve.h"
#include "id_map.h"
#include "log.h"

sb_gateway_base_settings_t sb_gateway_base_settings(const sb_options_t *options)
{
    return (sb_gateway_base_settings_t) {
        .listen = sb_options_text(options, "listen"),
        .tls_listen = strcmp(sb_options_text(options, "tls-listen"), "off") == 0
                          ? NULL : sb_options_text(options, "tls-listen"),
        .tls_cert = sb_options_text(options, "tls-cert"),
        .tls_key = sb_options_text(options, "tls-key"),
        .tls_handshake_timeout_ms = sb_options_int(options, "tls-handshake-timeout"),
        .drain_timeout_ms = sb_options_int(options, "drain-timeout"),
        .router = {
            .config = sb_options_config(options),
            .name = sb_options_text(options, "name"),
            .max_filters = 64,
            .link = { sb_options_text(options, "broker"), sb_options_int(options, "heartbeat-interval"),
                      sb_options_int(options, "heartbeat-liveness") },
            .requests = {
                .broker_wait_ms = sb_options_int(options, "broker-wait"),
                .broker_wait_max = (size_t) sb_options_int(options, "broker-wait-max"),
                .request_timeout_ms = sb_options_int(options, "request-timeout"),
                .max_timeout_ms = sb_options_int(options, "max-timeout"),
                /* The broker answers these itself at once: one that takes
                 * longer than it takes to count as silent is hung. */
                .broker_answer_ms = sb_options_int(options, "heartbeat-interval")
                                    * sb_options_int(options, "heartbeat-liveness"),
            },
        },
    };
}

bool sb_gateway_process_init(const sb_options_t *options)
{
    if (!sb_curve_setup(options, false))
        return false;
    zsys_handler_set(NULL);   /* libuv handles SIGTERM and SIGINT */
    signal(SIGHUP, SIG_IGN);  /* nothing to reload; a stray HUP must not drop every client */
    zsys_init();
    return true;
}

/* Runs before the loop sleeps: nothing may be left unread on the broker
 * socket (its fd will not fire again for it) or unsent to a client. */
static void before_sleep(uv_prepare_t *prepare)
{
    sb_gateway_base_t *self = prepare->data;
    sb_router_drain(self->router);
    void *client;
    while ((client = zlistx_detach(self->with_output, NULL)))
        self->actions->flush(client);
    /* A flush may close a client, whose leave must not wait for the next pass. */
    sb_router_drain(self->router);
    /* What a burst took (client buffers, queued writes) goes back to the
     * system, not only to malloc's free lists. */
    if (sb_router_burst_over(self->router))
        malloc_trim(0);
}

/* Calls `action` on every client; safe when the action closes it. */
static void for_each_client(sb_gateway_base_t *self, void (*action)(void *client))
{
    zlistx_t *open = zhashx_values(self->clients);
    zlistx_set_destructor(open, NULL);
    for (void *client = zlistx_first(open); client; client = zlistx_next(open))
        action(client);
    zlistx_destroy(&open);
}

/* Every client is gone (or the drain timed out): close what is left, so uv_run returns. */
static void finish_stop(sb_gateway_base_t *self)
{
    if (uv_is_closing((uv_handle_t *) &self->before_sleep))
        return;
    uv_close((uv_handle_t *) &self->drain_timer, NULL);
    uv_prepare_stop(&self->before_sleep);
    uv_close((uv_handle_t *) &self->before_sleep, NULL);
    sb_router_close_link(self->router);
}

static void on_drain_timeout(uv_timer_t *timer)
{
    sb_gateway_base_t *self = timer->data;
    sb_log_warn("drain timed out, closing clients", "clients=%zu", zhashx_size(self->clients));
    for_each_client(self, self->actions->close);
}

static void on_stop_signal(uv_signal_t *signal, int signo)
{
    sb_gateway_base_t *self = signal->data;
    char quoted[SB_LOG_QUOTE_MAX];
    sb_log_info("stopping", "signal=%s clients=%zu", sb_log_quote(quoted, strsignal(signo)),
                zhashx_size(self->clients));
    self->stopping = true;
    uv_close((uv_handle_t *) &self->listener, NULL);
    if (self->tls) {
        uv_close((uv_handle_t *) &self->tls_listener, NULL);
        uv_close((uv_handle_t *) &self->reload_signal, NULL);
    }
    for (int i = 0; i < 2; i++)
        uv_close((uv_handle_t *) &self->stop_signals[i], NULL);
    uv_timer_init(self->loop, &self->drain_timer);
    self->drain_timer.data = self;
    uv_timer_start(&self->drain_timer, on_drain_timeout, (uint64_t) self->drain_timeout_ms, 0);
    if (zhashx_size(self->clients) == 0)
        finish_stop(self);
    else
        for_each_client(self, self->actions->finish);
}

void sb_gateway_watch_stop_signals(uv_loop_t *loop, uv_signal_t signals[2], uv_signal_cb on_stop,
                                   void *data)
{
    int numbers[] = { SIGTERM, SIGINT };
    for (int i = 0; i < 2; i++) {
        uv_signal_init(loop, &signals[i]);
        signals[i].data = data;
        uv_signal_start(&signals[i], on_stop, numbers[i]);
    }
}

static void on_reload_signal(uv_signal_t *signal, int signo)
{
    sb_gateway_base_t *self = signal->data;
    (void) signo;
    sb_log_info("SIGHUP: rereading the tls certificate and key", NULL);
    sb_tls_context_reload(self->tls);
}

/* The TLS listener and its certificate; false after logging why. */
static bool listen_tls(sb_gateway_base_t *self, const sb_gateway_base_settings_t *settings,
                       void *owner, uv_connection_cb on_connection)
{
    if (!settings->tls_cert || !settings->tls_key) {
        sb_log_error("--tls-listen needs --tls-cert and --tls-key", "tls_listen=%s",
                     settings->tls_listen);
        return false;
    }
    self->tls = sb_tls_context_new(settings->tls_cert, settings->tls_key);
    if (!self->tls)
        return false;
    if (!sb_address_listen(self->loop, &self->tls_listener, owner, settings->tls_listen,
                           settings->reuse_port, on_connection)) {
        sb_tls_context_destroy(&self->tls);
        return false;
    }
    uv_signal_init(self->loop, &self->reload_signal);
    self->reload_signal.data = self;
    uv_signal_start(&self->reload_signal, on_reload_signal, SIGHUP);
    return true;
}

void sb_gateway_warn_if_open(const sb_router_t *router, const char *listen)
{
    if (!sb_access_enabled(sb_router_access(router)) && !sb_address_is_loopback(listen))
        sb_log_warn("listening beyond loopback without tokens: anyone who can reach it may run "
                    "every command", "address=%s hint=\"add [token NAME] sections (docs/operations.md)\"",
                    listen);
}

bool sb_gateway_base_init(sb_gateway_base_t *self, const sb_gateway_base_settings_t *settings,
                          const sb_router_client_ops_t *ops,
                          const sb_gateway_client_actions_t *actions, void *owner,
                          uv_connection_cb on_connection)
{
    *self = (sb_gateway_base_t) {
        .loop = uv_default_loop(),
        .drain_timeout_ms = settings->drain_timeout_ms,
        .clients = sb_id_map_new(),
        .with_output = zlistx_new(),
        .next_serial = 1,
        .actions = actions,
    };
    self->router = sb_router_new(self->loop, &settings->router, ops, owner);
    if (!self->router
        || !sb_address_listen(self->loop, &self->listener, owner, settings->listen,
                              settings->reuse_port, on_connection))
        return false;
    if (settings->tls_listen && !listen_tls(self, settings, owner, on_connection)) {
        uv_close((uv_handle_t *) &self->listener, NULL);
        return false;
    }
    uv_prepare_init(self->loop, &self->before_sleep);
    self->before_sleep.data = self;
    uv_prepare_start(&self->before_sleep, before_sleep);
    sb_gateway_watch_stop_signals(self->loop, self->stop_signals, on_stop_signal, self);
    sb_log_info("gateway listening", "address=%s tls=%s broker=%s", settings->listen,
                settings->tls_listen ? settings->tls_listen : "off", settings->router.link.endpoint);
    sb_gateway_warn_if_open(self->router, settings->listen);
    if (settings->tls_listen)
        sb_gateway_warn_if_open(self->router, settings->tls_listen);
    return true;
}

void sb_gateway_base_destroy(sb_gateway_base_t *self)
{
    sb_router_destroy(&self->router);
    uv_run(self->loop, UV_RUN_NOWAIT);   /* let closing handles finish */
    sb_tls_context_destroy(&self->tls);
    zhashx_destroy(&self->clients);
    zlistx_destroy(&self->with_output);
}

sb_tls_context_t *sb_gateway_base_tls_of(const sb_gateway_base_t *self, const uv_stream_t *listener)
{
    return listener == (const uv_stream_t *) &self->tls_listener ? self->tls : NULL;
}

sb_tls_counters_t sb_gateway_base_tls_counters(const sb_gateway_base_t *self)
{
    return self->tls ? *sb_tls_context_counters(self->tls) : (sb_tls_counters_t) { 0 };
}

int sb_gateway_base_describe(const sb_gateway_base_t *self, const sb_gateway_client_counts_t *counts,
                             char *buffer, size_t size)
{
    sb_tls_counters_t tls = sb_gateway_base_tls_counters(self);
    int length = snprintf(buffer, size,
                          "connections=%zu accepted=%" PRIu64 " refused=%" PRIu64
                          " misdirected=%" PRIu64 " tls_handshakes=%" PRIu64 " tls_failed=%" PRIu64
                          " tls_timeouts=%" PRIu64,
                          counts->connections, counts->accepted, counts->refused,
                          counts->misdirected, tls.handshakes, tls.failed, tls.timeouts);
    return length < 0 ? 0 : (size_t) length >= size ? (int) size - 1 : length;
}

void sb_gateway_base_run(sb_gateway_base_t *self)
{
    uv_run(self->loop, UV_RUN_DEFAULT);
}

uint64_t sb_gateway_base_next_serial(sb_gateway_base_t *self)
{
    return self->next_serial++;
}

void sb_gateway_base_add(sb_gateway_base_t *self, uint64_t serial, void *client)
{
    zhashx_insert(self->clients, sb_id_map_key(serial), client);
}

void *sb_gateway_base_find(const sb_gateway_base_t *self, uint64_t serial)
{
    return zhashx_lookup(self->clients, sb_id_map_key(serial));
}

size_t sb_gateway_base_count(const sb_gateway_base_t *self)
{
    return zhashx_size(self->clients);
}

void sb_gateway_base_has_output(sb_gateway_base_t *self, void *client)
{
    zlistx_add_end(self->with_output, client);
}

void sb_gateway_base_remove(sb_gateway_base_t *self, uint64_t serial, void *client)
{
    zhashx_delete(self->clients, sb_id_map_key(serial));
    void *handle;
    while ((handle = zlistx_find(self->with_output, client)))
        zlistx_delete(self->with_output, handle);
    if (self->stopping && zhashx_size(self->clients) == 0)
        finish_stop(self);
}
