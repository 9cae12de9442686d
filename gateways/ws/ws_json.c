/* ws_json.c — JSON requests and answers of WebSocket clients (see ws_json.h). */
#include "ws_json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "utf8.h"

#define MAX_ARGS 256

void sb_ws_json_request_clear(sb_ws_json_request_t *request)
{
    json_decref(request->id);
    for (size_t i = 0; request->argv && i < request->argc; i++)
        free(request->argv[i]);
    free(request->argv);
    *request = (sb_ws_json_request_t) { 0 };
}

/* An argument's text: strings as they are (unless they hold a NUL),
 * numbers and booleans as written in JSON; NULL for anything else. */
static char *argument_text(const json_t *value)
{
    if (json_is_string(value))
        return strlen(json_string_value(value)) == json_string_length(value)
                   ? strdup(json_string_value(value)) : NULL;
    if (json_is_number(value) || json_is_boolean(value))
        return json_dumps(value, JSON_ENCODE_ANY | JSON_COMPACT);
    return NULL;
}

static sb_ws_json_kind_t bad_request(sb_ws_json_request_t *request, const char *error)
{
    for (size_t i = 0; request->argv && i < request->argc; i++)
        free(request->argv[i]);
    free(request->argv);
    request->argv = NULL;
    request->argc = 0;
    request->error = error;
    return SB_WS_JSON_BAD_REQUEST;
}

sb_ws_json_kind_t sb_ws_json_decode(const char *text, size_t length,
                                    sb_ws_json_request_t *request)
{
    *request = (sb_ws_json_request_t) { 0 };
    json_t *root = json_loadb(text, length, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    if (!root)
        return SB_WS_JSON_NOT_JSON;
    json_t *id = json_is_object(root) ? json_object_get(root, "id") : NULL;
    request->id = id ? json_incref(id) : json_null();
    sb_ws_json_kind_t kind;
    const json_t *command = json_object_get(root, "cmd");
    const json_t *args = json_object_get(root, "args");
    size_t argc = args ? json_array_size(args) : 0;
    if (!json_is_object(root))
        kind = bad_request(request, "a request is a JSON object: {\"id\":1,\"cmd\":\"echo\",\"args\":[\"hi\"]}");
    else if (!json_is_string(command) || json_string_length(command) == 0
             || strlen(json_string_value(command)) != json_string_length(command))
        kind = bad_request(request, "cmd must be a non-empty string");
    else if (args && !json_is_array(args))
        kind = bad_request(request, "args must be an array");
    else if (argc >= MAX_ARGS)
        kind = bad_request(request, "too many args");
    else {
        kind = SB_WS_JSON_REQUEST;
        request->argv = calloc(argc + 2, sizeof *request->argv);
        request->argv[0] = strdup(json_string_value(command));
        request->argc = 1;
        for (size_t i = 0; i < argc && kind == SB_WS_JSON_REQUEST; i++) {
            char *argument = argument_text(json_array_get(args, i));
            if (!argument)
                kind = bad_request(request, "each arg must be a string, number or boolean");
            else
                request->argv[request->argc++] = argument;
        }
    }
    json_decref(root);
    return kind;
}

/* A JSON string of `text`; bytes that are not UTF-8 (a command's output
 * may hold any) become U+FFFD, so every message is valid text. */
static json_t *text_value(const char *text)
{
    char *repaired = sb_utf8_repair(text ? text : "");
    json_t *value = json_string(repaired);
    free(repaired);
    return value;
}

static char *dump(json_t *message)
{
    char *text = json_dumps(message, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(message);
    return text;
}

char *sb_ws_json_reply(json_t *id, const char *status, const char *text)
{
    json_t *reply = json_object();
    json_object_set(reply, "id", id ? id : json_null());
    bool ok = !status || strncmp(status, "ERR", 3) != 0;
    json_object_set_new(reply, "ok", json_boolean(ok));
    if (ok)
        json_object_set_new(reply, "result", text_value(text));
    else {
        const char *code = status[3] == ' ' ? status + 4 : "error";
        json_object_set_new(reply, "error", json_pack("{s:o, s:o}", "code", text_value(code),
                                                      "message", text_value(text)));
    }
    return dump(reply);
}

char *sb_ws_json_event(const char *topic, const char *payload, bool retained)
{
    json_t *data = json_loads(payload, JSON_DECODE_ANY, NULL);
    if (!data)
        data = text_value(payload);
    json_t *event = json_pack("{s:o, s:o}", "event", text_value(topic), "data", data);
    if (retained)
        json_object_set_new(event, "retained", json_true());
    return dump(event);
}

char *sb_ws_json_message(const char *from, const char *text)
{
    return dump(json_pack("{s:{s:o, s:o}}", "msg", "from", text_value(from), "text",
                          text_value(text)));
}

char *sb_ws_json_welcome(const char *client_id)
{
    return dump(json_pack("{s:s, s:{s:o}}", "event", "$welcome", "data", "client",
                          text_value(client_id)));
}
