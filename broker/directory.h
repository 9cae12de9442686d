/* directory.h — what the broker knows about gateways: which are alive,
 * which clients each has (for `clients` and `tell`), and which topic
 * filters each has subscribed (so an event goes only to gateways with a
 * client that wants it). Gateways report all of this themselves, and
 * report it again after a broker restart, so nothing here is persistent. */
#ifndef SB_DIRECTORY_H
#define SB_DIRECTORY_H

#include <czmq.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct sb_directory sb_directory_t;
typedef struct sb_gateway_entry sb_gateway_entry_t;

typedef struct {
    const char *id;
    const char *address;
    int64_t since;            /* wall-clock ms when it joined */
    zframe_t *gateway;        /* routing id of its gateway */
} sb_client_info_t;

sb_directory_t *sb_directory_new(long liveness_ms);
void sb_directory_destroy(sb_directory_t **self_p);

typedef enum {
    SB_GATEWAY_KNOWN,
    SB_GATEWAY_NEW,          /* first sight */
    SB_GATEWAY_FORGOTTEN,    /* heard again after it was silent: it must resync */
} sb_gateway_state_t;

/* The gateway behind `routing_id`, made on first sight; alive for another
 * liveness period. */
sb_gateway_entry_t *sb_directory_touch(sb_directory_t *self, zframe_t *routing_id,
                                       sb_gateway_state_t *state);

/* A fresh liveness period for every gateway (after the broker itself was
 * stopped: their silence was its own). */
void sb_directory_extend(sb_directory_t *self);

void sb_directory_subscribe(sb_directory_t *self, sb_gateway_entry_t *gateway, const char *filter);
void sb_directory_unsubscribe(sb_directory_t *self, sb_gateway_entry_t *gateway,
                              const char *filter);

/* Records a client; false if this gateway had it already (a resync repeats
 * it). An id another gateway had moves to this one: that was a gateway
 * restarted under the same name. */
bool sb_directory_join(sb_directory_t *self, sb_gateway_entry_t *gateway, const char *client,
                       const char *address);
/* Forgets a client; false if it was not known (for that gateway). */
bool sb_directory_leave(sb_directory_t *self, sb_gateway_entry_t *gateway, const char *client);

bool sb_directory_client(const sb_directory_t *self, const char *client, sb_client_info_t *out);

/* Space-separated ids of every client, sorted, into a new string (free() it). */
char *sb_directory_client_list(const sb_directory_t *self);

/* Calls `fn` once for each gateway with a filter matching `topic`. */
void sb_directory_each_subscriber(sb_directory_t *self, const char *topic,
                                  void (*fn)(void *arg, zframe_t *gateway), void *arg);

/* Forgets the clients of gateways silent past their liveness, calling
 * `on_left` for each; returns how many gateways were forgotten. Their
 * filters are kept (events still go to them) until they speak again and
 * resync, or for FORGOTTEN_PERIODS more liveness periods, or until a send
 * finds them gone (sb_directory_gateway_gone): a gateway that was only
 * busy loses no event while the broker waits for it. */
size_t sb_directory_expire(sb_directory_t *self, void (*on_left)(void *arg, const char *client),
                           void *arg);

/* A send found this gateway unreachable: a forgotten one is dropped now. */
void sb_directory_gateway_gone(sb_directory_t *self, zframe_t *routing_id);

/* Gateways alive (not forgotten). */
size_t sb_directory_gateway_count(const sb_directory_t *self);
size_t sb_directory_client_count(const sb_directory_t *self);

#endif
