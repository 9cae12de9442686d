/* nats_proto.h — the part of the NATS client protocol (text, over TCP) that
 * bench/'s NATS programs speak: what a client sends to connect, and a parser
 * for what the server sends (INFO, MSG, PING, PONG, +OK, -ERR). Not the hub's:
 * it exists so the benchmark can drive nats-server with the same load shape. */
#ifndef SB_NATS_PROTO_H
#define SB_NATS_PROTO_H

#include <stddef.h>

/* No +OK after every operation, no extra checks: the fast path of a client. */
#define NATS_CONNECT "CONNECT {\"verbose\":false,\"pedantic\":false}\r\n"

#define NATS_MAX_LINE 4096          /* bytes of a control line, CRLF included */
#define NATS_MAX_PAYLOAD (1u << 20) /* nats-server's default max_payload */

typedef enum { NATS_INFO, NATS_MSG, NATS_PING, NATS_PONG, NATS_OK, NATS_ERR } nats_kind_t;

typedef struct {
    const char *data;
    size_t length;
} nats_text_t;

/* One operation from the server; the texts point into the parsed buffer. */
typedef struct {
    nats_kind_t kind;
    nats_text_t subject, sid, reply; /* MSG; reply empty when there is none */
    nats_text_t payload;             /* MSG: the payload; INFO, -ERR: the rest of the line */
} nats_op_t;

/* Parses the operation at the start of buf[0..length): the bytes it takes
 * (> 0), 0 when it is not complete yet, or -1 when it is malformed (then
 * *error says why). */
long nats_parse(const char *buf, size_t length, nats_op_t *op, const char **error);

#endif
