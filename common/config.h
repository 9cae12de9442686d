/* config.h — the INI configuration file shared by every program.
 *
 *   [broker]            settings of one program (read through options.h)
 *   queue_max = 1000
 *   [service slow]      a worker pool: how many workers serve it
 *   workers = 2
 *   [command sleep]     where a command runs and how long it may take
 *   service = slow
 *   timeout = 30
 *   [device kitchen]    a device the device gateway dials (or that dials in)
 *   connect = 192.168.1.20:7000
 *   [token panel]       a client identity and what it may do
 *   secret_sha256 = 9f86d0...
 *   [anonymous]         what a client that never says `auth` may do
 *   [ha porch_temp]     a topic announced to Home Assistant (ha_config.h)
 *   ha_component = sensor
 *   [bridge cloud]      a link to a remote MQTT broker (bridge_config.h)
 *   address = broker.example:8883
 *
 * Loading reports every problem, each with its line number. */
#ifndef SB_CONFIG_H
#define SB_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backoff_settings.h"
#include "ha_config.h"
#include "bridge_config.h"

#define SB_DEFAULT_SERVICE "default"

typedef struct {
    char *name;
    int workers;             /* -1 when the file does not say */
    int prefetch;            /* requests a worker may hold at once; -1 when not said */
} sb_service_config_t;

/* One program-section setting as written in the file. */
typedef struct {
    const char *section;
    const char *key;
    const char *value;
    int line;
} sb_config_value_t;

typedef struct {
    char *name;
    char *service;           /* SB_DEFAULT_SERVICE when the file does not say */
    uint32_t timeout_ms;     /* 0 when the file does not say: the broker's default */
    int retry;               /* 1 yes, 0 no, -1 when the file does not say */
    char *exec;              /* external program and fixed arguments, or NULL (built in) */
    size_t max_output;       /* bytes of an external program's output kept; 0: the default */
    char *description;       /* for `help NAME`, or NULL */
    int line;                /* where the section starts, for messages */
    int service_line;        /* where `service` is set (0: not set) */
    int exec_line;
} sb_command_config_t;

/* How a device is reached. */
typedef enum {
    SB_DEVICE_DIAL_IN,       /* neither connect nor serial: it dials in with HELLO */
    SB_DEVICE_TCP,           /* connect = HOST:PORT */
    SB_DEVICE_SERIAL,        /* serial = /dev/ttyX, baud */
} sb_device_kind_t;

typedef struct {
    char *name;
    sb_device_kind_t kind;
    char *connect;           /* HOST:PORT, or NULL */
    char *serial;            /* device path, or NULL */
    long baud;
    char *token;             /* a dial-in device must give it in HELLO, or NULL */
    sb_backoff_settings_t backoff;
    long healthy_after_ms;   /* connected this long: the backoff starts over */
    long connect_timeout_ms;
    long call_timeout_ms;
    long max_pending;        /* calls waiting for their line */
    char *on_connect;        /* a line written when the link comes up, or NULL */
    char *keepalive;         /* a line written every keepalive_interval, or NULL */
    long keepalive_interval_ms;
    sb_ha_config_t ha;       /* ha_* keys: Home Assistant discovery (component NONE: none) */
    int line;
} sb_device_config_t;

/* [token NAME] and [anonymous]: an identity and its rules. A list is
 * space-separated words (command names, or topic filters); NULL when the
 * file does not say, and the access rules pick the default. */
typedef struct {
    char *name;              /* NULL for [anonymous] */
    char *secret_sha256;     /* hex, as written, or NULL */
    char *secret;            /* the plain secret, or NULL */
    char *commands;
    char *publish;
    char *subscribe;
    bool url_token;          /* may give NAME:SECRET in a URL (GET /api/v1/publish?token=) */
    int line;                /* where the section starts */
    int secret_line;         /* where secret or secret_sha256 is set (0: not set) */
    int publish_line, subscribe_line;
} sb_token_config_t;

/* [ha NAME]: a topic of the hub announced to Home Assistant. */
typedef struct {
    char *name;
    sb_ha_config_t ha;       /* ha.topic is set */
    int line;
} sb_ha_topic_config_t;

typedef struct sb_config sb_config_t;

/* An empty configuration: every program runs on its defaults. */
sb_config_t *sb_config_new(void);

/* Reads `path`; NULL with *error_out (malloc'd: free it) holding every
 * problem found, one "FILE:LINE: reason" per line. */
sb_config_t *sb_config_load(const char *path, char **error_out);

/* Like sb_config_load, but keeps what could be read despite problems (for
 * checking it further); NULL only when the file cannot be opened. */
sb_config_t *sb_config_read(const char *path, char **error_out);

void sb_config_destroy(sb_config_t **self_p);

/* Value of `key` in a program section such as [broker]; NULL when unset. */
const char *sb_config_value(const sb_config_t *self, const char *section, const char *key);

/* Line of the file where `section.key` was set (0 when unset), for errors. */
int sb_config_value_line(const sb_config_t *self, const char *section, const char *key);

/* Every program-section setting in file order (for validation). */
size_t sb_config_value_count(const sb_config_t *self);
sb_config_value_t sb_config_value_at(const sb_config_t *self, size_t index);

size_t sb_config_service_count(const sb_config_t *self);
const sb_service_config_t *sb_config_service_at(const sb_config_t *self, size_t index);
const sb_service_config_t *sb_config_service(const sb_config_t *self, const char *name);

size_t sb_config_command_count(const sb_config_t *self);
const sb_command_config_t *sb_config_command_at(const sb_config_t *self, size_t index);
const sb_command_config_t *sb_config_command(const sb_config_t *self, const char *name);

size_t sb_config_device_count(const sb_config_t *self);
const sb_device_config_t *sb_config_device_at(const sb_config_t *self, size_t index);
const sb_device_config_t *sb_config_device(const sb_config_t *self, const char *name);

size_t sb_config_token_count(const sb_config_t *self);
const sb_token_config_t *sb_config_token_at(const sb_config_t *self, size_t index);
const sb_token_config_t *sb_config_token(const sb_config_t *self, const char *name);
/* The [anonymous] section, or NULL when the file has none. */
const sb_token_config_t *sb_config_anonymous(const sb_config_t *self);

size_t sb_config_ha_topic_count(const sb_config_t *self);
const sb_ha_topic_config_t *sb_config_ha_topic_at(const sb_config_t *self, size_t index);
size_t sb_config_bridge_count(const sb_config_t *self);
const sb_bridge_config_t *sb_config_bridge_at(const sb_config_t *self, size_t index);

/* The path the configuration was read from, or NULL. */
const char *sb_config_path(const sb_config_t *self);

#endif
