/* envelope.h — the one message format between switchboard processes.
 *
 * Every ZeroMQ message between a gateway, the broker and a provider carries
 * one envelope: a msgpack map in a single frame (after any routing-id frame
 * a ROUTER socket adds). The map is versioned ("v") and every receiver
 * decodes it with sb_envelope_decode, which checks size, types and required
 * fields before anything is allocated, so a peer can never crash another by
 * what it sends. docs/protocol.md documents the fields. */
#ifndef SB_ENVELOPE_H
#define SB_ENVELOPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SB_ENVELOPE_VERSION   1
/* Largest encoded envelope; also the ZMQ_MAXMSGSIZE of every socket. */
#define SB_ENVELOPE_MAX_SIZE  (256 * 1024)
#define SB_ENVELOPE_MAX_ARGS  1024
/* Highest MQTT quality of service: a larger `qos` is malformed. */
#define SB_ENVELOPE_MAX_QOS   2
/* Most requests a provider may hold at once: a larger `credit` is malformed. */
#define SB_ENVELOPE_MAX_CREDIT 1024
/* An error code is 1..32 of [a-z0-9-]: it is written into reply lines as is. */
#define SB_ENVELOPE_MAX_CODE  32

typedef enum {
    SB_ENVELOPE_REQUEST = 1,  /* gateway -> broker -> provider: run a command */
    SB_ENVELOPE_REPLY,        /* provider -> broker -> gateway: its one answer */
    SB_ENVELOPE_READY,        /* provider -> broker: serves `service`, holds nothing yet */
    SB_ENVELOPE_HEARTBEAT,    /* either way: still alive */
    SB_ENVELOPE_DISCONNECT,   /* provider -> broker: leaving on purpose */
    SB_ENVELOPE_SUBSCRIBE,    /* gateway -> broker: send me events matching `topic` (a filter) */
    SB_ENVELOPE_UNSUBSCRIBE,  /* gateway -> broker: no longer */
    SB_ENVELOPE_PUBLISH,      /* gateway -> broker: an event on `topic` with `data` */
    SB_ENVELOPE_EVENT,        /* broker -> gateway: an event its filters match */
    SB_ENVELOPE_JOIN,         /* gateway -> broker: client `cli` connected (`text`: its address) */
    SB_ENVELOPE_LEAVE,        /* gateway -> broker: client `cli` left */
    SB_ENVELOPE_MESSAGE,      /* broker -> gateway: `text` from client `from` to client `cli` */
} sb_envelope_type_t;

/* A decoded envelope owns its strings; one built by hand for encoding may
 * point at anything (sb_envelope_encode only reads it). */
typedef struct {
    sb_envelope_type_t type;
    uint64_t id;            /* request id (REQUEST, REPLY); never 0 there */
    char *service;          /* REQUEST, READY: service name */
    char *command;          /* REQUEST: command name */
    size_t argc;            /* REQUEST: arguments after the command */
    char **argv;
    char *client;           /* REQUEST: id of the client that asked (optional) */
    char *token;            /* REQUEST: the token it said `auth` with (optional; absent: anonymous) */
    uint32_t timeout_ms;    /* REQUEST: deadline; 0 = the broker's default */
    bool retry;             /* REQUEST: safe to run again if its worker dies */
    bool job;               /* REQUEST: runs as a job (sleep, an external program): may take
                             * long, and a provider runs one job at a time */
    uint32_t credit;        /* READY: how many requests the provider may hold at once,
                             * 1..SB_ENVELOPE_MAX_CREDIT (0 when encoding / absent: 1) */
    char *topic;            /* SUBSCRIBE, UNSUBSCRIBE: a filter; PUBLISH, EVENT: a topic */
    char *data;             /* PUBLISH, EVENT: the payload */
    bool retain;            /* PUBLISH: set (or, with an empty payload, clear) the topic's
                             * retained value; EVENT: this is a retained value, sent on
                             * subscribe, not a live event (MQTT's rule) */
    bool published_retain;  /* EVENT: the PUBLISH behind it had retain set (for MQTT 5's
                             * "retain as published"); true on every retained delivery */
    uint8_t qos;            /* PUBLISH, EVENT: the MQTT quality of service, 0..2 (default 0) */
    char *mqtt;             /* PUBLISH, EVENT: the MQTT 5 properties of the publish (user
                             * properties, content type, ...), as the MQTT gateway wrote them;
                             * the broker passes them on, others ignore them (optional) */
    uint32_t expiry_s;      /* PUBLISH: its MQTT 5 Message Expiry Interval, seconds (0: none), so
                             * the broker can drop a retained value that expired; EVENT of a
                             * retained value: the seconds left of it (0: none) */
    char *from;             /* MESSAGE: the client that sent it */
    bool ok;                /* REPLY: true = OK, false = ERR */
    char *code;             /* REPLY when !ok: error code word (docs/protocol.md) */
    char *text;             /* REPLY: result text when ok, message when not */
} sb_envelope_t;

/* Encodes `env` into a new buffer (free() it); NULL if a required field is
 * missing or the result would exceed SB_ENVELOPE_MAX_SIZE. */
uint8_t *sb_envelope_encode(const sb_envelope_t *env, size_t *size_out);

/* Decodes `size` bytes. On success returns a new envelope; on failure NULL
 * with *error_out (if given) set to a static reason such as "too large",
 * "bad msgpack", "not a map", "unsupported version", "missing field id". */
sb_envelope_t *sb_envelope_decode(const uint8_t *data, size_t size,
                                  const char **error_out);

/* Bytes taken by the first msgpack value in `data` (an envelope, if
 * sb_envelope_decode accepts them), 0 when none can be delimited. Several
 * envelopes travel back to back in one message (envelope_io.h). */
size_t sb_envelope_length(const uint8_t *data, size_t size);

/* Frees a decoded envelope and sets *self_p to NULL. */
void sb_envelope_destroy(sb_envelope_t **self_p);

/* Name of an envelope type for logs ("request", "reply", ...). */
const char *sb_envelope_type_name(sb_envelope_type_t type);

#endif
