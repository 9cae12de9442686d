/* bridge_config.h — one [bridge NAME] section: a link from this hub to a
 * remote MQTT broker (sb-bridge) and the topic rules it carries, in the
 * shape Mosquitto's bridges use:
 *
 *   topic = PATTERN [in|out|both] [QOS] [LOCAL_PREFIX] [REMOTE_PREFIX]
 *
 * The config reader (config.c) hands each key here; the config check
 * (config_check.c) asks for what a whole section still gets wrong. */
#ifndef SB_BRIDGE_CONFIG_H
#define SB_BRIDGE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "backoff_settings.h"

#define SB_BRIDGE_MAX_ADDRESSES 16
#define SB_BRIDGE_MAX_RULES 64

typedef enum {
    SB_BRIDGE_IN = 1,        /* remote -> hub */
    SB_BRIDGE_OUT = 2,       /* hub -> remote */
    SB_BRIDGE_BOTH = 3,
} sb_bridge_direction_t;

typedef struct {
    char *pattern;           /* a topic filter, below both prefixes */
    sb_bridge_direction_t direction;
    int qos;                 /* 0..2: of the remote subscription and of what is sent out */
    char *local_prefix;      /* "" for none */
    char *remote_prefix;
    int line;
} sb_bridge_rule_t;

typedef struct {
    char *name;
    char *addresses[SB_BRIDGE_MAX_ADDRESSES];   /* HOST:PORT, tried in turn */
    size_t address_count;
    int version;             /* 4: MQTT 3.1.1, 5: MQTT 5 */
    char *client_id;         /* NULL: switchboard-HOSTNAME-NAME */
    char *username;
    char *password_file;     /* the password is read from it at start, never from the config */
    bool tls;                /* also on with tls_ca_file; the address's host is checked
                              * against the certificate's names */
    char *tls_ca_file, *tls_cert, *tls_key;
    long keepalive_ms;
    bool clean;              /* clean start (v5) / clean session (3.1.1) */
    long max_queued;         /* QoS 1+ messages waiting for the remote (while it is away) */
    sb_backoff_settings_t backoff;
    sb_bridge_rule_t rules[SB_BRIDGE_MAX_RULES];
    size_t rule_count;
    int line;
} sb_bridge_config_t;

/* A section with its defaults. */
void sb_bridge_config_init(sb_bridge_config_t *self, const char *name, int line);
void sb_bridge_config_free(sb_bridge_config_t *self);

/* Sets `key` from `value`; false with `reason` filled when either is bad. */
bool sb_bridge_config_set(sb_bridge_config_t *self, const char *key, const char *value, int line,
                          char *reason, size_t reason_size);

/* Calls `problem` with each thing the whole section gets wrong (no
 * address, no rule, a certificate without its key, a file that cannot be
 * read, ...). */
void sb_bridge_config_check(const sb_bridge_config_t *self,
                            void (*problem)(void *arg, int line, const char *reason), void *arg);

/* Two bridges of one hub that reach the same address, where one takes in
 * what the other sends out, would pass messages round for ever (each drops
 * only its own): `problem` gets each such pair. */
void sb_bridge_config_check_pair(const sb_bridge_config_t *a, const sb_bridge_config_t *b,
                                 void (*problem)(void *arg, int line, const char *reason),
                                 void *arg);

/* Reads the password file's first line into `out`; false with `reason`. */
bool sb_bridge_config_read_password(const sb_bridge_config_t *self, char *out, size_t size,
                                    char *reason, size_t reason_size);

#endif
