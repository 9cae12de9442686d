/* router_internal.h — what the router's files share: its state, how a
 * reply is written, and the functions one file calls in another. router.c
 * routes (the broker link, replies, events, the dispatch of a line);
 * local_commands.c, pubsub_commands.c and help.c are the gateway's own
 * commands. Not an API: router.h is. */
#ifndef SB_ROUTER_INTERNAL_H
#define SB_ROUTER_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cmdline.h"
#include "guard.h"
#include "latency.h"
#include "presence.h"
#include "requests.h"
#include "router.h"

/* How a reply from the broker is written to the client. */
typedef enum {
    REPLY_PLAIN,                  /* OK TEXT / ERR CODE MESSAGE */
    REPLY_BANK,                   /* the classic bank server's lines (NAME:dp, NAME:wd) */
    REPLY_CLIENT_LIST,            /* `clients`: only the ids the asker's rules let it see */
    REPLY_SUBSCRIBED,             /* `retained` asked by `sub`: OK, whatever the broker said */
    REPLY_NONE,                   /* `retained` asked by the gateway itself: no answer */
} reply_style_t;

/* A command for the broker: argv[0] is its name. */
typedef struct {
    size_t argc;
    char **argv;
    const char *service;          /* NULL: the one the config assigns the command */
    reply_style_t style;
} remote_request_t;

typedef struct {
    uint64_t requests, replies, errors;
} router_counters_t;

struct sb_router {
    sb_router_settings_t settings;
    const sb_router_client_ops_t *ops;
    void *owner;
    sb_broker_link_t *link;
    sb_presence_t *presence;      /* clients and subscriptions, as the broker knows them */
    sb_requests_t *requests;      /* for the broker: in flight, held, deadlines */
    router_counters_t counters;
    sb_latency_t latency;
    sb_guard_t *guard;            /* identities and access rules (guard.h) */
};

/* ---------------------------------------------------------------- router.c */

/* The rules `client` is held to; NULL when there are none to check (no
 * tokens in the config, or a request the gateway makes itself). */
const sb_identity_t *sb_router_rules_of(const sb_router_t *self, void *client);

/* Answers ERR unauthorized with `what`. */
void sb_router_refuse(sb_router_t *self, void *client, sb_reply_slot_t *slot, const char *what);

/* `client ID` and `tell ID`: whether `rules` (NULL: none) may see client `id`. */
bool sb_router_may_see_client(const sb_identity_t *rules, const char *id);

/* Sends `request` to the broker for `client`, answered in `slot`. */
void sb_router_send_to_broker(sb_router_t *self, void *client, sb_reply_slot_t *slot,
                              const remote_request_t *request);

/* ---------------------------------------------------------------- the gateway's own commands */

typedef void (sb_local_command_fn)(sb_router_t *self, void *client, sb_reply_slot_t *slot,
                                   const sb_cmdline_t *request);

typedef struct {
    const char *name;
    sb_local_command_fn *run;
    const char *description;      /* what `help NAME` answers */
} sb_local_command_t;

/* local_commands.c: the command named `name` the gateway answers itself,
 * or NULL; and the commands in table order (NULL past the end). */
const sb_local_command_t *sb_local_command(const char *name);
const sb_local_command_t *sb_local_command_at(size_t index);

/* pubsub_commands.c */
sb_local_command_fn sb_router_run_sub, sb_router_run_unsub, sb_router_run_pub,
    sb_router_run_topics, sb_router_run_history;

/* help.c */
sb_local_command_fn sb_router_run_help;

#endif
