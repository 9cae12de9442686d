/* access.h — tokens and access rules ([token NAME], [anonymous] in the
 * config): who a client is once it has said `auth`, and whether it may
 * run a command, publish on a topic, subscribe with a filter, or be given
 * an event. Every gateway asks at the broker's edge; a gateway whose
 * clients log in some other way (an MQTT username and password) asks
 * sb_access_authenticate the same.
 *
 * Without a [token] or [anonymous] section there are no rules: every
 * client may do everything, as before tokens existed. */
#ifndef SB_ACCESS_H
#define SB_ACCESS_H

#include <stdbool.h>

#include "config.h"

typedef struct sb_access sb_access_t;
/* A token's rules, or the anonymous ones; owned by the sb_access_t. */
typedef struct sb_identity sb_identity_t;

/* The rules of `config` (NULL: none). Logs a warning when a plain `secret`
 * sits in a file that group or others may read. */
sb_access_t *sb_access_new(const sb_config_t *config);
void sb_access_destroy(sb_access_t **self_p);

/* Whether the config has rules at all. */
bool sb_access_enabled(const sb_access_t *self);

/* What a client may do before `auth`: [anonymous], or everything without rules. */
const sb_identity_t *sb_access_anonymous(const sb_access_t *self);

/* The identity of token `name` when `secret` is its secret; NULL otherwise.
 * An unknown name costs the same hashing and constant-time comparison as
 * a wrong secret, so the answer tells nothing about which names exist. */
const sb_identity_t *sb_access_authenticate(const sb_access_t *self, const char *name,
                                            const char *secret);

/* The same for "NAME:SECRET" (an HTTP `Authorization: Bearer` value). */
const sb_identity_t *sb_access_authenticate_pair(const sb_access_t *self, const char *pair);

/* The identity of token `name` without its secret, or NULL: for a client
 * that proved it before (an MQTT session restored after a restart). */
const sb_identity_t *sb_access_token(const sb_access_t *self, const char *name);

/* The token's name, or NULL for the anonymous identity. */
const char *sb_identity_token(const sb_identity_t *self);

bool sb_identity_may_run(const sb_identity_t *self, const char *command);
/* It may give its secret in a URL (`url_token = yes`): GET /api/v1/publish?token=. */
bool sb_identity_allows_url_token(const sb_identity_t *self);
/* `topic` matches one of its publish filters. */
bool sb_identity_may_publish(const sb_identity_t *self, const char *topic);
/* `filter` shares some topic with one of its subscribe filters; what it is
 * then given is still checked event by event (sb_identity_may_receive). */
bool sb_identity_may_subscribe(const sb_identity_t *self, const char *filter);
/* `topic` matches one of its subscribe filters. */
bool sb_identity_may_receive(const sb_identity_t *self, const char *topic);
/* Its subscribe filters, NULL-terminated (for a question the broker answers
 * within them, `topics`); NULL when every topic is allowed. */
char *const *sb_identity_subscribe_filters(const sb_identity_t *self);

#endif
