/* broker_commands.c — the broker's own commands (see broker_commands.h). */
#include "broker_commands.h"

#include <inttypes.h>
#include <time.h>

#include "cmdline.h"
#include "envelope_io.h"
#include "log.h"
#include "topic.h"

/* A `topics` reply stays well inside one envelope, and its words inside
 * what a gateway's line parser takes (two per value, SB_CMDLINE_MAX_ARGS). */
#define TOPICS_MAX_TEXT   (SB_ENVELOPE_MAX_SIZE - 16 * 1024)
#define TOPICS_MAX_VALUES 500

typedef const sb_broker_state_t broker_t;

static void answer_local(broker_t *self, zframe_t *gateway, uint64_t id, bool ok,
                         const char *code, const char *text)
{
    if (sb_dispatch_answer_send(self->frontend, gateway, id, ok, code, text) < 0)
        sb_log_warn("reply dropped, it cannot be encoded", "request=%" PRIu64, id);
}

typedef struct {
    char *text;
    size_t size;
} stats_text_t;

/* One word more, if it fits whole. */
static void append_word(stats_text_t *out, const char *word)
{
    size_t used = strlen(out->text), length = strlen(word);
    if (used + 1 + length < out->size)
        snprintf(out->text + used, out->size - used, " %s", word);
}

/* sb-bridge publishes each bridge's counters retained on
 * $sys/bridges/NAME/stats ("in=3 out=5 ..."): they are told here as
 * bridge_KEY_NAME=N, so `stats broker` and /metrics show every bridge. */
static void append_bridge_stats(void *arg, const char *topic, const sb_retained_value_t *value)
{
    const char *name = topic + strlen("$sys/bridges/");
    size_t name_length = strcspn(name, "/");
    char *copy = strdup(value->payload ? value->payload : ""), *state = NULL;
    for (char *word = strtok_r(copy, " ", &state); word; word = strtok_r(NULL, " ", &state)) {
        char *equals = strchr(word, '=');
        if (!equals)
            continue;
        char entry[256];
        snprintf(entry, sizeof entry, "bridge_%.*s_%.*s=%s", (int) (equals - word), word,
                 (int) name_length, name, equals + 1);
        append_word(arg, entry);
    }
    free(copy);
}

/* `stats broker` on a gateway: the broker's own counters and queues. */
static void answer_stats(broker_t *self, zframe_t *gateway, uint64_t id,
                         const sb_envelope_t *request)
{
    (void) request;
    char text[8192] = "";
    /* What follows the services: about 700 bytes of counters, then the bridges. */
    sb_dispatch_describe(self->dispatch, text, sizeof text, 2700);
    size_t used = strlen(text);
    const sb_broker_counters_t *c = self->counters;
    sb_retained_counters_t r = sb_retained_counters(self->retained);
    sb_history_counters_t h = sb_history_counters(self->history);
    snprintf(text + used, sizeof text - used,
             " malformed=%" PRIu64 " gateways=%zu clients=%zu published=%" PRIu64
             " events_sent=%" PRIu64 " messages=%" PRIu64 " undeliverable=%" PRIu64
             " retained=%zu retained_bytes=%zu"
             " retained_refused=%" PRIu64 " retained_pending=%zu retained_writes=%" PRIu64
             " retained_batches=%" PRIu64 " retained_write_errors=%" PRIu64
             " retained_expired=%" PRIu64 " history_topics=%zu history_points=%" PRIu64
             " history_refused=%" PRIu64,
             c->malformed, sb_directory_gateway_count(self->directory),
             sb_directory_client_count(self->directory), c->published, c->events_sent,
             c->messages, c->undeliverable, r.count, r.bytes, r.refused, r.pending, r.writes, r.batches,
             r.write_errors, r.expired, h.topics, h.recorded, h.refused);
    stats_text_t out = { text, sizeof text };
    sb_retained_each(self->retained, "$sys/bridges/+/stats", zclock_time(), append_bridge_stats,
                     &out);
    answer_local(self, gateway, id, true, NULL, text);
}

/* `clients`: every client of every gateway. */
static void answer_clients(broker_t *self, zframe_t *gateway, uint64_t id,
                           const sb_envelope_t *request)
{
    (void) request;
    char *list = sb_directory_client_list(self->directory);
    answer_local(self, gateway, id, true, NULL, list);
    free(list);
}

/* `client ID`: where a client is connected, and since when. */
static void answer_client(broker_t *self, zframe_t *gateway, uint64_t id,
                          const sb_envelope_t *request)
{
    sb_client_info_t info;
    if (request->argc != 1) {
        answer_local(self, gateway, id, false, "bad-args", "usage: client ID");
        return;
    }
    if (!sb_directory_client(self->directory, request->argv[0], &info)) {
        answer_local(self, gateway, id, false, "no-such-client", "no client has that id");
        return;
    }
    char gateway_key[64], since[32], text[512];
    sb_routing_id_text(info.gateway, gateway_key, sizeof gateway_key);
    time_t seconds = (time_t) (info.since / 1000);
    struct tm utc;
    gmtime_r(&seconds, &utc);
    strftime(since, sizeof since, "%Y-%m-%dT%H:%M:%SZ", &utc);
    snprintf(text, sizeof text, "id=%s gateway=%s address=%s since=%s", info.id, gateway_key,
             info.address, since);
    answer_local(self, gateway, id, true, NULL, text);
}

/* `tell ID TEXT`: a direct message, wherever the client is connected. */
static void answer_tell(broker_t *self, zframe_t *gateway, uint64_t id,
                        const sb_envelope_t *request)
{
    sb_client_info_t info;
    if (request->argc < 2) {
        answer_local(self, gateway, id, false, "bad-args", "usage: tell ID TEXT");
        return;
    }
    if (!sb_directory_client(self->directory, request->argv[0], &info)) {
        answer_local(self, gateway, id, false, "no-such-client", "no client has that id");
        return;
    }
    char text[8192];
    sb_cmdline_join(request->argc - 1, request->argv + 1, text, sizeof text);
    sb_envelope_t message = {
        .type = SB_ENVELOPE_MESSAGE, .client = (char *) info.id,
        .from = request->client ? request->client : "unknown", .text = text,
    };
    if (sb_outbox_add(self->frontend, info.gateway, &message) < 0) {
        answer_local(self, gateway, id, false, "too-long", "the message cannot be sent");
        return;
    }
    self->counters->messages++;
    answer_local(self, gateway, id, true, NULL, NULL);
}

typedef struct {
    broker_t *self;
    zframe_t *gateway;
    const char *client;
} retained_delivery_t;

/* One retained value to one client: `cli` tells its gateway whom it is
 * for, `retain` that it is not a live event; with its publisher's MQTT 5
 * properties and what is left of its Message Expiry. */
static void send_retained(void *arg, const char *topic, const sb_retained_value_t *value)
{
    retained_delivery_t *delivery = arg;
    sb_envelope_t event = {
        .type = SB_ENVELOPE_EVENT, .topic = (char *) topic, .data = (char *) value->payload,
        .client = (char *) delivery->client, .retain = true, .published_retain = true,
        .qos = (uint8_t) value->qos, .mqtt = (char *) value->mqtt, .expiry_s = value->expiry_s,
    };
    if (sb_outbox_add(delivery->self->frontend, delivery->gateway, &event) == 0)
        delivery->self->counters->events_sent++;
}

/* `retained FILTER` for client `cli` (a gateway asks it on each `sub`):
 * the matching values as EVENTs to that client, then OK and their count.
 * One socket carries both, so they reach the gateway before the reply. */
static void answer_retained(broker_t *self, zframe_t *gateway, uint64_t id,
                            const sb_envelope_t *request)
{
    if (request->argc != 1 || !request->client || !sb_topic_filter_is_valid(request->argv[0])) {
        answer_local(self, gateway, id, false, "bad-args", "usage: retained FILTER (with cli)");
        return;
    }
    retained_delivery_t delivery = { self, gateway, request->client };
    char text[32];
    snprintf(text, sizeof text, "%zu",
             sb_retained_each(self->retained, request->argv[0], zclock_time(), send_retained,
                              &delivery));
    answer_local(self, gateway, id, true, NULL, text);
}

typedef struct {
    char *const *allowed;       /* the asker's subscribe filters; NULL: any topic */
    size_t allowed_count;
    char *text;
    size_t listed;
    bool cut;
} topic_listing_t;

static bool allowed(const topic_listing_t *listing, const char *topic)
{
    if (!listing->allowed)
        return true;
    for (size_t i = 0; i < listing->allowed_count; i++)
        if (sb_topic_matches(listing->allowed[i], topic))
            return true;
    return false;
}

static void list_topic(void *arg, const char *topic, const sb_retained_value_t *value)
{
    topic_listing_t *listing = arg;
    if (listing->cut || !allowed(listing, topic))
        return;
    size_t before = strlen(listing->text);
    if (listing->listed == TOPICS_MAX_VALUES
        || !sb_cmdline_append_word(listing->text, TOPICS_MAX_TEXT, topic)
        || !sb_cmdline_append_word(listing->text, TOPICS_MAX_TEXT, value->payload)) {
        listing->text[before] = '\0';
        listing->cut = true;
        return;
    }
    listing->listed++;
}

/* `topics FILTER [ALLOWED...]`: `N TOPIC VALUE ...` (words quoted as the
 * line protocol reads them), within the asker's subscribe filters that its
 * gateway passes as ALLOWED; `...` last when not all fitted. */
static void answer_topics(broker_t *self, zframe_t *gateway, uint64_t id,
                          const sb_envelope_t *request)
{
    if (request->argc < 1 || !sb_topic_filter_is_valid(request->argv[0])) {
        answer_local(self, gateway, id, false, "bad-args", "usage: topics FILTER");
        return;
    }
    char *values = calloc(1, TOPICS_MAX_TEXT);
    topic_listing_t listing = { request->argc > 1 ? request->argv + 1 : NULL,
                                request->argc - 1, values, 0, false };
    sb_retained_each(self->retained, request->argv[0], zclock_time(), list_topic, &listing);
    char *text = malloc(TOPICS_MAX_TEXT + 32);
    snprintf(text, TOPICS_MAX_TEXT + 32, "%zu%s%s%s", listing.listed, *values ? " " : "", values,
             listing.cut ? " ..." : "");
    answer_local(self, gateway, id, true, NULL, text);
    free(text);
    free(values);
}

/* `history TOPIC [N]`: `COUNT TIME_MS:VALUE ...`, the topic's last N points
 * (all it has when N is absent), oldest first; its gateway has checked that
 * the asker may subscribe to TOPIC. At most --history-points (1000 at
 * most) points of at most ~40 characters: well inside one envelope. */
static void answer_history(broker_t *self, zframe_t *gateway, uint64_t id,
                           const sb_envelope_t *request)
{
    size_t kept = sb_history_points_per_topic(self->history);
    long max = (long) kept;
    char *end = NULL;
    if (request->argc == 2)
        max = strtol(request->argv[1], &end, 10);
    if (request->argc < 1 || request->argc > 2 || !sb_topic_is_valid(request->argv[0])
        || (end && (*end || end == request->argv[1] || max < 1))) {
        answer_local(self, gateway, id, false, "bad-args", "usage: history TOPIC [N]");
        return;
    }
    if ((size_t) max > kept)
        max = (long) kept;
    sb_history_point_t *points = calloc((size_t) max + 1, sizeof *points);
    size_t count = sb_history_get(self->history, request->argv[0], points, (size_t) max);
    size_t size = 32 + count * 48;
    char *text = malloc(size);
    size_t used = (size_t) snprintf(text, size, "%zu", count);
    for (size_t i = 0; i < count; i++)
        used += (size_t) snprintf(text + used, size - used, " %" PRId64 ":%.15g",
                                  points[i].time_ms, points[i].value);
    answer_local(self, gateway, id, true, NULL, text);
    free(text);
    free(points);
}

static const struct {
    const char *command;
    void (*run)(broker_t *self, zframe_t *gateway, uint64_t id, const sb_envelope_t *request);
} s_broker_commands[] = {
    { "stats", answer_stats },
    { "clients", answer_clients },
    { "client", answer_client },
    { "tell", answer_tell },
    { "retained", answer_retained },
    { "topics", answer_topics },
    { "history", answer_history },
};

void sb_broker_commands_run(const sb_broker_state_t *self, zframe_t *gateway,
                            const sb_envelope_t *env)
{
    for (size_t i = 0; i < sizeof s_broker_commands / sizeof s_broker_commands[0]; i++)
        if (strcmp(env->command, s_broker_commands[i].command) == 0) {
            s_broker_commands[i].run(self, gateway, env->id, env);
            return;
        }
    answer_local(self, gateway, env->id, false, "unknown-command", "not a broker command");
}

