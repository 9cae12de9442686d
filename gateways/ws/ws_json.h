/* ws_json.h — the WebSocket gateway's JSON messages (§3.2), with jansson:
 * requests {"id","cmd","args"} in; replies, events, direct messages and
 * the welcome out. */
#ifndef SB_WS_JSON_H
#define SB_WS_JSON_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

typedef enum {
    SB_WS_JSON_REQUEST,        /* id, argc, argv are set */
    SB_WS_JSON_NOT_JSON,       /* a command line for the line protocol */
    SB_WS_JSON_BAD_REQUEST,    /* JSON, but not a request: id (maybe null) and error are set */
} sb_ws_json_kind_t;

typedef struct {
    json_t *id;                /* owned: echoed in the reply (json null when absent) */
    size_t argc;
    char **argv;               /* argv[0] is the command; NULL-terminated, owned */
    const char *error;         /* for SB_WS_JSON_BAD_REQUEST */
} sb_ws_json_request_t;

/* Reads one text message. Free what it set with sb_ws_json_request_clear. */
sb_ws_json_kind_t sb_ws_json_decode(const char *text, size_t length,
                                    sb_ws_json_request_t *request);
void sb_ws_json_request_clear(sb_ws_json_request_t *request);

/* The texts to send (heap strings). `status` is "OK", "ERR code" or NULL
 * (a bank-style answer: a success whose text is the whole reply). */
char *sb_ws_json_reply(json_t *id, const char *status, const char *text);
/* An event; its data is the payload parsed as JSON when it is JSON, else the payload text;
 * a retained value (sent on subscribe) also has "retained":true. */
char *sb_ws_json_event(const char *topic, const char *payload, bool retained);
char *sb_ws_json_message(const char *from, const char *text);
char *sb_ws_json_welcome(const char *client_id);

#endif
