/* test_envelope.c — unit tests for the envelope codec (common/envelope.c):
 * round trips of every type, the required-field and type rules in both
 * directions, and hostile or malformed input that must fail cleanly. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <msgpack.h>

#include "envelope.h"

/* ------------------------------------------------------------------ */
/* Helpers                                                              */

static void assert_same_str(const char *a, const char *b)
{
    if (a == NULL || b == NULL)
        assert_ptr_equal(a, b);
    else
        assert_string_equal(a, b);
}

static void assert_same_envelope(const sb_envelope_t *a, const sb_envelope_t *b)
{
    assert_int_equal(a->type, b->type);
    assert_true(a->id == b->id);
    assert_same_str(a->service, b->service);
    assert_same_str(a->command, b->command);
    assert_int_equal(a->argc, b->argc);
    for (size_t i = 0; i < a->argc; i++)
        assert_string_equal(a->argv[i], b->argv[i]);
    assert_same_str(a->client, b->client);
    assert_same_str(a->token, b->token);
    assert_int_equal(a->timeout_ms, b->timeout_ms);
    assert_int_equal(a->retry, b->retry);
    if (a->type == SB_ENVELOPE_REPLY)
        assert_int_equal(a->ok, b->ok);
    assert_same_str(a->code, b->code);
    assert_same_str(a->text, b->text);
    assert_same_str(a->topic, b->topic);
    assert_same_str(a->data, b->data);
    assert_int_equal(a->retain, b->retain);
    assert_int_equal(a->published_retain, b->published_retain);
    assert_int_equal(a->qos, b->qos);
    assert_same_str(a->from, b->from);
    assert_same_str(a->mqtt, b->mqtt);
    assert_true(a->expiry_s == b->expiry_s);
}

/* Encodes, decodes, checks the result equals the input, returns it. */
static sb_envelope_t *round_trip(const sb_envelope_t *in)
{
    size_t size = 0;
    uint8_t *data = sb_envelope_encode(in, &size);
    assert_non_null(data);
    assert_true(size > 0 && size <= SB_ENVELOPE_MAX_SIZE);
    const char *err = "unset";
    sb_envelope_t *out = sb_envelope_decode(data, size, &err);
    free(data);
    if (!out)
        fail_msg("decode failed: %s", err);
    assert_null(err);
    assert_same_envelope(in, out);
    return out;
}

static void expect_decode_error(const uint8_t *data, size_t size, const char *error)
{
    const char *err = NULL;
    sb_envelope_t *env = sb_envelope_decode(data, size, &err);
    if (env)
        sb_envelope_destroy(&env);
    assert_null(env);
    assert_non_null(err);
    assert_string_equal(err, error);
}

/* Hand-built msgpack, for what sb_envelope_encode would never produce. */
typedef struct {
    msgpack_sbuffer buf;
    msgpack_packer pk;
} mp_t;

static void mp_init(mp_t *m)
{
    msgpack_sbuffer_init(&m->buf);
    msgpack_packer_init(&m->pk, &m->buf, msgpack_sbuffer_write);
}

static void mp_str(msgpack_packer *pk, const char *s)
{
    msgpack_pack_str_with_body(pk, s, strlen(s));
}

static const uint8_t *mp_data(const mp_t *m)
{
    return (const uint8_t *) m->buf.data;
}

/* A map is described as entries whose values are packed by callbacks, so a
 * test can take a valid envelope and change, drop or add one key. */
typedef void (*value_fn)(msgpack_packer *pk);
typedef struct {
    const char *key;
    value_fn value;
} entry_t;

#define ENTRIES(a) (a), (sizeof(a) / sizeof((a)[0]))

/* Packs `base` with `key` replaced by `value` (appended if absent; dropped
 * if `value` is NULL). */
static void build(mp_t *m, const entry_t *base, size_t n, const char *key, value_fn value)
{
    bool found = false;
    size_t count = 0;
    for (size_t i = 0; i < n; i++) {
        bool match = key && strcmp(base[i].key, key) == 0;
        found |= match;
        count += !match || value;
    }
    if (key && !found && value)
        count++;

    mp_init(m);
    msgpack_pack_map(&m->pk, count);
    for (size_t i = 0; i < n; i++) {
        bool match = key && strcmp(base[i].key, key) == 0;
        if (match && !value)
            continue;
        mp_str(&m->pk, base[i].key);
        (match ? value : base[i].value)(&m->pk);
    }
    if (key && !found && value) {
        mp_str(&m->pk, key);
        value(&m->pk);
    }
}

static void v_one(msgpack_packer *pk) { msgpack_pack_uint8(pk, 1); }
static void v_two(msgpack_packer *pk) { msgpack_pack_uint8(pk, 2); }
static void v_int8_one(msgpack_packer *pk) { msgpack_pack_int8(pk, 1); }
static void t_request(msgpack_packer *pk) { mp_str(pk, "request"); }
static void t_reply(msgpack_packer *pk) { mp_str(pk, "reply"); }
static void t_ready(msgpack_packer *pk) { mp_str(pk, "ready"); }
static void t_heartbeat(msgpack_packer *pk) { mp_str(pk, "heartbeat"); }
static void t_bogus(msgpack_packer *pk) { mp_str(pk, "requestx"); }
static void id_42(msgpack_packer *pk) { msgpack_pack_uint64(pk, 42); }
static void id_zero(msgpack_packer *pk) { msgpack_pack_uint64(pk, 0); }
static void id_int64(msgpack_packer *pk) { msgpack_pack_int64(pk, INT64_MAX); }
static void svc_echo(msgpack_packer *pk) { mp_str(pk, "echo"); }
static void cmd_say(msgpack_packer *pk) { mp_str(pk, "say"); }
static void cli_c1(msgpack_packer *pk) { mp_str(pk, "c1"); }
static void tmo_1000(msgpack_packer *pk) { msgpack_pack_uint32(pk, 1000); }
static void tmo_over(msgpack_packer *pk) { msgpack_pack_uint64(pk, UINT64_C(1) << 32); }
static void ok_false(msgpack_packer *pk) { msgpack_pack_false(pk); }
static void code_fail(msgpack_packer *pk) { mp_str(pk, "failed"); }
static void text_hi(msgpack_packer *pk) { mp_str(pk, "hi"); }
static void args_ab(msgpack_packer *pk)
{
    msgpack_pack_array(pk, 2);
    mp_str(pk, "a");
    mp_str(pk, "b");
}

static void w_str(msgpack_packer *pk) { mp_str(pk, "x"); }
static void w_three(msgpack_packer *pk) { msgpack_pack_uint8(pk, 3); }
static void w_uint(msgpack_packer *pk) { msgpack_pack_uint8(pk, 5); }
static void w_neg(msgpack_packer *pk) { msgpack_pack_int8(pk, -1); }
static void w_nil(msgpack_packer *pk) { msgpack_pack_nil(pk); }
static void w_true(msgpack_packer *pk) { msgpack_pack_true(pk); }
static void w_float(msgpack_packer *pk) { msgpack_pack_double(pk, 1.0); }
static void w_map(msgpack_packer *pk) { msgpack_pack_map(pk, 0); }
static void w_bin(msgpack_packer *pk) { msgpack_pack_bin_with_body(pk, "abc", 3); }
static void w_nul_str(msgpack_packer *pk) { msgpack_pack_str_with_body(pk, "a\0b", 3); }
static void w_args_int(msgpack_packer *pk)
{
    msgpack_pack_array(pk, 2);
    mp_str(pk, "a");
    msgpack_pack_uint8(pk, 1);
}
static void w_args_nul(msgpack_packer *pk)
{
    msgpack_pack_array(pk, 1);
    msgpack_pack_str_with_body(pk, "a\0", 2);
}
static void w_args_1025(msgpack_packer *pk)
{
    msgpack_pack_array(pk, SB_ENVELOPE_MAX_ARGS + 1);
    for (int i = 0; i < SB_ENVELOPE_MAX_ARGS + 1; i++)
        mp_str(pk, "x");
}

static const entry_t request_base[] = {
    { "v", v_one }, { "t", t_request }, { "id", id_42 }, { "svc", svc_echo },
    { "cmd", cmd_say }, { "args", args_ab }, { "cli", cli_c1 }, { "tmo", tmo_1000 },
};
static const entry_t reply_base[] = {
    { "v", v_one }, { "t", t_reply }, { "id", id_42 }, { "ok", ok_false },
    { "code", code_fail }, { "text", text_hi },
};
static const entry_t ready_base[] = { { "v", v_one }, { "t", t_ready }, { "svc", svc_echo } };
static const entry_t heartbeat_base[] = { { "v", v_one }, { "t", t_heartbeat } };

/* ------------------------------------------------------------------ */
/* Round trips                                                          */

static void test_type_names(void **state)
{
    (void) state;
    assert_string_equal(sb_envelope_type_name(SB_ENVELOPE_REQUEST), "request");
    assert_string_equal(sb_envelope_type_name(SB_ENVELOPE_REPLY), "reply");
    assert_string_equal(sb_envelope_type_name(SB_ENVELOPE_READY), "ready");
    assert_string_equal(sb_envelope_type_name(SB_ENVELOPE_HEARTBEAT), "heartbeat");
    assert_string_equal(sb_envelope_type_name(SB_ENVELOPE_DISCONNECT), "disconnect");
    assert_string_equal(sb_envelope_type_name((sb_envelope_type_t) 0), "unknown");
    assert_string_equal(sb_envelope_type_name((sb_envelope_type_t) 99), "unknown");
}

static void test_round_trip_request(void **state)
{
    (void) state;
    char *argv[] = { "two words", "", "h\xc3\xa9llo \xe2\x9c\x93", "  ", "\"quoted\"" };
    sb_envelope_t in = {
        .type = SB_ENVELOPE_REQUEST, .id = UINT64_MAX, .service = "lights",
        .command = "set", .argc = 5, .argv = argv, .client = "tcp:1.2.3.4:5",
        .token = "kitchen-panel.2_b", .timeout_ms = UINT32_MAX, .retry = true,
    };
    sb_envelope_t *out = round_trip(&in);
    assert_null(out->argv[out->argc]);  /* NULL-terminated */
    sb_envelope_destroy(&out);
    assert_null(out);

    /* Optional fields absent stay absent. */
    sb_envelope_t minimal = { .type = SB_ENVELOPE_REQUEST, .id = 1, .service = "s", .command = "" };
    out = round_trip(&minimal);
    assert_null(out->argv);
    assert_null(out->client);
    assert_null(out->token);
    sb_envelope_destroy(&out);
}

static void test_round_trip_reply(void **state)
{
    (void) state;
    sb_envelope_t ok = { .type = SB_ENVELOPE_REPLY, .id = 7, .ok = true, .text = "done \xe2\x9c\x93" };
    sb_envelope_t *out = round_trip(&ok);
    assert_true(out->ok);
    sb_envelope_destroy(&out);

    sb_envelope_t err = { .type = SB_ENVELOPE_REPLY, .id = 8, .ok = false,
                          .code = "no-service", .text = "no provider for foo" };
    out = round_trip(&err);
    assert_false(out->ok);
    sb_envelope_destroy(&out);

    /* ok=true with nothing else: "ok" is always sent for replies. */
    sb_envelope_t bare = { .type = SB_ENVELOPE_REPLY, .id = 9, .ok = true };
    out = round_trip(&bare);
    sb_envelope_destroy(&out);
}

static void test_round_trip_others(void **state)
{
    (void) state;
    sb_envelope_t ready = { .type = SB_ENVELOPE_READY, .service = "thermo" };
    sb_envelope_t heartbeat = { .type = SB_ENVELOPE_HEARTBEAT };
    sb_envelope_t disconnect = { .type = SB_ENVELOPE_DISCONNECT };
    sb_envelope_t *out = round_trip(&ready);
    sb_envelope_destroy(&out);
    out = round_trip(&heartbeat);
    sb_envelope_destroy(&out);
    out = round_trip(&disconnect);
    sb_envelope_destroy(&out);
}

/* retain and qos ride on publish and event; absent they read as false and 0. */
static void test_round_trip_retain_qos(void **state)
{
    (void) state;
    sb_envelope_t publish = { .type = SB_ENVELOPE_PUBLISH, .topic = "home/x", .data = "1",
                              .retain = true, .qos = 2 };
    sb_envelope_t *out = round_trip(&publish);
    assert_null(out->from);
    assert_null(out->mqtt);
    sb_envelope_destroy(&out);
    /* the publisher and its MQTT 5 properties ride along too (No Local, user properties) */
    sb_envelope_t mqtt = { .type = SB_ENVELOPE_PUBLISH, .topic = "home/x", .data = "1",
                           .from = "mqtt-3", .mqtt = "30080001720226000000" };
    out = round_trip(&mqtt);
    sb_envelope_destroy(&out);
    /* with its Message Expiry: a retained value's, left, on a retained delivery */
    sb_envelope_t event = { .type = SB_ENVELOPE_EVENT, .topic = "home/x", .data = "1",
                            .client = "tcp-1", .retain = true, .published_retain = true,
                            .qos = 1, .mqtt = "30080001720226000000", .expiry_s = 4294967295u };
    out = round_trip(&event);
    sb_envelope_destroy(&out);
    sb_envelope_t plain = { .type = SB_ENVELOPE_EVENT, .topic = "home/x" };
    out = round_trip(&plain);
    assert_false(out->retain);
    assert_int_equal(out->qos, 0);
    assert_int_equal(out->expiry_s, 0);
    sb_envelope_destroy(&out);
    publish.qos = SB_ENVELOPE_MAX_QOS + 1;
    assert_null(sb_envelope_encode(&publish, NULL));
}

static void test_max_args(void **state)
{
    (void) state;
    char *argv[SB_ENVELOPE_MAX_ARGS + 1];
    char buf[SB_ENVELOPE_MAX_ARGS + 1][8];
    for (int i = 0; i <= SB_ENVELOPE_MAX_ARGS; i++) {
        snprintf(buf[i], sizeof buf[i], "%d", i);
        argv[i] = buf[i];
    }
    sb_envelope_t in = { .type = SB_ENVELOPE_REQUEST, .id = 1, .service = "s",
                         .command = "c", .argc = SB_ENVELOPE_MAX_ARGS, .argv = argv };
    sb_envelope_t *out = round_trip(&in);
    assert_string_equal(out->argv[SB_ENVELOPE_MAX_ARGS - 1], "1023");
    sb_envelope_destroy(&out);

    in.argc = SB_ENVELOPE_MAX_ARGS + 1;
    assert_null(sb_envelope_encode(&in, NULL));

    mp_t m;
    build(&m, ENTRIES(request_base), "args", w_args_1025);
    expect_decode_error(mp_data(&m), m.buf.size, "too many args");
    msgpack_sbuffer_destroy(&m.buf);
}

/* The largest envelope that fits exactly is accepted; one byte more is not. */
static void test_size_limit(void **state)
{
    (void) state;
    char *text = malloc(SB_ENVELOPE_MAX_SIZE + 2);
    assert_non_null(text);
    memset(text, 'x', SB_ENVELOPE_MAX_SIZE + 1);
    text[SB_ENVELOPE_MAX_SIZE + 1] = '\0';
    sb_envelope_t in = { .type = SB_ENVELOPE_HEARTBEAT, .text = text };
    assert_null(sb_envelope_encode(&in, NULL));

    /* Shrink the text by the overhead so the whole is exactly the limit. */
    size_t len = SB_ENVELOPE_MAX_SIZE - 100;
    text[len] = '\0';
    size_t size;
    uint8_t *data = sb_envelope_encode(&in, &size);
    assert_non_null(data);
    free(data);
    text[len] = 'x';
    len += SB_ENVELOPE_MAX_SIZE - size;
    text[len] = '\0';
    data = sb_envelope_encode(&in, &size);
    assert_non_null(data);
    assert_int_equal(size, SB_ENVELOPE_MAX_SIZE);
    sb_envelope_t *out = sb_envelope_decode(data, size, NULL);
    assert_non_null(out);
    assert_int_equal(strlen(out->text), len);
    sb_envelope_destroy(&out);
    free(data);

    text[len] = 'x';
    text[len + 1] = '\0';
    assert_null(sb_envelope_encode(&in, NULL));
    free(text);

    uint8_t *big = calloc(1, SB_ENVELOPE_MAX_SIZE + 1);
    assert_non_null(big);
    expect_decode_error(big, SB_ENVELOPE_MAX_SIZE + 1, "too large");
    free(big);
}

/* ------------------------------------------------------------------ */
/* Encoder refusals                                                     */

static void test_encode_refuses_incomplete(void **state)
{
    (void) state;
    char *argv_with_null[] = { "a", NULL };
    const sb_envelope_t bad[] = {
        { .type = SB_ENVELOPE_REQUEST, .id = 1, .service = "s" },                 /* no cmd */
        { .type = SB_ENVELOPE_REQUEST, .id = 1, .command = "c" },                 /* no svc */
        { .type = SB_ENVELOPE_REQUEST, .service = "s", .command = "c" },          /* id 0 */
        { .type = SB_ENVELOPE_REQUEST, .id = 1, .service = "s", .command = "c",
          .argc = 1 },                                                            /* argv NULL */
        { .type = SB_ENVELOPE_REQUEST, .id = 1, .service = "s", .command = "c",
          .argc = 2, .argv = argv_with_null },
        { .type = SB_ENVELOPE_REPLY, .ok = true },                                /* id 0 */
        { .type = SB_ENVELOPE_REPLY, .id = 1, .ok = false, .text = "t" },         /* no code */
        { .type = SB_ENVELOPE_READY },                                            /* no svc */
        { .type = (sb_envelope_type_t) 0 },
        { .type = (sb_envelope_type_t) 6 },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        size_t size = 12345;
        uint8_t *data = sb_envelope_encode(&bad[i], &size);
        if (data)
            fail_msg("case %zu encoded", i);
        assert_int_equal(size, 12345);
    }
    assert_null(sb_envelope_encode(NULL, NULL));
}

/* A topic or filter that the gateways refuse is refused on the wire too,
 * in both directions, so the broker drops it (and counts it as malformed). */
static void expect_topic_refused(sb_envelope_type_t type, const char *topic)
{
    sb_envelope_t env = { .type = type, .topic = (char *) topic, .data = "x" };
    if (sb_envelope_encode(&env, NULL))
        fail_msg("%s topic '%s' encoded", sb_envelope_type_name(type), topic);
    mp_t m;
    mp_init(&m);
    msgpack_pack_map(&m.pk, 4);
    mp_str(&m.pk, "v");
    msgpack_pack_uint8(&m.pk, 1);
    mp_str(&m.pk, "t");
    mp_str(&m.pk, sb_envelope_type_name(type));
    mp_str(&m.pk, "topic");
    mp_str(&m.pk, topic);
    mp_str(&m.pk, "data");
    mp_str(&m.pk, "x");
    expect_decode_error(mp_data(&m), m.buf.size, "bad field topic");
    msgpack_sbuffer_destroy(&m.buf);
}

static void test_topics_checked_on_the_wire(void **state)
{
    (void) state;
    static const sb_envelope_type_t types[] = {
        SB_ENVELOPE_PUBLISH, SB_ENVELOPE_EVENT, SB_ENVELOPE_SUBSCRIBE, SB_ENVELOPE_UNSUBSCRIBE,
    };
    static const char *const bad[] = {
        "home/lamp\nEVENT x y", "a\rb", "a\x01b", "a\x7f", "a\tb", "caf\xc3", "\xff",
    };
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++)
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
            expect_topic_refused(types[t], bad[i]);
    expect_topic_refused(SB_ENVELOPE_PUBLISH, "home/#");
    expect_topic_refused(SB_ENVELOPE_SUBSCRIBE, "home/#/temp");
    sb_envelope_t subscribe = { .type = SB_ENVELOPE_SUBSCRIBE, .topic = "home/+/temp" };
    sb_envelope_t *out = round_trip(&subscribe);
    sb_envelope_destroy(&out);
    sb_envelope_t publish = { .type = SB_ENVELOPE_PUBLISH, .topic = "caf\xc3\xa9/temp", .data = "21" };
    out = round_trip(&publish);
    sb_envelope_destroy(&out);
    sb_envelope_t spaced = { .type = SB_ENVELOPE_EVENT, .topic = "zigbee2mqtt/Living Room Lamp" };
    out = round_trip(&spaced);
    assert_string_equal(out->topic, "zigbee2mqtt/Living Room Lamp");
    sb_envelope_destroy(&out);
    sb_envelope_t spaced_filter = { .type = SB_ENVELOPE_SUBSCRIBE, .topic = "zigbee2mqtt/Living Room/#" };
    out = round_trip(&spaced_filter);
    sb_envelope_destroy(&out);
}

/* ------------------------------------------------------------------ */
/* Decoder refusals of well-formed msgpack                              */

typedef struct {
    const entry_t *base;
    size_t n;
    const char *key;
    value_fn value;   /* NULL: drop the key */
    const char *error;
} field_case_t;

#define REQ ENTRIES(request_base)
#define REP ENTRIES(reply_base)
#define RDY ENTRIES(ready_base)
#define HB ENTRIES(heartbeat_base)

static const field_case_t field_cases[] = {
    /* missing required fields */
    { REQ, "v", NULL, "missing field v" },
    { REQ, "t", NULL, "missing field t" },
    { REQ, "id", NULL, "missing field id" },
    { REQ, "svc", NULL, "missing field svc" },
    { REQ, "cmd", NULL, "missing field cmd" },
    { REP, "id", NULL, "missing field id" },
    { REP, "ok", NULL, "missing field ok" },
    { REP, "code", NULL, "missing field code" },
    { RDY, "svc", NULL, "missing field svc" },
    /* version */
    { REQ, "v", v_two, "unsupported version" },
    { REQ, "v", w_str, "bad field v" },
    { REQ, "v", w_neg, "bad field v" },
    /* type */
    { REQ, "t", t_bogus, "unknown type" },
    { REQ, "t", w_uint, "bad field t" },
    /* wrong types for known keys */
    { REQ, "id", w_str, "bad field id" },
    { REQ, "id", w_neg, "bad field id" },
    { REQ, "id", w_float, "bad field id" },
    { REQ, "id", id_zero, "bad field id" },
    { REQ, "svc", w_uint, "bad field svc" },
    { REQ, "svc", w_bin, "bad field svc" },
    { REQ, "svc", w_nil, "bad field svc" },
    { REQ, "cmd", w_map, "bad field cmd" },
    { REQ, "args", w_str, "bad field args" },
    { REQ, "args", w_args_int, "bad field args" },
    { REQ, "cli", w_true, "bad field cli" },
    { REQ, "tmo", w_str, "bad field tmo" },
    { REQ, "tmo", tmo_over, "bad field tmo" },
    { REQ, "retry", w_str, "bad field retry" },
    { REQ, "retain", w_uint, "bad field retain" },
    { REQ, "pubret", w_str, "bad field pubret" },
    { REQ, "qos", w_three, "bad field qos" },
    { REQ, "qos", w_neg, "bad field qos" },
    { REQ, "qos", w_true, "bad field qos" },
    { REQ, "exp", w_str, "bad field exp" },
    { REQ, "exp", tmo_over, "bad field exp" },
    { REQ, "exp", w_neg, "bad field exp" },
    { REP, "ok", w_uint, "bad field ok" },
    { REP, "ok", w_nil, "bad field ok" },
    { REP, "code", w_uint, "bad field code" },
    { REP, "text", w_true, "bad field text" },
    /* embedded NUL */
    { REQ, "svc", w_nul_str, "bad field svc" },
    { REQ, "cli", w_nul_str, "bad field cli" },
    { REP, "text", w_nul_str, "bad field text" },
    { REQ, "args", w_args_nul, "bad field args" },
    /* known keys are checked whatever the type */
    { HB, "id", w_str, "bad field id" },
};

static void test_decode_field_errors(void **state)
{
    (void) state;
    for (size_t i = 0; i < sizeof field_cases / sizeof field_cases[0]; i++) {
        const field_case_t *c = &field_cases[i];
        mp_t m;
        build(&m, c->base, c->n, c->key, c->value);
        const char *err = NULL;
        sb_envelope_t *env = sb_envelope_decode(mp_data(&m), m.buf.size, &err);
        msgpack_sbuffer_destroy(&m.buf);
        if (env || !err || strcmp(err, c->error) != 0)
            fail_msg("case %zu (%s): got %s, want %s", i, c->key, env ? "success" : err, c->error);
    }
}

/* The unmodified bases decode, and lenient-but-valid encodings are taken. */
static void test_decode_bases(void **state)
{
    (void) state;
    const entry_t *bases[] = { request_base, reply_base, ready_base, heartbeat_base };
    size_t counts[] = { 8, 6, 3, 2 };
    for (size_t i = 0; i < 4; i++) {
        mp_t m;
        build(&m, bases[i], counts[i], NULL, NULL);
        sb_envelope_t *env = sb_envelope_decode(mp_data(&m), m.buf.size, NULL);
        msgpack_sbuffer_destroy(&m.buf);
        assert_non_null(env);
        sb_envelope_destroy(&env);
    }

    mp_t m;
    build(&m, REQ, "v", v_int8_one);
    sb_envelope_t *env = sb_envelope_decode(mp_data(&m), m.buf.size, NULL);
    msgpack_sbuffer_destroy(&m.buf);
    assert_non_null(env);
    sb_envelope_destroy(&env);

    build(&m, REQ, "id", id_int64);
    env = sb_envelope_decode(mp_data(&m), m.buf.size, NULL);
    msgpack_sbuffer_destroy(&m.buf);
    assert_non_null(env);
    assert_true(env->id == INT64_MAX);
    assert_int_equal(env->argc, 2);
    assert_string_equal(env->argv[1], "b");
    assert_int_equal(env->timeout_ms, 1000);
    assert_string_equal(env->client, "c1");
    sb_envelope_destroy(&env);
}

/* Every msgpack type may appear under an unknown key. */
static void w_everything(msgpack_packer *pk)
{
    msgpack_pack_array(pk, 14);
    msgpack_pack_nil(pk);
    msgpack_pack_false(pk);
    msgpack_pack_int64(pk, INT64_MIN);
    msgpack_pack_int8(pk, -5);
    msgpack_pack_uint64(pk, UINT64_MAX);
    msgpack_pack_float(pk, 1.5f);
    msgpack_pack_double(pk, 2.5);
    msgpack_pack_bin_with_body(pk, "\0\1", 2);
    msgpack_pack_ext_with_body(pk, "abcd", 4, 7);     /* fixext 4 */
    msgpack_pack_ext_with_body(pk, "abc", 3, -1);     /* ext 8 */
    msgpack_pack_str_with_body(pk, "with\0nul", 8);   /* only known keys forbid NUL */
    msgpack_pack_map(pk, 1);
    msgpack_pack_uint8(pk, 1);                        /* non-string key inside */
    msgpack_pack_array(pk, 0);
    msgpack_pack_array(pk, 1);
    msgpack_pack_array(pk, 1);
    msgpack_pack_array(pk, 0);
    msgpack_pack_map(pk, 0);
}

static void test_unknown_keys_ignored(void **state)
{
    (void) state;
    mp_t m;
    build(&m, REQ, "future", w_everything);
    sb_envelope_t *env = sb_envelope_decode(mp_data(&m), m.buf.size, NULL);
    msgpack_sbuffer_destroy(&m.buf);
    assert_non_null(env);
    assert_string_equal(env->command, "say");
    sb_envelope_destroy(&env);
}

/* A future version may change what fields mean, so "v" is judged first. */
static void test_version_checked_first(void **state)
{
    (void) state;
    mp_t m;
    mp_init(&m);
    msgpack_pack_map(&m.pk, 3);
    mp_str(&m.pk, "id");
    mp_str(&m.pk, "now a string");
    mp_str(&m.pk, "t");
    mp_str(&m.pk, "something new");
    mp_str(&m.pk, "v");
    msgpack_pack_uint8(&m.pk, 2);
    expect_decode_error(mp_data(&m), m.buf.size, "unsupported version");
    msgpack_sbuffer_destroy(&m.buf);
}

static void test_duplicate_and_bad_keys(void **state)
{
    (void) state;
    mp_t m;

    /* Duplicate "svc": which one wins would be ambiguous (and would leak). */
    mp_init(&m);
    msgpack_pack_map(&m.pk, 4);
    mp_str(&m.pk, "v");   v_one(&m.pk);
    mp_str(&m.pk, "t");   t_ready(&m.pk);
    mp_str(&m.pk, "svc"); svc_echo(&m.pk);
    mp_str(&m.pk, "svc"); svc_echo(&m.pk);
    expect_decode_error(mp_data(&m), m.buf.size, "duplicate field svc");
    msgpack_sbuffer_destroy(&m.buf);

    /* Duplicate "v", even with a valid first value. */
    mp_init(&m);
    msgpack_pack_map(&m.pk, 3);
    mp_str(&m.pk, "v"); v_one(&m.pk);
    mp_str(&m.pk, "t"); t_heartbeat(&m.pk);
    mp_str(&m.pk, "v"); v_two(&m.pk);
    expect_decode_error(mp_data(&m), m.buf.size, "duplicate field v");
    msgpack_sbuffer_destroy(&m.buf);

    /* A non-string key. */
    mp_init(&m);
    msgpack_pack_map(&m.pk, 3);
    mp_str(&m.pk, "v"); v_one(&m.pk);
    mp_str(&m.pk, "t"); t_heartbeat(&m.pk);
    msgpack_pack_uint8(&m.pk, 1); v_one(&m.pk);
    expect_decode_error(mp_data(&m), m.buf.size, "bad key");
    msgpack_sbuffer_destroy(&m.buf);
}

static void test_not_a_map(void **state)
{
    (void) state;
    const uint8_t array[] = { 0x92, 0x01, 0x02 };
    const uint8_t scalar[] = { 0x01 };
    const uint8_t string[] = { 0xa1, 'v' };
    expect_decode_error(array, sizeof array, "not a map");
    expect_decode_error(scalar, sizeof scalar, "not a map");
    expect_decode_error(string, sizeof string, "not a map");
    expect_decode_error(array, 0, "bad msgpack");
    expect_decode_error(NULL, 0, "bad msgpack");
    assert_null(sb_envelope_decode(array, 0, NULL));  /* error_out optional */
}

/* ------------------------------------------------------------------ */
/* Malformed and hostile bytes                                          */

static void expect_bytes_error(const uint8_t *bytes, size_t size, const char *error)
{
    /* Exactly-sized heap copy, so ASan catches any over-read. */
    uint8_t *copy = malloc(size);
    assert_non_null(copy);
    memcpy(copy, bytes, size);
    expect_decode_error(copy, size, error);
    free(copy);
}

/* Decodes an exactly-sized copy; on success checks no proper prefix does. */
static sb_envelope_t *decode_bytes(const uint8_t *bytes, size_t size)
{
    uint8_t *copy = malloc(size);
    assert_non_null(copy);
    memcpy(copy, bytes, size);
    const char *err = NULL;
    sb_envelope_t *env = sb_envelope_decode(copy, size, &err);
    free(copy);
    if (!env)
        fail_msg("decode failed: %s", err);
    for (size_t len = 0; len < size; len++) {
        copy = malloc(len ? len : 1);
        assert_non_null(copy);
        memcpy(copy, bytes, len);
        sb_envelope_t *partial = sb_envelope_decode(copy, len, NULL);
        free(copy);
        if (partial)
            fail_msg("prefix of %zu/%zu bytes decoded", len, size);
    }
    return env;
}

/* Every msgpack format, under an unknown key of a heartbeat. */
static void test_every_format_skipped(void **state)
{
    (void) state;
    static const uint8_t values[][24] = {
        { 0xc0 }, { 0xc2 }, { 0xc3 }, { 0x7f }, { 0xe0 },
        { 0xcc, 0xff }, { 0xcd, 0xff, 0xff }, { 0xce, 0xff, 0xff, 0xff, 0xff },
        { 0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff },
        { 0xd0, 0x80 }, { 0xd1, 0x80, 0x00 }, { 0xd2, 0x80, 0, 0, 0 },
        { 0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0 },
        { 0xca, 0x3f, 0x80, 0, 0 }, { 0xcb, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0 },
        { 0xa1, 'a' }, { 0xd9, 0x01, 'a' }, { 0xda, 0x00, 0x01, 'a' },
        { 0xdb, 0x00, 0x00, 0x00, 0x01, 'a' },
        { 0xc4, 0x01, 0x00 }, { 0xc5, 0x00, 0x01, 0x00 }, { 0xc6, 0, 0, 0, 0x01, 0x00 },
        { 0xd4, 0x01, 0x00 }, { 0xd5, 0x01, 0, 0 }, { 0xd6, 0x01, 0, 0, 0, 0 },
        { 0xd7, 0x01, 0, 0, 0, 0, 0, 0, 0, 0 },
        { 0xd8, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 },
        { 0xc7, 0x01, 0xff, 0x00 }, { 0xc8, 0x00, 0x01, 0xff, 0x00 },
        { 0xc9, 0x00, 0x00, 0x00, 0x01, 0xff, 0x00 },
        { 0x91, 0x01 }, { 0xdc, 0x00, 0x01, 0x01 }, { 0xdd, 0, 0, 0, 0x01, 0x01 },
        { 0x81, 0x01, 0x01 }, { 0xde, 0x00, 0x01, 0x01, 0x01 },
        { 0xdf, 0, 0, 0, 0x01, 0x01, 0x01 },
    };
    static const uint8_t sizes[] = {
        1, 1, 1, 1, 1, 2, 3, 5, 9, 2, 3, 5, 9, 5, 9, 2, 3, 4, 6, 3, 4, 6,
        3, 4, 6, 10, 18, 4, 5, 7, 2, 4, 6, 3, 5, 7,
    };
    static const uint8_t heartbeat[] = {
        0x83, 0xa1, 'v', 0x01, 0xa1, 't', 0xa9, 'h', 'e', 'a', 'r', 't', 'b', 'e', 'a', 't',
        0xa1, 'x',
    };
    assert_int_equal(sizeof values / sizeof values[0], sizeof sizes);
    for (size_t i = 0; i < sizeof sizes; i++) {
        uint8_t buf[sizeof heartbeat + sizeof values[0]];
        memcpy(buf, heartbeat, sizeof heartbeat);
        memcpy(buf + sizeof heartbeat, values[i], sizes[i]);
        sb_envelope_t *env = decode_bytes(buf, sizeof heartbeat + sizes[i]);
        assert_int_equal(env->type, SB_ENVELOPE_HEARTBEAT);
        sb_envelope_destroy(&env);
    }
}

/* Known fields in longer-than-needed (but valid) encodings. */
static void test_long_encodings(void **state)
{
    (void) state;
    static const uint8_t request[] = {
        0xde, 0x00, 0x06,                                       /* map16 */
        0xa1, 'v', 0xcc, 0x01,                                  /* uint8 */
        0xd9, 0x01, 't', 0xda, 0x00, 0x07, 'r', 'e', 'q', 'u', 'e', 's', 't',
        0xa2, 'i', 'd', 0xd1, 0x01, 0x00,                       /* int16 256 */
        0xa3, 's', 'v', 'c', 0xdb, 0, 0, 0, 0x01, 's',         /* str32 */
        0xa3, 'c', 'm', 'd', 0xd9, 0x00,                        /* str8 "" */
        0xa4, 'a', 'r', 'g', 's', 0xdc, 0x00, 0x01, 0xa0,       /* array16 [""] */
    };
    sb_envelope_t *env = decode_bytes(request, sizeof request);
    assert_true(env->id == 256);
    assert_string_equal(env->service, "s");
    assert_string_equal(env->command, "");
    assert_int_equal(env->argc, 1);
    assert_string_equal(env->argv[0], "");
    sb_envelope_destroy(&env);

    static const uint8_t reply[] = {
        0xdf, 0, 0, 0, 0x04,                                    /* map32 */
        0xa1, 'v', 0xd3, 0, 0, 0, 0, 0, 0, 0, 0x01,             /* int64 */
        0xa1, 't', 0xa5, 'r', 'e', 'p', 'l', 'y',
        0xa2, 'i', 'd', 0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xa2, 'o', 'k', 0xc3,
    };
    env = decode_bytes(reply, sizeof reply);
    assert_true(env->id == UINT64_MAX);
    assert_true(env->ok);
    sb_envelope_destroy(&env);
}

static uint8_t *encode_full_request(size_t *size)
{
    char *argv[] = { "a b", "", "\xc3\xa9" };
    sb_envelope_t in = { .type = SB_ENVELOPE_REQUEST, .id = 99, .service = "svc",
                         .command = "cmd", .argc = 3, .argv = argv, .client = "cli",
                         .timeout_ms = 70000 };
    uint8_t *data = sb_envelope_encode(&in, size);
    assert_non_null(data);
    return data;
}

static void test_trailing_bytes(void **state)
{
    (void) state;
    size_t size;
    uint8_t *data = encode_full_request(&size);
    uint8_t *longer = malloc(size + 1);
    assert_non_null(longer);
    memcpy(longer, data, size);
    longer[size] = 0xc0;
    expect_decode_error(longer, size + 1, "trailing bytes");
    /* A second whole envelope counts too. */
    uint8_t *twice = malloc(2 * size);
    assert_non_null(twice);
    memcpy(twice, data, size);
    memcpy(twice + size, data, size);
    expect_decode_error(twice, 2 * size, "trailing bytes");
    free(twice);
    free(longer);
    free(data);
}

static void test_truncated(void **state)
{
    (void) state;
    size_t size;
    uint8_t *data = encode_full_request(&size);
    for (size_t len = 0; len < size; len++) {
        /* A copy of exactly `len` bytes, so ASan catches any over-read. */
        uint8_t *prefix = malloc(len ? len : 1);
        assert_non_null(prefix);
        memcpy(prefix, data, len);
        const char *err = NULL;
        sb_envelope_t *env = sb_envelope_decode(prefix, len, &err);
        if (env)
            fail_msg("prefix of %zu/%zu bytes decoded", len, size);
        assert_non_null(err);
        free(prefix);
    }
    free(data);
}


static void test_hostile_counts(void **state)
{
    (void) state;
    const uint8_t array32[] = { 0xdd, 0x01, 0x00, 0x00, 0x00 };
    const uint8_t map32[] = { 0xdf, 0xff, 0xff, 0xff, 0xff };
    const uint8_t str32[] = { 0xdb, 0xff, 0xff, 0xff, 0xff };
    const uint8_t bin32[] = { 0xc6, 0xff, 0xff, 0xff, 0xff, 0x00 };
    const uint8_t ext32[] = { 0xc9, 0xff, 0xff, 0xff, 0xff, 0x01, 0x00 };
    const uint8_t array16[] = { 0xdc, 0xff, 0xff, 0x00, 0x00 };
    const uint8_t never_used[] = { 0xc1 };
    /* A map declaring 2^32-1 entries, then real ones. */
    const uint8_t big_map[] = { 0xdf, 0xff, 0xff, 0xff, 0xff,
                                0xa1, 'v', 0x01, 0xa1, 't', 0xa5, 'r', 'e', 'a', 'd', 'y' };
    /* The same inside a valid envelope, under an unknown key. */
    const uint8_t nested[] = { 0x83, 0xa1, 'v', 0x01, 0xa1, 't', 0xa9,
                               'h', 'e', 'a', 'r', 't', 'b', 'e', 'a', 't',
                               0xa1, 'x', 0xdd, 0xff, 0xff, 0xff, 0xff };
    /* A map whose count fits one byte per entry but not two. */
    const uint8_t half_map[] = { 0x82, 0xa1, 'v', 0x01 };
    expect_bytes_error(array32, sizeof array32, "bad msgpack");
    expect_bytes_error(map32, sizeof map32, "bad msgpack");
    expect_bytes_error(str32, sizeof str32, "bad msgpack");
    expect_bytes_error(bin32, sizeof bin32, "bad msgpack");
    expect_bytes_error(ext32, sizeof ext32, "bad msgpack");
    expect_bytes_error(array16, sizeof array16, "bad msgpack");
    expect_bytes_error(never_used, sizeof never_used, "bad msgpack");
    expect_bytes_error(big_map, sizeof big_map, "bad msgpack");
    expect_bytes_error(nested, sizeof nested, "bad msgpack");
    expect_bytes_error(half_map, sizeof half_map, "bad msgpack");
}

/* An unknown key holding `arrays` nested arrays. */
static void build_nested(mp_t *m, int arrays)
{
    mp_init(m);
    msgpack_pack_map(&m->pk, 3);
    mp_str(&m->pk, "v");
    v_one(&m->pk);
    mp_str(&m->pk, "t");
    t_heartbeat(&m->pk);
    mp_str(&m->pk, "deep");
    for (int i = 0; i < arrays; i++)
        msgpack_pack_array(&m->pk, i + 1 < arrays ? 1 : 0);
}

static void test_nesting_limit(void **state)
{
    (void) state;
    mp_t m;
    /* The map plus 7 arrays is 8 levels: the limit. */
    build_nested(&m, 7);
    sb_envelope_t *env = sb_envelope_decode(mp_data(&m), m.buf.size, NULL);
    msgpack_sbuffer_destroy(&m.buf);
    assert_non_null(env);
    sb_envelope_destroy(&env);

    build_nested(&m, 8);
    expect_decode_error(mp_data(&m), m.buf.size, "too deep");
    msgpack_sbuffer_destroy(&m.buf);

    /* Thousands of levels must not recurse thousands deep. */
    uint8_t deep[10000];
    memset(deep, 0x91, sizeof deep);
    deep[sizeof deep - 1] = 0x90;
    expect_bytes_error(deep, sizeof deep, "too deep");
}

/* Error codes are written into reply lines as they are: only one short
 * lowercase word may pass, in either direction. */
static void test_error_code_is_one_word(void **state)
{
    (void) state;
    const char *bad_codes[] = { "Busy", "two words", "line\nbreak", "",
                                "a-very-long-error-code-of-more-than-32" };
    for (size_t i = 0; i < sizeof bad_codes / sizeof bad_codes[0]; i++) {
        sb_envelope_t reply = { .type = SB_ENVELOPE_REPLY, .id = 7, .code = (char *) bad_codes[i] };
        assert_null(sb_envelope_encode(&reply, NULL));
        msgpack_sbuffer buffer;
        msgpack_packer pk;
        msgpack_sbuffer_init(&buffer);
        msgpack_packer_init(&pk, &buffer, msgpack_sbuffer_write);
        msgpack_pack_map(&pk, 5);
        mp_str(&pk, "v");
        msgpack_pack_uint8(&pk, SB_ENVELOPE_VERSION);
        mp_str(&pk, "t");
        mp_str(&pk, "reply");
        mp_str(&pk, "id");
        msgpack_pack_uint8(&pk, 7);
        mp_str(&pk, "ok");
        msgpack_pack_false(&pk);
        mp_str(&pk, "code");
        mp_str(&pk, bad_codes[i]);
        expect_decode_error((const uint8_t *) buffer.data, buffer.size, "bad field code");
        msgpack_sbuffer_destroy(&buffer);
    }
    sb_envelope_t good = { .type = SB_ENVELOPE_REPLY, .id = 7, .code = "worker-died" };
    sb_envelope_t *decoded = round_trip(&good);
    sb_envelope_destroy(&decoded);
}

/* The token name lands in a program's environment: a name, or refused. */
static void test_token_is_a_name(void **state)
{
    (void) state;
    const char *bad_tokens[] = { "", "two words", "a=b", "line\nbreak", "colon:x",
                                 "a-name-longer-than-sixty-four-characters-is-not-a-name-at-all-not-at-all" };
    for (size_t i = 0; i < sizeof bad_tokens / sizeof bad_tokens[0]; i++) {
        sb_envelope_t request = { .type = SB_ENVELOPE_REQUEST, .id = 1, .service = "s",
                                  .command = "c", .token = (char *) bad_tokens[i] };
        assert_null(sb_envelope_encode(&request, NULL));
        msgpack_sbuffer buffer;
        msgpack_packer pk;
        msgpack_sbuffer_init(&buffer);
        msgpack_packer_init(&pk, &buffer, msgpack_sbuffer_write);
        msgpack_pack_map(&pk, 6);
        mp_str(&pk, "v");
        msgpack_pack_uint8(&pk, SB_ENVELOPE_VERSION);
        mp_str(&pk, "t");
        mp_str(&pk, "request");
        mp_str(&pk, "id");
        msgpack_pack_uint8(&pk, 1);
        mp_str(&pk, "svc");
        mp_str(&pk, "s");
        mp_str(&pk, "cmd");
        mp_str(&pk, "c");
        mp_str(&pk, "tok");
        mp_str(&pk, bad_tokens[i]);
        expect_decode_error((const uint8_t *) buffer.data, buffer.size, "bad field tok");
        msgpack_sbuffer_destroy(&buffer);
    }
}

static void test_destroy_null_safe(void **state)
{
    (void) state;
    sb_envelope_t *env = NULL;
    sb_envelope_destroy(&env);
    sb_envelope_destroy(NULL);
    assert_null(env);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_type_names),
        cmocka_unit_test(test_round_trip_request),
        cmocka_unit_test(test_round_trip_reply),
        cmocka_unit_test(test_round_trip_others),
        cmocka_unit_test(test_round_trip_retain_qos),
        cmocka_unit_test(test_max_args),
        cmocka_unit_test(test_size_limit),
        cmocka_unit_test(test_encode_refuses_incomplete),
        cmocka_unit_test(test_decode_field_errors),
        cmocka_unit_test(test_decode_bases),
        cmocka_unit_test(test_unknown_keys_ignored),
        cmocka_unit_test(test_version_checked_first),
        cmocka_unit_test(test_duplicate_and_bad_keys),
        cmocka_unit_test(test_not_a_map),
        cmocka_unit_test(test_every_format_skipped),
        cmocka_unit_test(test_long_encodings),
        cmocka_unit_test(test_trailing_bytes),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_hostile_counts),
        cmocka_unit_test(test_nesting_limit),
        cmocka_unit_test(test_error_code_is_one_word),
        cmocka_unit_test(test_token_is_a_name),
        cmocka_unit_test(test_destroy_null_safe),
        cmocka_unit_test(test_topics_checked_on_the_wire),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
