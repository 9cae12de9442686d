/* mqtt_store.h — the MQTT gateway's persistent sessions in SQLite, so
 * they survive a restart of sb-gateway-mqtt (MQTT 5.0 §4.1: the session
 * state, kept while its client is away): each session's expiry, will,
 * subscriptions, queued and in-flight messages with their packet ids, and
 * the QoS 2 ids awaiting PUBREL. The gateway saves the sessions that
 * changed in one batch (one transaction) at a time, and forgets a session
 * when it ends. */
#ifndef SB_MQTT_STORE_H
#define SB_MQTT_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mqtt_session.h"

typedef struct sb_mqtt_store sb_mqtt_store_t;

/* Opens (creating it, and its folders) the file; NULL with `error` filled. */
sb_mqtt_store_t *sb_mqtt_store_open(const char *path, char *error, size_t error_size);
void sb_mqtt_store_close(sb_mqtt_store_t **self_p);

/* A batch: saves and forgets between begin and commit go in one
 * transaction; false (logged) when it was not written. */
void sb_mqtt_store_begin(sb_mqtt_store_t *self);
bool sb_mqtt_store_commit(sb_mqtt_store_t *self);

/* Replaces what the file has of the session: `token` is the name it logged
 * in with (NULL: anonymous), `expires_in_ms` how long it is kept from
 * `now_ms` (wall clock) once its client is away. */
void sb_mqtt_store_save(sb_mqtt_store_t *self, const sb_mqtt_session_t *session, const char *token,
                        int64_t expires_in_ms, int64_t now_ms);
void sb_mqtt_store_forget(sb_mqtt_store_t *self, const char *client_id);

/* Calls `fn` with each stored session, rebuilt (owned by `fn`; its serial
 * is 0), and what was saved with it; the number of sessions. */
typedef void (sb_mqtt_store_fn)(void *arg, sb_mqtt_session_t *session, const char *token,
                                int64_t expires_in_ms, int64_t saved_at_ms);
size_t sb_mqtt_store_load(sb_mqtt_store_t *self, size_t max_queued, sb_mqtt_store_fn *fn,
                          void *arg);

#endif
