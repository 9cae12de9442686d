/* pages.c — the dashboard, /metrics and /healthz (see pages.h).
 *
 * Metric names follow Prometheus conventions: counters end in _total,
 * durations are in seconds. The broker's figures come from its `stats`
 * text (key=value words), so a counter added there appears here without
 * a change: the per-service words (queue_SVC, idle_SVC, ...) become
 * labelled metrics, the totals counters, the rest gauges. */
#include "pages.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern const unsigned char sb_dashboard_html[];
extern const size_t sb_dashboard_html_size;

const uint16_t sb_pages_bad_input_codes[4] = { 1002, 1003, 1007, 1009 };

/* Upper bounds of the latency histogram's buckets, in seconds. */
static const double s_latency_bounds[] = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
};

/* The broker's counters among its `stats` keys; other plain keys are gauges. */
static const char *const s_broker_counters[] = {
    "requests", "replies", "timeouts", "busy", "no_service", "malformed", "unmatched_replies",
    "published", "events_sent", "messages", "retained_refused", "retained_writes",
    "retained_batches", "retained_write_errors", "retained_expired", "history_points",
    "history_refused", NULL,
};

/* The broker's per-service words "PREFIXservice=N", as labelled metrics. */
static const struct {
    const char *prefix, *name, *type, *help;
} s_per_service[] = {
    { "queue_", "sb_broker_queue_depth", "gauge", "Requests waiting for a worker, per service." },
    { "idle_", "sb_broker_idle_workers", "gauge", "Workers waiting for a request, per service." },
    { "workers_", "sb_broker_workers", "gauge", "Workers (providers) registered, per service." },
    { "dispatched_", "sb_broker_dispatched_total", "counter",
      "Requests handed to a worker, per service." },
    { "p99_us_", "sb_broker_latency_p99_microseconds", "gauge",
      "99th percentile from a request's arrival to its answer over the last 10 s, per service." },
};
#define PER_SERVICE_COUNT (sizeof s_per_service / sizeof s_per_service[0])

const char *sb_pages_dashboard(size_t *length)
{
    *length = sb_dashboard_html_size;
    return (const char *) sb_dashboard_html;
}

static void describe(FILE *out, const char *name, const char *type, const char *help)
{
    fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void metric(FILE *out, const char *name, const char *type, const char *help,
                   uint64_t value)
{
    describe(out, name, type, help);
    fprintf(out, "%s %" PRIu64 "\n", name, value);
}

static void write_latency(FILE *out, const sb_latency_t *latency)
{
    const char *name = "sb_gateway_request_duration_seconds";
    describe(out, name, "histogram", "Time from sending a request to the broker to its reply.");
    for (size_t i = 0; i < sizeof s_latency_bounds / sizeof s_latency_bounds[0]; i++) {
        uint64_t at_most = sb_latency_count_at_most(latency,
                                                    (uint64_t) (s_latency_bounds[i] * 1e6 + 0.5));
        fprintf(out, "%s_bucket{le=\"%g\"} %" PRIu64 "\n", name, s_latency_bounds[i], at_most);
    }
    fprintf(out, "%s_bucket{le=\"+Inf\"} %" PRIu64 "\n", name, latency->count);
    fprintf(out, "%s_sum %.6f\n%s_count %" PRIu64 "\n", name, (double) latency->sum_us / 1e6,
            name, latency->count);
}

static void write_gateway(FILE *out, const sb_gateway_counts_t *gateway,
                          const sb_router_stats_t *router)
{
    metric(out, "sb_gateway_broker_up", "gauge", "1 while the broker link is up and answering.",
           router->broker_up);
    metric(out, "sb_gateway_connections", "gauge", "WebSocket clients connected.",
           gateway->websocket_clients);
    metric(out, "sb_gateway_http_connections", "gauge", "Connections not (yet) upgraded.",
           gateway->http_clients);
    metric(out, "sb_gateway_connections_accepted_total", "counter",
           "WebSocket clients accepted.", gateway->accepted);
    metric(out, "sb_gateway_connections_refused_total", "counter",
           "Connections refused over --max-connections (503 to an upgrade, or closed at once "
           "in their handshake).", gateway->refused);
    describe(out, "sb_gateway_bad_input_total", "counter",
             "Clients closed for breaking the protocol, by close code.");
    for (size_t i = 0; i < 4; i++)
        fprintf(out, "sb_gateway_bad_input_total{code=\"%u\"} %" PRIu64 "\n",
                sb_pages_bad_input_codes[i], gateway->bad_input[i]);
    metric(out, "sb_gateway_misdirected_total", "counter",
           "HTTP requests and upgrades refused (421) for a Host not in --allow-host.",
           gateway->misdirected);
    describe(out, "sb_gateway_api_answers_total", "counter",
             "HTTP API requests (/api/v1) answered, by status class "
             "(an event stream as it opens).");
    static const char *const classes[] = { "2xx", "4xx", "5xx" };
    for (size_t i = 0; i < 3; i++)
        fprintf(out, "sb_gateway_api_answers_total{class=\"%s\"} %" PRIu64 "\n", classes[i],
                gateway->api_answers[i]);
    metric(out, "sb_gateway_api_streams", "gauge", "HTTP API event streams (/api/v1/events) open.",
           gateway->api_streams);
    metric(out, "sb_gateway_tls_handshakes_total", "counter",
           "TLS handshakes completed on the TLS listener.", gateway->tls.handshakes);
    metric(out, "sb_gateway_tls_failed_total", "counter",
           "TLS connections closed for a failed handshake, garbage or a broken record.",
           gateway->tls.failed);
    metric(out, "sb_gateway_tls_timeouts_total", "counter",
           "TLS connections closed for not completing the handshake in time.",
           gateway->tls.timeouts);
    metric(out, "sb_gateway_auth_failures_total", "counter",
           "Refused credentials: auth commands and Bearer headers.", router->auth_failures);
    metric(out, "sb_gateway_requests_total", "counter", "Requests sent to the broker.",
           router->requests);
    metric(out, "sb_gateway_replies_total", "counter", "Replies received from the broker.",
           router->replies);
    metric(out, "sb_gateway_errors_total", "counter", "Requests answered with an error.",
           router->errors);
    metric(out, "sb_gateway_requests_in_flight", "gauge", "Requests waiting for their reply.",
           router->in_flight);
    metric(out, "sb_gateway_requests_held", "gauge",
           "Requests and publishes held while the broker link is down.", router->held);
    metric(out, "sb_gateway_held_total", "counter",
           "Requests and publishes that waited for the broker link.", router->held_total);
    metric(out, "sb_gateway_unavailable_total", "counter",
           "Requests answered ERR unavailable (no broker link in time, or lost with it).",
           router->unavailable);
    metric(out, "sb_gateway_timeouts_total", "counter",
           "Requests answered ERR timeout by the gateway's own deadline.", router->timeouts);
    metric(out, "sb_gateway_late_replies_total", "counter",
           "Replies from the broker that came after the gateway had answered (dropped).",
           router->late_replies);
    metric(out, "sb_gateway_resent_total", "counter",
           "Retry-safe requests sent again to a new broker after the old one went.",
           router->resent);
    metric(out, "sb_gateway_malformed_total", "counter",
           "Envelopes from the broker dropped as malformed.", router->malformed);
    write_latency(out, router->latency);
}

static bool is_broker_counter(const char *key)
{
    for (const char *const *name = s_broker_counters; *name; name++)
        if (strcmp(*name, key) == 0)
            return true;
    return false;
}

/* A labelled gauge from the words "PREFIXservice=N"; every sample of a
 * metric must follow its HELP and TYPE together, so each gets its own pass. */
static void write_per_service(FILE *out, char **keys, char **values, size_t count,
                              const char *prefix, const char *name, const char *type,
                              const char *help)
{
    describe(out, name, type, help);
    for (size_t i = 0; i < count; i++) {
        if (strncmp(keys[i], prefix, strlen(prefix)) != 0)
            continue;
        fprintf(out, "%s{service=\"", name);
        for (const char *c = keys[i] + strlen(prefix); *c; c++)
            fprintf(out, (*c == '"' || *c == '\\') ? "\\%c" : "%c", *c);
        fprintf(out, "\"} %s\n", values[i]);
    }
}

static bool is_per_service(const char *key)
{
    for (size_t i = 0; i < PER_SERVICE_COUNT; i++)
        if (strncmp(key, s_per_service[i].prefix, strlen(s_per_service[i].prefix)) == 0)
            return true;
    return false;
}

static void write_total(FILE *out, const char *key, const char *value)
{
    char name[96];
    bool counter = is_broker_counter(key);
    snprintf(name, sizeof name, "sb_broker_%s%s", key, counter ? "_total" : "");
    for (char *c = name; *c; c++)
        if (!(*c == '_' || (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9')))
            return;
    describe(out, name, counter ? "counter" : "gauge", "From the broker's stats.");
    fprintf(out, "%s %s\n", name, value);
}

#define MAX_BROKER_WORDS 256

static void write_broker(FILE *out, const char *stats)
{
    metric(out, "sb_broker_up", "gauge", "1 when the broker answered this scrape.", stats != NULL);
    if (!stats)
        return;
    char *copy = strdup(stats), *state = NULL;
    char *keys[MAX_BROKER_WORDS], *values[MAX_BROKER_WORDS];
    size_t count = 0;
    for (char *word = strtok_r(copy, " ", &state); word && count < MAX_BROKER_WORDS;
         word = strtok_r(NULL, " ", &state)) {
        char *equals = strchr(word, '='), *end;
        if (!equals || equals[1] == '\0' || (strtoull(equals + 1, &end, 10), *end != '\0'))
            continue;   /* only key=NUMBER words are figures */
        *equals = '\0';
        keys[count] = word;
        values[count++] = equals + 1;
    }
    for (size_t i = 0; i < PER_SERVICE_COUNT; i++)
        write_per_service(out, keys, values, count, s_per_service[i].prefix,
                          s_per_service[i].name, s_per_service[i].type, s_per_service[i].help);
    for (size_t i = 0; i < count; i++)
        if (!is_per_service(keys[i]))
            write_total(out, keys[i], values[i]);
    free(copy);
}

char *sb_pages_metrics(const sb_gateway_counts_t *gateway, const sb_router_stats_t *router,
                       const char *broker_stats)
{
    char *text = NULL;
    size_t length = 0;
    FILE *out = open_memstream(&text, &length);
    write_gateway(out, gateway, router);
    write_broker(out, broker_stats);
    fclose(out);
    return text;
}
