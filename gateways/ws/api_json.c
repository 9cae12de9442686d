/* api_json.c — the HTTP API's JSON bodies and status codes (see api_json.h).
 *
 * The list-like answers (topics, clients, devices) are read back from the
 * router's one-line replies, the same text a TCP client gets, so the API
 * adds no command of its own to the hub. */
#include "api_json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmdline.h"
#include "ws_json.h"

static const struct {
    const char *code;
    int status;
} s_statuses[] = {
    { "bad-args", 400 },        { "bad-request", 400 },     { "too-long", 413 },
    { "unauthorized", 403 },    { "unknown-command", 404 }, { "no-such-client", 404 },
    { "no-such-device", 404 },  { "not-found", 404 },       { "method-not-allowed", 405 },
    { "insufficient-funds", 409 },
    { "busy", 503 },            { "unavailable", 503 },     { "no-service", 503 },
    { "not-connected", 503 },   { "timeout", 504 },         { "worker-died", 502 },
    { "exit-status", 502 },     { "internal", 500 },
};

int sb_api_status_of(const char *code)
{
    for (size_t i = 0; i < sizeof s_statuses / sizeof s_statuses[0]; i++)
        if (strcmp(s_statuses[i].code, code) == 0)
            return s_statuses[i].status;
    return 500;
}

const char *sb_api_code_of_status(int status)
{
    switch (status) {
    case 400: return "bad-request";
    case 401: return "unauthorized";
    case 403: return "unauthorized";
    case 404: return "not-found";
    case 405: return "method-not-allowed";
    case 408: return "timeout";
    case 413: return "too-long";
    case 415: return "bad-request";
    case 421: return "misdirected";
    case 429: return "busy";
    case 431: return "too-long";
    case 503: return "busy";
    default: return "internal";
    }
}

/* A string value; text that is not UTF-8 (a command's raw output) is
 * carried with its bad bytes replaced, as WebSocket replies do. */
static json_t *text_value(const char *text)
{
    json_t *value = json_string(text);
    return value ? value : json_string("(output is not UTF-8)");
}

static char *dump(json_t *value)
{
    char *text = json_dumps(value, JSON_COMPACT);
    json_decref(value);
    return text;
}

char *sb_api_error_body(const char *code, const char *message)
{
    return dump(json_pack("{s:{s:o, s:o}}", "error", "code", text_value(code), "message",
                          text_value(message ? message : "")));
}

/* `N TOPIC VALUE ... [...]` (words quoted as the line protocol reads them). */
static json_t *topics_of(const sb_cmdline_t *words)
{
    json_t *list = json_array();
    size_t i = 1;
    for (; i + 1 < words->argc; i += 2)
        json_array_append_new(list, json_pack("{s:o, s:o}", "topic", text_value(words->argv[i]),
                                              "payload", text_value(words->argv[i + 1])));
    bool cut = i < words->argc && strcmp(words->argv[i], "...") == 0;
    return json_pack("{s:I, s:o, s:b}", "count", (json_int_t) json_array_size(list), "topics",
                     list, "truncated", cut);
}

/* `ID ID ...` */
static json_t *clients_of(const sb_cmdline_t *words)
{
    json_t *list = json_array();
    for (size_t i = 0; i < words->argc; i++)
        json_array_append_new(list, text_value(words->argv[i]));
    return json_pack("{s:o}", "clients", list);
}

/* `NAME=STATE ...` */
static json_t *devices_of(const sb_cmdline_t *words)
{
    json_t *map = json_object();
    for (size_t i = 0; i < words->argc; i++) {
        char *equals = strchr(words->argv[i], '=');
        if (!equals)
            continue;
        *equals = '\0';
        json_object_set_new(map, words->argv[i], text_value(equals + 1));
    }
    return json_pack("{s:o}", "devices", map);
}

/* `N MS:VALUE ...`, oldest first (the broker's `history`); VALUE a number. */
static json_t *history_of(const sb_cmdline_t *words)
{
    json_t *list = json_array();
    for (size_t i = 1; i < words->argc; i++) {
        char *colon = strchr(words->argv[i], ':'), *end;
        if (!colon)
            continue;
        *colon = '\0';
        long long at = strtoll(words->argv[i], &end, 10);
        double value = strtod(colon + 1, NULL);
        if (*end == '\0')
            json_array_append_new(list, json_pack("{s:I, s:f}", "t", (json_int_t) at, "v", value));
    }
    return json_pack("{s:I, s:o}", "count", (json_int_t) json_array_size(list), "points", list);
}

/* A list answer's text as JSON; NULL when it cannot be read. */
static json_t *listing_of(sb_api_kind_t kind, const char *text)
{
    /* A placeholder command word, so that an empty list parses too. */
    size_t length = strlen(text);
    char *line = malloc(length + 3);
    snprintf(line, length + 3, "- %s", text);
    sb_cmdline_status_t status;
    sb_cmdline_t *words = sb_cmdline_parse(line, length + 2, &status, NULL);
    free(line);
    if (!words)
        return NULL;
    sb_cmdline_t rest = { NULL, words->argc - 1, words->argv + 1 };
    json_t *value = kind == SB_API_TOPICS    ? topics_of(&rest)
                    : kind == SB_API_CLIENTS ? clients_of(&rest)
                    : kind == SB_API_HISTORY ? history_of(&rest)
                                             : devices_of(&rest);
    sb_cmdline_destroy(&words);
    return value;
}

char *sb_api_result(sb_api_kind_t kind, json_t *id, const char *status, const char *text,
                    int *http_status)
{
    text = text ? text : "";
    bool ok = !status || strcmp(status, "OK") == 0;
    const char *code = !ok && strncmp(status, "ERR ", 4) == 0 ? status + 4 : "internal";
    *http_status = ok ? 200 : sb_api_status_of(code);
    if (kind == SB_API_COMMAND)
        return sb_ws_json_reply(id, status, text);
    if (!ok)
        return sb_api_error_body(code, text);
    if (kind == SB_API_PUBLISH)
        return dump(json_pack("{s:b}", "ok", 1));
    json_t *value = listing_of(kind, text);
    if (value)
        return dump(value);
    *http_status = 500;
    return sb_api_error_body("internal", "the hub's answer could not be read");
}
