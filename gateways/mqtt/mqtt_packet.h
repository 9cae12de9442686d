/* mqtt_packet.h — the MQTT 3.1, 3.1.1 and 5.0 packet codec for the server
 * side, without sockets: a stream framer (bytes in any chunking → whole
 * packets), decoders for what a client sends, encoders for what a server
 * sends, and the standard's validation with each failure mapped to its v5
 * reason code. The gateway owns the connection state (session, aliases,
 * packet ids in flight); the codec checks everything one packet alone can
 * tell (OASIS MQTT 3.1.1 and MQTT 5.0).
 *
 * Reason codes are v5 codes everywhere in this API, for every version: the
 * encoders turn them into 3.1.1 CONNACK return codes and SUBACK failures
 * themselves, so the gateway keeps one vocabulary.
 *
 * Typical use, per connection:
 *
 *     sb_mqtt_framer_t *framer = sb_mqtt_framer_new(max_packet_size);
 *     // on each read:
 *     const uint8_t *in = bytes; size_t left = n;
 *     sb_mqtt_frame_t frame;
 *     sb_mqtt_frame_status_t status;
 *     while ((status = sb_mqtt_framer_next(framer, &in, &left, &frame)) == SB_MQTT_FRAME_READY) {
 *         sb_mqtt_error_t error;
 *         sb_mqtt_packet_t *packet = sb_mqtt_decode(frame.data, frame.length, version, &error);
 *         if (!packet) { close with error.reason; break; }
 *         ...handle packet...
 *         sb_mqtt_packet_destroy(&packet);
 *     }
 *     if (status == SB_MQTT_FRAME_TOO_LARGE) close with 0x95; if MALFORMED with 0x81.
 */
#ifndef SB_MQTT_PACKET_H
#define SB_MQTT_PACKET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* Versions, packet types, reason codes, property identifiers          */

/* The CONNECT packet's protocol level. */
typedef enum {
    SB_MQTT_V31 = 3,    /* MQTT 3.1 ("MQIsdp"): decoded like 3.1.1; the gateway may refuse it */
    SB_MQTT_V311 = 4,   /* MQTT 3.1.1 */
    SB_MQTT_V5 = 5      /* MQTT 5.0 */
} sb_mqtt_version_t;

typedef enum {
    SB_MQTT_CONNECT = 1,
    SB_MQTT_CONNACK = 2,
    SB_MQTT_PUBLISH = 3,
    SB_MQTT_PUBACK = 4,
    SB_MQTT_PUBREC = 5,
    SB_MQTT_PUBREL = 6,
    SB_MQTT_PUBCOMP = 7,
    SB_MQTT_SUBSCRIBE = 8,
    SB_MQTT_SUBACK = 9,
    SB_MQTT_UNSUBSCRIBE = 10,
    SB_MQTT_UNSUBACK = 11,
    SB_MQTT_PINGREQ = 12,
    SB_MQTT_PINGRESP = 13,
    SB_MQTT_DISCONNECT = 14,
    SB_MQTT_AUTH = 15           /* v5 only */
} sb_mqtt_type_t;

/* "CONNECT", "PUBLISH", ...; "?" for anything else. */
const char *sb_mqtt_type_name(int type);

/* Every MQTT 5.0 reason code (§2.4). 0x00 is also "Normal disconnection"
 * and "Granted QoS 0". */
typedef enum {
    SB_MQTT_RC_SUCCESS = 0x00,
    SB_MQTT_RC_NORMAL_DISCONNECTION = 0x00,
    SB_MQTT_RC_GRANTED_QOS_0 = 0x00,
    SB_MQTT_RC_GRANTED_QOS_1 = 0x01,
    SB_MQTT_RC_GRANTED_QOS_2 = 0x02,
    SB_MQTT_RC_DISCONNECT_WITH_WILL = 0x04,
    SB_MQTT_RC_NO_MATCHING_SUBSCRIBERS = 0x10,
    SB_MQTT_RC_NO_SUBSCRIPTION_EXISTED = 0x11,
    SB_MQTT_RC_CONTINUE_AUTHENTICATION = 0x18,
    SB_MQTT_RC_REAUTHENTICATE = 0x19,
    SB_MQTT_RC_UNSPECIFIED_ERROR = 0x80,
    SB_MQTT_RC_MALFORMED_PACKET = 0x81,
    SB_MQTT_RC_PROTOCOL_ERROR = 0x82,
    SB_MQTT_RC_IMPLEMENTATION_SPECIFIC_ERROR = 0x83,
    SB_MQTT_RC_UNSUPPORTED_PROTOCOL_VERSION = 0x84,
    SB_MQTT_RC_CLIENT_IDENTIFIER_NOT_VALID = 0x85,
    SB_MQTT_RC_BAD_USER_NAME_OR_PASSWORD = 0x86,
    SB_MQTT_RC_NOT_AUTHORIZED = 0x87,
    SB_MQTT_RC_SERVER_UNAVAILABLE = 0x88,
    SB_MQTT_RC_SERVER_BUSY = 0x89,
    SB_MQTT_RC_BANNED = 0x8A,
    SB_MQTT_RC_SERVER_SHUTTING_DOWN = 0x8B,
    SB_MQTT_RC_BAD_AUTHENTICATION_METHOD = 0x8C,
    SB_MQTT_RC_KEEP_ALIVE_TIMEOUT = 0x8D,
    SB_MQTT_RC_SESSION_TAKEN_OVER = 0x8E,
    SB_MQTT_RC_TOPIC_FILTER_INVALID = 0x8F,
    SB_MQTT_RC_TOPIC_NAME_INVALID = 0x90,
    SB_MQTT_RC_PACKET_IDENTIFIER_IN_USE = 0x91,
    SB_MQTT_RC_PACKET_IDENTIFIER_NOT_FOUND = 0x92,
    SB_MQTT_RC_RECEIVE_MAXIMUM_EXCEEDED = 0x93,
    SB_MQTT_RC_TOPIC_ALIAS_INVALID = 0x94,
    SB_MQTT_RC_PACKET_TOO_LARGE = 0x95,
    SB_MQTT_RC_MESSAGE_RATE_TOO_HIGH = 0x96,
    SB_MQTT_RC_QUOTA_EXCEEDED = 0x97,
    SB_MQTT_RC_ADMINISTRATIVE_ACTION = 0x98,
    SB_MQTT_RC_PAYLOAD_FORMAT_INVALID = 0x99,
    SB_MQTT_RC_RETAIN_NOT_SUPPORTED = 0x9A,
    SB_MQTT_RC_QOS_NOT_SUPPORTED = 0x9B,
    SB_MQTT_RC_USE_ANOTHER_SERVER = 0x9C,
    SB_MQTT_RC_SERVER_MOVED = 0x9D,
    SB_MQTT_RC_SHARED_SUBSCRIPTIONS_NOT_SUPPORTED = 0x9E,
    SB_MQTT_RC_CONNECTION_RATE_EXCEEDED = 0x9F,
    SB_MQTT_RC_MAXIMUM_CONNECT_TIME = 0xA0,
    SB_MQTT_RC_SUBSCRIPTION_IDENTIFIERS_NOT_SUPPORTED = 0xA1,
    SB_MQTT_RC_WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED = 0xA2
} sb_mqtt_reason_t;

/* The standard's name of a reason code ("Malformed Packet"); "Success" for
 * 0x00; NULL for a value that is no reason code. */
const char *sb_mqtt_reason_name(int reason);

/* Whether a v5 packet of `type` may carry `reason` (v5 §2.4, Table 2-6):
 * 0x8E Session taken over goes only in a DISCONNECT, 0x92 only in a
 * PUBREL or PUBCOMP. The decoder refuses the others (0x82). */
bool sb_mqtt_reason_allowed(int reason, int type);

/* The 3.1.1 (and 3.1) CONNACK return code for a v5 CONNACK reason code:
 * 0x00 → 0, 0x84 → 1 (unacceptable protocol version), 0x85 → 2 (identifier
 * rejected), 0x86 → 4 (bad user name or password), 0x87/0x8A/0x8C → 5 (not
 * authorized), anything else → 3 (server unavailable). */
uint8_t sb_mqtt_reason_to_v3_connack(int reason);

/* The 3.1.1 SUBACK return code for a v5 SUBACK reason code: granted QoS
 * 0..2 unchanged, any failure (≥ 0x80) → 0x80. */
uint8_t sb_mqtt_reason_to_v3_suback(int reason);

/* MQTT 5.0 property identifiers (§2.2.2.2). */
typedef enum {
    SB_MQTT_PROP_PAYLOAD_FORMAT_INDICATOR = 0x01,
    SB_MQTT_PROP_MESSAGE_EXPIRY_INTERVAL = 0x02,
    SB_MQTT_PROP_CONTENT_TYPE = 0x03,
    SB_MQTT_PROP_RESPONSE_TOPIC = 0x08,
    SB_MQTT_PROP_CORRELATION_DATA = 0x09,
    SB_MQTT_PROP_SUBSCRIPTION_IDENTIFIER = 0x0B,
    SB_MQTT_PROP_SESSION_EXPIRY_INTERVAL = 0x11,
    SB_MQTT_PROP_ASSIGNED_CLIENT_IDENTIFIER = 0x12,
    SB_MQTT_PROP_SERVER_KEEP_ALIVE = 0x13,
    SB_MQTT_PROP_AUTHENTICATION_METHOD = 0x15,
    SB_MQTT_PROP_AUTHENTICATION_DATA = 0x16,
    SB_MQTT_PROP_REQUEST_PROBLEM_INFORMATION = 0x17,
    SB_MQTT_PROP_WILL_DELAY_INTERVAL = 0x18,
    SB_MQTT_PROP_REQUEST_RESPONSE_INFORMATION = 0x19,
    SB_MQTT_PROP_RESPONSE_INFORMATION = 0x1A,
    SB_MQTT_PROP_SERVER_REFERENCE = 0x1C,
    SB_MQTT_PROP_REASON_STRING = 0x1F,
    SB_MQTT_PROP_RECEIVE_MAXIMUM = 0x21,
    SB_MQTT_PROP_TOPIC_ALIAS_MAXIMUM = 0x22,
    SB_MQTT_PROP_TOPIC_ALIAS = 0x23,
    SB_MQTT_PROP_MAXIMUM_QOS = 0x24,
    SB_MQTT_PROP_RETAIN_AVAILABLE = 0x25,
    SB_MQTT_PROP_USER_PROPERTY = 0x26,
    SB_MQTT_PROP_MAXIMUM_PACKET_SIZE = 0x27,
    SB_MQTT_PROP_WILDCARD_SUBSCRIPTION_AVAILABLE = 0x28,
    SB_MQTT_PROP_SUBSCRIPTION_IDENTIFIER_AVAILABLE = 0x29,
    SB_MQTT_PROP_SHARED_SUBSCRIPTION_AVAILABLE = 0x2A
} sb_mqtt_property_id_t;

/* "Session Expiry Interval", ...; NULL for an unknown identifier. */
const char *sb_mqtt_property_name(int id);

/* Limits of the standard. */
#define SB_MQTT_MAX_REMAINING_LENGTH 268435455u   /* 4-byte variable byte integer */
#define SB_MQTT_MAX_PACKET_SIZE (SB_MQTT_MAX_REMAINING_LENGTH + 5u)
#define SB_MQTT_MAX_SUBSCRIPTION_ID 268435455u

/* ------------------------------------------------------------------ */
/* Strings, properties                                                  */

/* A UTF-8 string or binary data. In a decoded packet `data` is never NULL
 * and is NUL-terminated (data[length] == '\0'), so strings may be used as C
 * strings (a decoded string never contains U+0000; binary data may contain
 * NUL bytes). In a packet built for encoding, `data` need not be
 * NUL-terminated and may be NULL when `length` is 0. */
typedef struct {
    const char *data;
    size_t length;
} sb_mqtt_str_t;

/* A string from a C string (NULL → empty). */
static inline sb_mqtt_str_t sb_mqtt_str(const char *text)
{
    sb_mqtt_str_t s = { text, text ? strlen(text) : 0 };
    return s;
}

typedef struct {
    sb_mqtt_str_t name;
    sb_mqtt_str_t value;
} sb_mqtt_user_property_t;

/* The v5 properties of any packet (and of a CONNECT's will). A property is
 * present when its bit (1 << id) is set in `present`, whatever its field
 * holds; user properties and subscription identifiers are present when
 * their count is not 0. The decoder sets exactly the bits of the
 * properties received; the encoder writes exactly the properties present
 * (and refuses one the packet type may not carry). In 3.1.1 all of this is
 * ignored by the encoder and left empty by the decoder. */
typedef struct {
    uint64_t present;
    uint8_t payload_format_indicator;          /* 0x01: 0 bytes, 1 UTF-8 */
    uint32_t message_expiry_interval;          /* 0x02: seconds */
    sb_mqtt_str_t content_type;                /* 0x03 */
    sb_mqtt_str_t response_topic;              /* 0x08 */
    sb_mqtt_str_t correlation_data;            /* 0x09: binary */
    const uint32_t *subscription_ids;          /* 0x0B: 1 in SUBSCRIBE, several in a PUBLISH to a client */
    size_t subscription_id_count;
    uint32_t session_expiry_interval;          /* 0x11: seconds, 0xFFFFFFFF never */
    sb_mqtt_str_t assigned_client_identifier;  /* 0x12 */
    uint16_t server_keep_alive;                /* 0x13: seconds */
    sb_mqtt_str_t authentication_method;       /* 0x15 */
    sb_mqtt_str_t authentication_data;         /* 0x16: binary */
    uint8_t request_problem_information;       /* 0x17: 0 or 1 (absent means 1) */
    uint32_t will_delay_interval;              /* 0x18: seconds */
    uint8_t request_response_information;      /* 0x19: 0 or 1 (absent means 0) */
    sb_mqtt_str_t response_information;        /* 0x1A */
    sb_mqtt_str_t server_reference;            /* 0x1C */
    sb_mqtt_str_t reason_string;               /* 0x1F */
    uint16_t receive_maximum;                  /* 0x21: 1..65535 (absent means 65535) */
    uint16_t topic_alias_maximum;              /* 0x22 */
    uint16_t topic_alias;                      /* 0x23: 1..topic alias maximum */
    uint8_t maximum_qos;                       /* 0x24: 0 or 1 (absent means 2) */
    uint8_t retain_available;                  /* 0x25: 0 or 1 */
    const sb_mqtt_user_property_t *user_properties;   /* 0x26, in order, repeats kept */
    size_t user_property_count;
    uint32_t maximum_packet_size;              /* 0x27: 1.. (absent means no limit) */
    uint8_t wildcard_subscription_available;   /* 0x28: 0 or 1 */
    uint8_t subscription_identifier_available; /* 0x29: 0 or 1 */
    uint8_t shared_subscription_available;     /* 0x2A: 0 or 1 */
} sb_mqtt_properties_t;

static inline bool sb_mqtt_has(const sb_mqtt_properties_t *props, sb_mqtt_property_id_t id)
{
    if (id == SB_MQTT_PROP_USER_PROPERTY)
        return props->user_property_count > 0;
    if (id == SB_MQTT_PROP_SUBSCRIPTION_IDENTIFIER)
        return props->subscription_id_count > 0;
    return (props->present >> id) & 1u;
}

/* Marks a property present (for packets built for encoding). */
static inline void sb_mqtt_mark(sb_mqtt_properties_t *props, sb_mqtt_property_id_t id)
{
    props->present |= (uint64_t) 1 << id;
}

/* ------------------------------------------------------------------ */
/* Packets                                                              */

/* CONNECT (client → server). */
typedef struct {
    sb_mqtt_version_t version;       /* from the protocol level */
    bool clean_start;                /* 3.1.1: Clean Session */
    uint16_t keep_alive;             /* seconds, 0 = none */
    sb_mqtt_properties_t properties;
    sb_mqtt_str_t client_id;         /* may be empty (the server assigns one) */
    bool will;                       /* a will message follows */
    uint8_t will_qos;
    bool will_retain;
    sb_mqtt_properties_t will_properties;
    sb_mqtt_str_t will_topic;        /* a valid topic name */
    sb_mqtt_str_t will_payload;      /* binary */
    bool has_username;
    sb_mqtt_str_t username;
    bool has_password;
    sb_mqtt_str_t password;          /* binary */
} sb_mqtt_connect_t;

/* CONNACK (server → client). `reason` is a v5 code (mapped for 3.1.1). */
typedef struct {
    bool session_present;            /* must be false when reason is not 0 */
    uint8_t reason;
    sb_mqtt_properties_t properties;
} sb_mqtt_connack_t;

/* PUBLISH (both ways). A decoded topic is a valid topic name (no wildcards,
 * U+0000 or bad UTF-8); it is empty only in v5 with a Topic Alias (the
 * gateway resolves the alias, whose value is ≥ 1 but not checked against
 * its maximum). */
typedef struct {
    bool dup;
    uint8_t qos;                     /* 0..2 */
    bool retain;
    sb_mqtt_str_t topic;
    uint16_t packet_id;              /* ≥ 1 when qos > 0, else 0 */
    sb_mqtt_properties_t properties;
    sb_mqtt_str_t payload;           /* binary */
} sb_mqtt_publish_t;

/* PUBACK, PUBREC, PUBREL, PUBCOMP (both ways). Short forms: a v5 reason 0
 * without properties is encoded in 2 bytes, a reason without properties in 3. */
typedef struct {
    uint16_t packet_id;
    uint8_t reason;                  /* v5; always 0 when decoded from 3.1.1 */
    sb_mqtt_properties_t properties;
} sb_mqtt_ack_t;

/* One Topic Filter of a SUBSCRIBE with its Subscription Options. */
typedef struct {
    sb_mqtt_str_t filter;            /* as sent, "$share/GROUP/" included */
    sb_mqtt_str_t share_group;       /* GROUP of a shared subscription, else empty */
    sb_mqtt_str_t topic_filter;      /* the filter to match topics with (after $share/GROUP/) */
    uint8_t qos;                     /* maximum QoS, 0..2 */
    bool no_local;                   /* v5 */
    bool retain_as_published;        /* v5 */
    uint8_t retain_handling;         /* v5: 0 send retained, 1 only if new, 2 never */
    /* 0 when the filter is valid, else the v5 SUBACK/UNSUBACK reason the
     * gateway should answer this filter with (SB_MQTT_RC_TOPIC_FILTER_INVALID
     * for a misplaced wildcard or a bad $share/ form). Filters with bad
     * UTF-8 or U+0000 make the whole packet malformed instead. */
    uint8_t reason;
} sb_mqtt_subscription_t;

/* SUBSCRIBE (client → server), or UNSUBSCRIBE (only `filter`,
 * `share_group`, `topic_filter` and `reason` of each item are used). */
typedef struct {
    uint16_t packet_id;              /* ≥ 1 */
    sb_mqtt_properties_t properties;
    const sb_mqtt_subscription_t *items;   /* at least one */
    size_t count;
} sb_mqtt_subscribe_t;

/* SUBACK or UNSUBACK (server → client): one v5 reason per filter, in order.
 * 3.1.1 SUBACK codes are mapped (sb_mqtt_reason_to_v3_suback); a 3.1.1
 * UNSUBACK carries none. */
typedef struct {
    uint16_t packet_id;
    sb_mqtt_properties_t properties;
    const uint8_t *reasons;
    size_t count;
} sb_mqtt_suback_t;

/* DISCONNECT (both ways in v5; from the client only, and empty, in 3.1.1)
 * and AUTH (v5). */
typedef struct {
    uint8_t reason;
    sb_mqtt_properties_t properties;
} sb_mqtt_disconnect_t;

typedef struct {
    sb_mqtt_type_t type;
    uint8_t flags;                   /* the fixed header's low 4 bits, as received */
    union {
        sb_mqtt_connect_t connect;
        sb_mqtt_connack_t connack;
        sb_mqtt_publish_t publish;
        sb_mqtt_ack_t ack;                 /* PUBACK, PUBREC, PUBREL, PUBCOMP */
        sb_mqtt_subscribe_t subscribe;     /* SUBSCRIBE, UNSUBSCRIBE */
        sb_mqtt_suback_t suback;           /* SUBACK, UNSUBACK */
        sb_mqtt_disconnect_t disconnect;   /* DISCONNECT, AUTH */
    } u;                             /* PINGREQ and PINGRESP have no fields */
} sb_mqtt_packet_t;

/* ------------------------------------------------------------------ */
/* Framing                                                              */

typedef struct sb_mqtt_framer sb_mqtt_framer_t;

typedef enum {
    SB_MQTT_FRAME_NEED_MORE,   /* every input byte was taken; feed more */
    SB_MQTT_FRAME_READY,       /* *frame holds one whole packet */
    SB_MQTT_FRAME_MALFORMED,   /* a Remaining Length of more than 4 bytes (0x81) */
    SB_MQTT_FRAME_TOO_LARGE    /* the packet is over the maximum size (0x95) */
} sb_mqtt_frame_status_t;

/* One whole packet, fixed header included. */
typedef struct {
    uint8_t type;              /* the fixed header's high 4 bits (0..15, unchecked) */
    uint8_t flags;             /* its low 4 bits */
    const uint8_t *data;       /* the packet's first byte */
    size_t length;             /* the whole packet */
    size_t header_length;      /* 2..5: the fixed header */
} sb_mqtt_frame_t;

/* A framer refusing packets over `max_packet_size` bytes (whole packet,
 * fixed header included, as v5's Maximum Packet Size counts; 0 means the
 * standard's limit). It never buffers more than one packet, and holds no
 * more memory than the bytes of it that came (not what its header claims). */
sb_mqtt_framer_t *sb_mqtt_framer_new(size_t max_packet_size);
void sb_mqtt_framer_destroy(sb_mqtt_framer_t **self_p);

/* Takes bytes from *input (advancing *input, decreasing *left) until one
 * packet is whole, and returns READY with it in *frame; call again with the
 * same input until NEED_MORE (all input taken). When a packet lies whole in
 * the input, frame->data points into the input (no copy); otherwise into
 * the framer. Either way it is valid until the next call or until the input
 * is released. After MALFORMED or TOO_LARGE the framer keeps returning that
 * status: close the connection. The limit is checked as soon as the
 * Remaining Length is read, before the packet's bytes arrive. */
sb_mqtt_frame_status_t sb_mqtt_framer_next(sb_mqtt_framer_t *self, const uint8_t **input,
                                           size_t *left, sb_mqtt_frame_t *frame);

/* Bytes the framer holds of an unfinished packet (for memory accounting). */
size_t sb_mqtt_framer_buffered(const sb_mqtt_framer_t *self);

/* ------------------------------------------------------------------ */
/* Decoding                                                             */

typedef struct {
    uint8_t reason;            /* 0, or the v5 reason code to close with */
    const char *detail;        /* static text for logs / Reason String ("bad UTF-8 in the topic") */
    /* For a CONNECT that is refused: 0 means close without a CONNACK (the
     * standard allows no answer, e.g. a wrong protocol name or a malformed
     * packet before the version is known); else the version to encode the
     * refusing CONNACK with (sb_mqtt_encode maps the reason for 3.x). */
    uint8_t connack_version;
} sb_mqtt_error_t;

/* Decodes one whole packet (as sb_mqtt_framer_next returns it) that a
 * client sent. `version` is the connection's, from its CONNECT, or 0 before
 * it: then only a CONNECT is accepted (anything else is a protocol error,
 * "a packet before CONNECT"), and the CONNECT's own protocol level decides
 * how it is read; after it, a CONNECT is a protocol error (a second
 * CONNECT).
 *
 * Returns a packet that owns all its memory (strings are NUL-terminated
 * copies in one arena; nothing points into `data`, which may be released
 * at once), to free with sb_mqtt_packet_destroy. Returns NULL with *error
 * set for a packet the standard refuses: 0x81 Malformed Packet (lengths,
 * flags, bad UTF-8 or U+0000 in a string, a property the packet may not
 * carry, a QoS 3), 0x82 Protocol Error (a packet id 0, a repeated property,
 * a property value out of range, a packet of the wrong direction or
 * version, a Subscription Identifier from a client, no topic and no
 * alias, an empty SUBSCRIBE, a reason code the packet may not carry),
 * 0x90 Topic Name invalid (wildcards in a PUBLISH or will topic), 0x94 Topic Alias invalid (alias 0), and for
 * CONNECT 0x84 Unsupported Protocol Version and 0x85 Client Identifier not
 * valid (3.1.1 empty id without clean session). */
sb_mqtt_packet_t *sb_mqtt_decode(const uint8_t *data, size_t length, sb_mqtt_version_t version,
                                 sb_mqtt_error_t *error);

/* The same for packets a server sends (CONNACK, PUBLISH, acks, SUBACK,
 * UNSUBACK, PINGRESP, DISCONNECT, AUTH): for tests, benchmarks and
 * clients. 3.1.1 CONNACK return codes come back as the v5 reason codes
 * the encoder maps them from (1 → 0x84, 2 → 0x85, 3 → 0x88, 4 → 0x86,
 * 5 → 0x87); reason codes a packet may not carry are a protocol error. */
sb_mqtt_packet_t *sb_mqtt_decode_from_server(const uint8_t *data, size_t length,
                                             sb_mqtt_version_t version, sb_mqtt_error_t *error);

void sb_mqtt_packet_destroy(sb_mqtt_packet_t **self_p);

/* ------------------------------------------------------------------ */
/* Encoding                                                             */

/* Where encoded packets go: a growable buffer, or the caller's memory. */
typedef struct {
    uint8_t *data;
    size_t length;             /* bytes written so far */
    size_t capacity;
    bool fixed;                /* caller's memory: never grown nor freed */
} sb_mqtt_buffer_t;

void sb_mqtt_buffer_init(sb_mqtt_buffer_t *self);
void sb_mqtt_buffer_init_fixed(sb_mqtt_buffer_t *self, void *memory, size_t capacity);
/* Forgets the bytes written, keeps the memory. */
void sb_mqtt_buffer_clear(sb_mqtt_buffer_t *self);
/* Frees a growable buffer's memory (the buffer is empty and usable after). */
void sb_mqtt_buffer_release(sb_mqtt_buffer_t *self);

/* Errors of sb_mqtt_encode (negative). */
#define SB_MQTT_ENCODE_TOO_LARGE (-1)   /* over max_packet_size: drop it (a PUBLISH) or close */
#define SB_MQTT_ENCODE_NO_ROOM (-2)     /* a fixed buffer is too small */
#define SB_MQTT_ENCODE_INVALID (-3)     /* not a packet this version can carry (see below) */

/* Appends `packet` (of a server-to-client type, or any type for tests)
 * encoded for `version` to `out`, and returns its length, or a negative
 * SB_MQTT_ENCODE_* with `out` unchanged. `max_packet_size` is the client's
 * Maximum Packet Size (0: the standard's limit). A packet other than
 * PUBLISH that would be over it is sent without its Reason String and User
 * Properties (v5 says of both, in every packet that has them: the sender
 * "MUST NOT send this property if it would increase the size of the packet
 * beyond the Maximum Packet Size"), and only then refused.
 *
 * Every packet type can be encoded (client ones too, for tests and
 * benchmarks). INVALID: a type the version lacks (AUTH in 3.x; a
 * DISCONNECT in 3.x with a reason code or properties), a
 * property the packet type may not carry, a QoS above 2, a packet id 0
 * where one is required, a string over 65535 bytes, a packet over the
 * standard's size. The encoder does not check UTF-8 (the gateway's strings
 * come checked from the decoder or from the hub). */
int sb_mqtt_encode(const sb_mqtt_packet_t *packet, sb_mqtt_version_t version,
                   size_t max_packet_size, sb_mqtt_buffer_t *out);

/* ------------------------------------------------------------------ */
/* Checks the decoder applies, for the gateway's own strings            */

/* A UTF-8 Encoded String as MQTT allows it: well-formed UTF-8 (common/utf8.h)
 * without U+0000, the C0 and C1 control characters (U+0001..U+001F,
 * U+007F..U+009F) and the non-characters (U+FDD0..U+FDEF, U+xFFFE/U+xFFFF),
 * which the standard lets a receiver refuse (MQTT 5.0 §1.5.4), as Mosquitto
 * does. */
bool sb_mqtt_string_is_valid(const char *data, size_t length);

/* A Topic Name: a valid string of 1..65535 bytes without '+' or '#'. */
bool sb_mqtt_topic_name_is_valid(const char *data, size_t length);

/* A Topic Filter (without $share/): a valid string of 1..65535 bytes where
 * '+' stands alone in a level and '#' alone in the last one. */
bool sb_mqtt_topic_filter_is_valid(const char *data, size_t length);

#endif
