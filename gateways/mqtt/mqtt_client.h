/* mqtt_client.h — one MQTT network connection on libuv: TLS if it came
 * from the TLS listener, framing of its bytes into whole MQTT packets
 * (bounded by --max-packet), its output, and its keep alive timer. What a
 * packet means is the gateway's business (mqtt_gateway.c); this file only
 * delivers packets and sends bytes.
 *
 * Over WebSocket (MQTT 5.0 §6: subprotocol `mqtt`, binary messages) the
 * bytes go through the project's WebSocket protocol (gateways/ws/ws_stream.h)
 * first; the packets inside are the same.
 *
 * A client that sends nothing for 1.5 times its keep alive is closed
 * (MQTT 3.1.1 §3.1.2.10, 5.0 §3.1.2.10); until it has sent CONNECT the
 * connect timeout applies instead. */
#ifndef SB_MQTT_CLIENT_H
#define SB_MQTT_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "tls.h"
#include "ws_stream.h"

typedef struct sb_mqtt_client sb_mqtt_client_t;

typedef struct {
    size_t max_packet;            /* largest packet accepted, whole (fixed header included) */
    size_t max_output;            /* unsent bytes before the client counts as not reading */
    uint64_t connect_timeout_ms;  /* for the TLS handshake and the CONNECT packet */
} sb_mqtt_client_limits_t;

/* Why the transport ended a connection by itself. */
typedef enum {
    SB_MQTT_CLIENT_TOO_LARGE,     /* a packet over max_packet: v5 reason 0x95 */
    SB_MQTT_CLIENT_MALFORMED,     /* a remaining length that is no valid varint: 0x81 */
    SB_MQTT_CLIENT_KEEP_ALIVE,    /* silent past 1.5 x keep alive: 0x8D */
    SB_MQTT_CLIENT_NOT_READING,   /* output piled up past max_output */
} sb_mqtt_client_failure_t;

typedef struct {
    /* Ready for MQTT (after its TLS handshake). */
    void (*on_ready)(void *owner, sb_mqtt_client_t *client);
    /* One whole packet; the bytes are valid only during the call. */
    void (*on_packet)(void *owner, sb_mqtt_client_t *client, const uint8_t *packet,
                      size_t length);
    /* The transport gives up on the client (it will be closed after this
     * returns, once what is written now is sent). */
    void (*on_failure)(void *owner, sb_mqtt_client_t *client, sb_mqtt_client_failure_t why);
    /* The network connection has ended; the client is freed after this returns. */
    void (*on_closed)(void *owner, sb_mqtt_client_t *client);
    /* It has output to send before the loop next sleeps. */
    void (*on_output)(void *owner, sb_mqtt_client_t *client);
    /* A plain HTTP GET on a WebSocket listener (answer with
     * sb_mqtt_client_respond); NULL: 426 for every one. */
    void (*on_http)(void *owner, sb_mqtt_client_t *client, const char *path);
} sb_mqtt_client_events_t;

/* Accepts from `listener` (TLS when `tls` is set, WebSocket when `ws` is);
 * NULL when the accept failed. */
sb_mqtt_client_t *sb_mqtt_client_accept(uv_stream_t *listener, uint64_t serial,
                                        const sb_mqtt_client_limits_t *limits,
                                        const sb_mqtt_client_events_t *events, void *owner,
                                        sb_tls_context_t *tls, const sb_ws_stream_limits_t *ws);
void sb_mqtt_client_start(sb_mqtt_client_t *self);

uint64_t sb_mqtt_client_serial(const sb_mqtt_client_t *self);
void sb_mqtt_client_peer(sb_mqtt_client_t *self, char *buffer, size_t size);

/* What the gateway keeps with the connection (its session). */
void sb_mqtt_client_set_data(sb_mqtt_client_t *self, void *data);
void *sb_mqtt_client_data(const sb_mqtt_client_t *self);

/* CONNECT is accepted: from now on the client must send something every
 * `seconds` (0: no keep alive), with half as much again in grace. */
void sb_mqtt_client_keep_alive(sb_mqtt_client_t *self, unsigned seconds);

/* Answers the HTTP request of on_http, then closes. */
void sb_mqtt_client_respond(sb_mqtt_client_t *self, int status, const char *content_type,
                            const char *body, size_t length);

/* Appends a packet to the output (sent before the loop sleeps). */
void sb_mqtt_client_write(sb_mqtt_client_t *self, const void *data, size_t length);
void sb_mqtt_client_flush(sb_mqtt_client_t *self);

/* Backpressure: pause stops handing over packets (after the current one)
 * and reading the socket; what was read already waits in the client
 * (at most about one read's worth), and keep alive is suspended. Resume
 * hands it over on the next loop turn, then reads again. */
void sb_mqtt_client_pause(sb_mqtt_client_t *self);
void sb_mqtt_client_resume(sb_mqtt_client_t *self);

/* Reads no more; closes once what is written is sent (after a CONNACK
 * refusal or a DISCONNECT). */
void sb_mqtt_client_end(sb_mqtt_client_t *self);
/* Closes at once, dropping unsent output. */
void sb_mqtt_client_close(sb_mqtt_client_t *self);
bool sb_mqtt_client_is_closing(const sb_mqtt_client_t *self);

#endif
