/* local_commands.c — the commands a gateway answers itself, whatever its
 * protocol: ping, quit, auth and stats here, the pub/sub ones in
 * pubsub_commands.c, help in help.c; clients, client and tell go to the
 * broker's own service once the asker's rules allow them. The table here
 * is the one list of them. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "protocol.h"
#include "router_internal.h"

static void run_ping(sb_router_t *self, void *client, sb_reply_slot_t *slot,
                     const sb_cmdline_t *request)
{
    (void) self;
    (void) request;
    self->ops->answer(client, slot, "OK", "pong", false);
}

static void run_quit(sb_router_t *self, void *client, sb_reply_slot_t *slot,
                     const sb_cmdline_t *request)
{
    (void) request;
    sb_guard_quit(self->guard, self->ops->serial(client));
    self->ops->answer(client, slot, "OK", "bye", true);
}

static void run_auth(sb_router_t *self, void *client, sb_reply_slot_t *slot,
                     const sb_cmdline_t *request)
{
    if (request->argc != 3) {
        self->ops->answer(client, slot, "ERR bad-args", "usage: auth NAME SECRET", false);
        return;
    }
    sb_guard_auth(self->guard, self->ops->serial(client), slot, request->argv[1],
                  request->argv[2]);
}

/* clients, client ID, tell ID TEXT: the broker knows every gateway's clients. */
static void run_broker_command(sb_router_t *self, void *client,
                               sb_reply_slot_t *slot, const sb_cmdline_t *request)
{
    bool listing = strcmp(request->argv[0], "clients") == 0;
    if (!listing && request->argc >= 2
        && !sb_router_may_see_client(sb_router_rules_of(self, client), request->argv[1])) {
        sb_router_refuse(self, client, slot,
                         "that client is outside your subscribe rules ($sys/clients/ID)");
        return;
    }
    remote_request_t remote = { request->argc, request->argv, SB_BROKER_SERVICE,
                                listing ? REPLY_CLIENT_LIST : REPLY_PLAIN };
    sb_router_send_to_broker(self, client, slot, &remote);
}

/* `stats`: this gateway's counters; `stats broker`: the broker's. */
static void run_stats(sb_router_t *self, void *client, sb_reply_slot_t *slot,
                      const sb_cmdline_t *request)
{
    if (request->argc == 2 && strcmp(request->argv[1], "broker") == 0) {
        remote_request_t remote = { request->argc, request->argv, SB_BROKER_SERVICE, REPLY_PLAIN };
        sb_router_send_to_broker(self, client, slot, &remote);
        return;
    }
    if (request->argc != 1) {
        self->ops->answer(client, slot, "ERR bad-args", "usage: stats [broker]", false);
        return;
    }
    char text[1024];
    sb_router_stats_t s = sb_router_stats(self);
    int used = self->ops->describe(self->owner, text, sizeof text);
    snprintf(text + used, sizeof text - (size_t) used,
             "%srequests=%" PRIu64 " replies=%" PRIu64 " errors=%" PRIu64 " in_flight=%zu"
             " held=%zu held_total=%" PRIu64 " unavailable=%" PRIu64 " timeouts=%" PRIu64
             " late_replies=%" PRIu64 " resent=%" PRIu64 " malformed=%" PRIu64
             " latency_p50_us=%" PRIu64 " latency_p99_us=%" PRIu64 " auth_failures=%" PRIu64,
             used ? " " : "", s.requests, s.replies, s.errors, s.in_flight, s.held, s.held_total,
             s.unavailable, s.timeouts, s.late_replies, s.resent, s.malformed,
             sb_latency_percentile(s.latency, 50), sb_latency_percentile(s.latency, 99),
             s.auth_failures);
    self->ops->answer(client, slot, "OK", text, false);
}

/* The commands every gateway answers itself; the rest go to the broker. */
static const sb_local_command_t s_local_commands[] = {
    { "ping", run_ping, "ping: answers pong" },
    { "help", sb_router_run_help, "help [NAME]: the command names, or what NAME does" },
    { "quit", run_quit, "quit: answers bye and closes the client" },
    { "stats", run_stats, "stats [broker]: counters and latency of this gateway, or of the broker" },
    { "sub", sb_router_run_sub,
      "sub FILTER: receive EVENT lines for topics matching FILTER (+ one level, # the rest)" },
    { "unsub", sb_router_run_unsub, "unsub FILTER: stop receiving what sub FILTER asked for" },
    { "pub", sb_router_run_pub,
      "pub [-r] TOPIC PAYLOAD: send an event to every subscriber, on every gateway; -r also "
      "keeps it as the topic's retained value (no payload: clears it)" },
    { "topics", sb_router_run_topics,
      "topics FILTER: the retained values of topics matching FILTER" },
    { "history", sb_router_run_history,
      "history TOPIC [N]: the last N numeric values of TOPIC the broker kept, as COUNT TIME_MS:VALUE ..." },
    { "clients", run_broker_command, "clients: the ids of every connected client, all gateways" },
    { "client", run_broker_command, "client ID: where a client is connected, and since when" },
    { "tell", run_broker_command, "tell ID TEXT: a direct message to one client, wherever it is" },
    { "auth", run_auth, "auth NAME SECRET: act as token NAME from now on (see [token NAME])" },
};
#define LOCAL_COMMAND_COUNT (sizeof s_local_commands / sizeof s_local_commands[0])

const sb_local_command_t *sb_local_command(const char *name)
{
    for (size_t i = 0; i < LOCAL_COMMAND_COUNT; i++)
        if (strcmp(name, s_local_commands[i].name) == 0)
            return &s_local_commands[i];
    return NULL;
}

const sb_local_command_t *sb_local_command_at(size_t index)
{
    return index < LOCAL_COMMAND_COUNT ? &s_local_commands[index] : NULL;
}
