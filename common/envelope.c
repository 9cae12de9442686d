/* envelope.c — encoder and decoder for the switchboard envelope (envelope.h).
 *
 * Encoding uses msgpack-c's packer. Decoding deliberately does not use
 * msgpack-c: its unpacker allocates every array and map at its DECLARED size
 * before reading one element, so five hostile bytes (dd 01 00 00 00) would
 * cost half a gigabyte. Instead a small tokenizer reads the bytes directly,
 * in three steps, none of which allocates:
 *
 *   1. skim:    walk the whole input once, checking every declared length
 *               and count against the bytes left (an element needs at least
 *               one byte, a map entry two), capping nesting at MAX_DEPTH and
 *               rejecting trailing bytes;
 *   2. version: find "v" among the top-level keys and refuse any other
 *               version before reading fields whose meaning it may change;
 *   3. view:    read the known keys into a view that points into the input
 *               (unknown keys are skipped), then check the fields the type
 *               requires.
 *
 * Only a view that passed all three is copied into a new sb_envelope_t, so
 * the sole failure after the first allocation is running out of memory.
 * Every read still bounds-checks, so steps 2 and 3 never rely on step 1 for
 * memory safety. */
#include "envelope.h"
#include "topic.h"

#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "protocol.h"

/* Containers nested deeper than this are refused: the format itself needs
 * two (the map and "args"); the rest is headroom for future fields. */
#define MAX_DEPTH 8

#define BIT(f) (1u << (f))

/* ------------------------------------------------------------------ */
/* Fields                                                               */

typedef enum {
    F_V, F_T, F_ID, F_SVC, F_CMD, F_ARGS, F_CLI, F_TMO, F_OK, F_CODE, F_TEXT, F_RETRY,
    F_TOPIC, F_DATA, F_FROM, F_TOK, F_RETAIN, F_PUBRET, F_QOS, F_MQTT, F_EXP, F_CREDIT, F_JOB,
    F_COUNT
} field_t;

/* Error strings must be static (envelope.h), hence one literal per field. */
#define FIELD(k) { k, "missing field " k, "bad field " k, "duplicate field " k }
static const struct {
    const char *key, *missing, *bad, *duplicate;
} fields[F_COUNT] = {
    [F_V] = FIELD("v"),       [F_T] = FIELD("t"),       [F_ID] = FIELD("id"),
    [F_SVC] = FIELD("svc"),   [F_CMD] = FIELD("cmd"),   [F_ARGS] = FIELD("args"),
    [F_CLI] = FIELD("cli"),   [F_TMO] = FIELD("tmo"),   [F_OK] = FIELD("ok"),
    [F_CODE] = FIELD("code"), [F_TEXT] = FIELD("text"), [F_RETRY] = FIELD("retry"),
    [F_TOPIC] = FIELD("topic"), [F_DATA] = FIELD("data"), [F_FROM] = FIELD("from"),
    [F_TOK] = FIELD("tok"),   [F_RETAIN] = FIELD("retain"), [F_PUBRET] = FIELD("pubret"),
    [F_QOS] = FIELD("qos"),   [F_MQTT] = FIELD("mqtt"),   [F_EXP] = FIELD("exp"),
    [F_CREDIT] = FIELD("credit"), [F_JOB] = FIELD("job"),
};
#undef FIELD

static const char *const type_names[] = {
    [SB_ENVELOPE_REQUEST] = "request",     [SB_ENVELOPE_REPLY] = "reply",
    [SB_ENVELOPE_READY] = "ready",         [SB_ENVELOPE_HEARTBEAT] = "heartbeat",
    [SB_ENVELOPE_DISCONNECT] = "disconnect",
    [SB_ENVELOPE_SUBSCRIBE] = "subscribe", [SB_ENVELOPE_UNSUBSCRIBE] = "unsubscribe",
    [SB_ENVELOPE_PUBLISH] = "publish",     [SB_ENVELOPE_EVENT] = "event",
    [SB_ENVELOPE_JOIN] = "join",           [SB_ENVELOPE_LEAVE] = "leave",
    [SB_ENVELOPE_MESSAGE] = "message",
};
#define TYPE_COUNT (sizeof type_names / sizeof type_names[0])

/* Compares as unsigned: a corrupted or uninitialised enum may hold any int. */
static bool type_is_valid(sb_envelope_type_t type)
{
    return (unsigned) type < TYPE_COUNT && type_names[type];
}

const char *sb_envelope_type_name(sb_envelope_type_t type)
{
    return type_is_valid(type) ? type_names[type] : "unknown";
}

/* An error code reaches clients inside a reply line (`ERR CODE ...`), so it
 * must be one short lowercase word: anything else could forge a line. */
static bool code_is_word(const char *code, size_t length)
{
    if (length == 0 || length > SB_ENVELOPE_MAX_CODE)
        return false;
    for (size_t i = 0; i < length; i++)
        if (!((code[i] >= 'a' && code[i] <= 'z') || (code[i] >= '0' && code[i] <= '9')
              || code[i] == '-'))
            return false;
    return true;
}

/* One rule set for both directions, so the encoder can never produce what
 * the decoder would refuse. */
static unsigned required_fields(sb_envelope_type_t type, bool ok)
{
    unsigned always = BIT(F_V) | BIT(F_T);
    switch (type) {
    case SB_ENVELOPE_REQUEST: return always | BIT(F_ID) | BIT(F_SVC) | BIT(F_CMD);
    case SB_ENVELOPE_REPLY:   return always | BIT(F_ID) | BIT(F_OK) | (ok ? 0 : BIT(F_CODE));
    case SB_ENVELOPE_READY:   return always | BIT(F_SVC);
    case SB_ENVELOPE_SUBSCRIBE:
    case SB_ENVELOPE_UNSUBSCRIBE:
    case SB_ENVELOPE_PUBLISH:
    case SB_ENVELOPE_EVENT:   return always | BIT(F_TOPIC);
    case SB_ENVELOPE_JOIN:
    case SB_ENVELOPE_LEAVE:   return always | BIT(F_CLI);
    case SB_ENVELOPE_MESSAGE: return always | BIT(F_CLI) | BIT(F_FROM);
    default:                  return always;
    }
}

static const char *check_required(sb_envelope_type_t type, bool ok, unsigned present)
{
    unsigned missing = required_fields(type, ok) & ~present;
    for (int f = 0; f < F_COUNT; f++)
        if (missing & BIT(f))
            return fields[f].missing;
    return NULL;
}

/* Topics and filters are checked on the wire too, not only by the gateway
 * that took them from a client: a peer of another version (or anything else
 * that reaches the broker's socket) must not route a topic with a CR or LF in
 * it into the EVENT lines of every subscriber. */
static bool topic_is_acceptable(const sb_envelope_t *env)
{
    switch (env->type) {
    case SB_ENVELOPE_PUBLISH:
    case SB_ENVELOPE_EVENT:
        return sb_topic_is_valid(env->topic);
    case SB_ENVELOPE_SUBSCRIBE:
    case SB_ENVELOPE_UNSUBSCRIBE:
        return sb_topic_filter_is_valid(env->topic);
    default:
        return true;
    }
}

/* ------------------------------------------------------------------ */
/* Tokenizer: one msgpack header (plus str/bin/ext payload) at a time.  */

typedef struct {
    const uint8_t *p;
    size_t left;
} reader_t;

typedef enum {
    MP_NIL, MP_BOOL, MP_UINT, MP_NEGATIVE, MP_FLOAT,
    MP_STR, MP_BIN, MP_EXT, MP_ARRAY, MP_MAP
} mp_kind_t;

typedef struct {
    mp_kind_t kind;
    bool b;              /* MP_BOOL */
    uint64_t n;          /* MP_UINT: value; MP_ARRAY: elements; MP_MAP: entries */
    const uint8_t *ptr;  /* MP_STR, MP_BIN, MP_EXT: payload (ext: after the type byte) */
    size_t len;
} token_t;

static bool take(reader_t *r, size_t n, const uint8_t **out)
{
    if (n > r->left)
        return false;
    *out = r->p;
    r->p += n;
    r->left -= n;
    return true;
}

/* Big-endian by byte shifts: the input has no alignment guarantees. */
static bool take_be(reader_t *r, size_t n, uint64_t *out)
{
    const uint8_t *b;
    if (!take(r, n, &b))
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = (v << 8) | b[i];
    *out = v;
    return true;
}

static bool take_payload(reader_t *r, size_t len_bytes, token_t *t)
{
    uint64_t len;
    if (!take_be(r, len_bytes, &len) || len > r->left)
        return false;
    t->len = (size_t) len;
    return take(r, t->len, &t->ptr);
}

/* Ext payloads are a type byte and then `len` bytes; the type is ignored. */
static bool take_ext(reader_t *r, size_t len_bytes, size_t fixed_len, token_t *t)
{
    uint64_t len = fixed_len;
    const uint8_t *type;
    if (len_bytes && !take_be(r, len_bytes, &len))
        return false;
    if (!take(r, 1, &type) || len > r->left)
        return false;
    t->len = (size_t) len;
    return take(r, t->len, &t->ptr);
}

/* Signed formats may carry non-negative values (msgpack lets encoders pick
 * either), so those count as MP_UINT; only the sign matters otherwise. */
static bool take_signed(reader_t *r, size_t n, token_t *t)
{
    uint64_t v;
    if (!take_be(r, n, &v))
        return false;
    bool negative = (v >> (8 * n - 1)) & 1;
    t->kind = negative ? MP_NEGATIVE : MP_UINT;
    t->n = negative ? 0 : v;
    return true;
}

/* A declared count is believable only if the bytes left could hold it. */
static bool take_count(reader_t *r, size_t count_bytes, size_t min_item_bytes, token_t *t)
{
    if (!take_be(r, count_bytes, &t->n))
        return false;
    return t->n <= r->left / min_item_bytes;
}

static bool set_count(const reader_t *r, uint64_t n, size_t min_item_bytes, token_t *t)
{
    t->n = n;
    return n <= r->left / min_item_bytes;
}

static bool next_token(reader_t *r, token_t *t)
{
    const uint8_t *cp;
    if (!take(r, 1, &cp))
        return false;
    uint8_t c = *cp;
    memset(t, 0, sizeof *t);

    if (c <= 0x7f) { t->kind = MP_UINT; t->n = c; return true; }
    if (c >= 0xe0) { t->kind = MP_NEGATIVE; return true; }
    if (c <= 0x8f) { t->kind = MP_MAP; return set_count(r, c & 0x0f, 2, t); }
    if (c <= 0x9f) { t->kind = MP_ARRAY; return set_count(r, c & 0x0f, 1, t); }
    if (c <= 0xbf) {
        t->kind = MP_STR;
        t->len = c & 0x1f;
        return take(r, t->len, &t->ptr);
    }
    switch (c) {
    case 0xc0: t->kind = MP_NIL; return true;
    case 0xc2: case 0xc3: t->kind = MP_BOOL; t->b = c == 0xc3; return true;
    case 0xc4: t->kind = MP_BIN; return take_payload(r, 1, t);
    case 0xc5: t->kind = MP_BIN; return take_payload(r, 2, t);
    case 0xc6: t->kind = MP_BIN; return take_payload(r, 4, t);
    case 0xc7: t->kind = MP_EXT; return take_ext(r, 1, 0, t);
    case 0xc8: t->kind = MP_EXT; return take_ext(r, 2, 0, t);
    case 0xc9: t->kind = MP_EXT; return take_ext(r, 4, 0, t);
    case 0xca: t->kind = MP_FLOAT; return take(r, 4, &cp);
    case 0xcb: t->kind = MP_FLOAT; return take(r, 8, &cp);
    case 0xcc: t->kind = MP_UINT; return take_be(r, 1, &t->n);
    case 0xcd: t->kind = MP_UINT; return take_be(r, 2, &t->n);
    case 0xce: t->kind = MP_UINT; return take_be(r, 4, &t->n);
    case 0xcf: t->kind = MP_UINT; return take_be(r, 8, &t->n);
    case 0xd0: return take_signed(r, 1, t);
    case 0xd1: return take_signed(r, 2, t);
    case 0xd2: return take_signed(r, 4, t);
    case 0xd3: return take_signed(r, 8, t);
    case 0xd4: t->kind = MP_EXT; return take_ext(r, 0, 1, t);
    case 0xd5: t->kind = MP_EXT; return take_ext(r, 0, 2, t);
    case 0xd6: t->kind = MP_EXT; return take_ext(r, 0, 4, t);
    case 0xd7: t->kind = MP_EXT; return take_ext(r, 0, 8, t);
    case 0xd8: t->kind = MP_EXT; return take_ext(r, 0, 16, t);
    case 0xd9: t->kind = MP_STR; return take_payload(r, 1, t);
    case 0xda: t->kind = MP_STR; return take_payload(r, 2, t);
    case 0xdb: t->kind = MP_STR; return take_payload(r, 4, t);
    case 0xdc: t->kind = MP_ARRAY; return take_count(r, 2, 1, t);
    case 0xdd: t->kind = MP_ARRAY; return take_count(r, 4, 1, t);
    case 0xde: t->kind = MP_MAP; return take_count(r, 2, 2, t);
    case 0xdf: t->kind = MP_MAP; return take_count(r, 4, 2, t);
    default:   return false;  /* 0xc1: never used */
    }
}

/* Steps over one whole value. Every token consumes at least one byte and
 * recursion is bounded by `depth_left`, so this is linear in the input. */
static const char *skim(reader_t *r, int depth_left)
{
    token_t t;
    if (!next_token(r, &t))
        return "bad msgpack";
    if (t.kind != MP_ARRAY && t.kind != MP_MAP)
        return NULL;
    if (depth_left == 0)
        return "too deep";
    /* n <= left / 2 for maps (take_count), so doubling cannot overflow. */
    uint64_t items = t.kind == MP_MAP ? 2 * t.n : t.n;
    for (uint64_t i = 0; i < items; i++) {
        const char *err = skim(r, depth_left - 1);
        if (err)
            return err;
    }
    return NULL;
}

size_t sb_envelope_length(const uint8_t *data, size_t size)
{
    reader_t r = { data, size };
    if (!data || skim(&r, MAX_DEPTH))
        return 0;
    return size - r.left;
}

static bool token_is(const token_t *t, const char *s)
{
    size_t len = strlen(s);
    return t->kind == MP_STR && t->len == len && memcmp(t->ptr, s, len) == 0;
}

/* ------------------------------------------------------------------ */
/* Decoding                                                             */

typedef struct {
    const uint8_t *ptr;
    size_t len;
} slice_t;

/* A decoded envelope before anything is copied: strings point into the
 * input, and "args" is remembered as where its elements start. */
typedef struct {
    unsigned seen;          /* BIT(field) for every key present */
    sb_envelope_type_t type;
    uint64_t id;
    uint32_t timeout_ms;
    bool ok;
    uint32_t credit;
    bool retry;
    bool job;
    bool retain;
    bool published_retain;
    uint8_t qos;
    uint32_t expiry_s;
    slice_t str[F_COUNT];   /* the string fields */
    reader_t args;
    size_t argc;
} view_t;

static int find_field(const token_t *key)
{
    for (int f = 0; f < F_COUNT; f++)
        if (token_is(key, fields[f].key))
            return f;
    return -1;
}

/* C strings cannot carry NUL, so a string with one is refused rather than
 * silently truncated at the receiver. */
static bool read_str(reader_t *r, slice_t *out)
{
    token_t t;
    if (!next_token(r, &t) || t.kind != MP_STR || memchr(t.ptr, 0, t.len))
        return false;
    out->ptr = t.ptr;
    out->len = t.len;
    return true;
}

static bool read_uint(reader_t *r, uint64_t max, uint64_t *out)
{
    token_t t;
    if (!next_token(r, &t) || t.kind != MP_UINT || t.n > max)
        return false;
    *out = t.n;
    return true;
}

/* Fields of a future version may mean something else, so the version is
 * judged before any of them, wherever "v" sits in the map. */
static const char *check_version(reader_t r, uint64_t entries)
{
    for (uint64_t i = 0; i < entries; i++) {
        token_t key;
        if (!next_token(&r, &key) || key.kind != MP_STR)
            return NULL;  /* read_view reports the bad key */
        if (token_is(&key, "v")) {
            uint64_t version;
            if (!read_uint(&r, UINT64_MAX, &version))
                return fields[F_V].bad;
            return version == SB_ENVELOPE_VERSION ? NULL : "unsupported version";
        }
        if (skim(&r, MAX_DEPTH))
            return "bad msgpack";
    }
    return fields[F_V].missing;
}

static const char *read_type(reader_t *r, view_t *v)
{
    token_t t;
    if (!next_token(r, &t) || t.kind != MP_STR)
        return fields[F_T].bad;
    for (size_t i = 0; i < TYPE_COUNT; i++) {
        if (type_names[i] && token_is(&t, type_names[i])) {
            v->type = (sb_envelope_type_t) i;
            return NULL;
        }
    }
    return "unknown type";
}

static const char *read_args(reader_t *r, view_t *v)
{
    token_t t;
    if (!next_token(r, &t) || t.kind != MP_ARRAY)
        return fields[F_ARGS].bad;
    if (t.n > SB_ENVELOPE_MAX_ARGS)
        return "too many args";
    v->args = *r;
    v->argc = (size_t) t.n;
    for (size_t i = 0; i < v->argc; i++) {
        slice_t arg;
        if (!read_str(r, &arg))
            return fields[F_ARGS].bad;
    }
    return NULL;
}

static const char *read_field(reader_t *r, field_t f, view_t *v)
{
    uint64_t n;
    switch (f) {
    case F_V:
        return skim(r, MAX_DEPTH);  /* check_version judged it */
    case F_T:
        return read_type(r, v);
    case F_ID:
        /* Ids are never 0; encoders omit the key rather than send 0. */
        if (!read_uint(r, UINT64_MAX, &n) || n == 0)
            return fields[f].bad;
        v->id = n;
        return NULL;
    case F_TMO:
        if (!read_uint(r, UINT32_MAX, &n))
            return fields[f].bad;
        v->timeout_ms = (uint32_t) n;
        return NULL;
    case F_EXP:
        if (!read_uint(r, UINT32_MAX, &n))
            return fields[f].bad;
        v->expiry_s = (uint32_t) n;
        return NULL;
    case F_QOS:
        if (!read_uint(r, SB_ENVELOPE_MAX_QOS, &n))
            return fields[f].bad;
        v->qos = (uint8_t) n;
        return NULL;
    case F_CREDIT:
        if (!read_uint(r, SB_ENVELOPE_MAX_CREDIT, &n) || n == 0)
            return fields[f].bad;
        v->credit = (uint32_t) n;
        return NULL;
    case F_OK:
    case F_RETRY:
    case F_JOB:
    case F_RETAIN:
    case F_PUBRET: {
        token_t t;
        if (!next_token(r, &t) || t.kind != MP_BOOL)
            return fields[f].bad;
        bool *flags[F_COUNT] = { [F_OK] = &v->ok, [F_RETRY] = &v->retry, [F_JOB] = &v->job,
                                 [F_RETAIN] = &v->retain, [F_PUBRET] = &v->published_retain };
        *flags[f] = t.b;
        return NULL;
    }
    case F_ARGS:
        return read_args(r, v);
    case F_CODE:
        return read_str(r, &v->str[f]) && code_is_word((const char *) v->str[f].ptr, v->str[f].len)
                   ? NULL : fields[f].bad;
    case F_TOK:
        /* It lands in a program's environment and in logs: a name, nothing else. */
        return read_str(r, &v->str[f])
                       && sb_token_name_is_valid((const char *) v->str[f].ptr, v->str[f].len)
                   ? NULL : fields[f].bad;
    default:
        return read_str(r, &v->str[f]) ? NULL : fields[f].bad;
    }
}

static const char *read_view(reader_t *r, uint64_t entries, view_t *v)
{
    for (uint64_t i = 0; i < entries; i++) {
        token_t key;
        if (!next_token(r, &key) || key.kind != MP_STR)
            return "bad key";
        int f = find_field(&key);
        const char *err;
        if (f < 0)
            err = skim(r, MAX_DEPTH);  /* unknown: a later version's field */
        else if (v->seen & BIT(f))
            err = fields[f].duplicate;  /* which one would win is ambiguous */
        else
            err = read_field(r, (field_t) f, v);
        if (err)
            return err;
        if (f >= 0)
            v->seen |= BIT(f);
    }
    return NULL;
}

static const char *decode_view(const uint8_t *data, size_t size, view_t *v)
{
    if (size > SB_ENVELOPE_MAX_SIZE)
        return "too large";
    if (!data)
        return "bad msgpack";

    reader_t r = { data, size };
    const char *err = skim(&r, MAX_DEPTH);
    if (err)
        return err;
    if (r.left)
        return "trailing bytes";

    r = (reader_t) { data, size };
    token_t map;
    if (!next_token(&r, &map) || map.kind != MP_MAP)
        return "not a map";
    if ((err = check_version(r, map.n)) || (err = read_view(&r, map.n, v)))
        return err;
    return check_required(v->type, v->ok, v->seen);
}

static bool copy_slice(const view_t *v, field_t f, char **out)
{
    if (!(v->seen & BIT(f)))
        return true;
    *out = malloc(v->str[f].len + 1);
    if (!*out)
        return false;
    memcpy(*out, v->str[f].ptr, v->str[f].len);
    (*out)[v->str[f].len] = '\0';
    return true;
}

static bool copy_args(const view_t *v, sb_envelope_t *env)
{
    if (!(v->seen & BIT(F_ARGS)))
        return true;
    /* NULL-terminated like a C argv, for callers that want one. */
    env->argv = calloc(v->argc + 1, sizeof *env->argv);
    if (!env->argv)
        return false;
    env->argc = v->argc;
    reader_t r = v->args;
    for (size_t i = 0; i < v->argc; i++) {
        slice_t arg;
        if (!read_str(&r, &arg))
            return false;  /* unreachable: read_args checked every one */
        env->argv[i] = malloc(arg.len + 1);
        if (!env->argv[i])
            return false;
        memcpy(env->argv[i], arg.ptr, arg.len);
        env->argv[i][arg.len] = '\0';
    }
    return true;
}

static sb_envelope_t *envelope_from_view(const view_t *v)
{
    sb_envelope_t *env = calloc(1, sizeof *env);
    if (!env)
        return NULL;
    env->type = v->type;
    env->id = v->id;
    env->timeout_ms = v->timeout_ms;
    env->ok = v->ok;
    env->retry = v->retry;
    env->job = v->job;
    env->credit = v->credit;
    env->retain = v->retain;
    env->published_retain = v->published_retain;
    env->qos = v->qos;
    env->expiry_s = v->expiry_s;
    if (!copy_slice(v, F_SVC, &env->service) || !copy_slice(v, F_CMD, &env->command)
        || !copy_slice(v, F_CLI, &env->client) || !copy_slice(v, F_CODE, &env->code)
        || !copy_slice(v, F_TEXT, &env->text) || !copy_slice(v, F_TOPIC, &env->topic)
        || !copy_slice(v, F_DATA, &env->data) || !copy_slice(v, F_FROM, &env->from)
        || !copy_slice(v, F_MQTT, &env->mqtt)
        || !copy_slice(v, F_TOK, &env->token) || !copy_args(v, env))
        sb_envelope_destroy(&env);
    return env;
}

sb_envelope_t *sb_envelope_decode(const uint8_t *data, size_t size,
                                  const char **error_out)
{
    view_t view = { 0 };
    const char *err = decode_view(data, size, &view);
    sb_envelope_t *env = NULL;
    if (!err) {
        env = envelope_from_view(&view);
        if (!env)
            err = "out of memory";
        else if (!topic_is_acceptable(env)) {
            err = fields[F_TOPIC].bad;
            sb_envelope_destroy(&env);
        }
    }
    if (error_out)
        *error_out = err;
    return env;
}

void sb_envelope_destroy(sb_envelope_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sb_envelope_t *self = *self_p;
    free(self->service);
    free(self->command);
    free(self->client);
    free(self->token);
    free(self->code);
    free(self->text);
    free(self->topic);
    free(self->data);
    free(self->from);
    free(self->mqtt);
    for (size_t i = 0; i < self->argc && self->argv; i++)
        free(self->argv[i]);
    free(self->argv);
    free(self);
    *self_p = NULL;
}

/* ------------------------------------------------------------------ */
/* Encoding                                                             */

/* emit_fields runs twice: once without a packer to count the map entries
 * (msgpack wants the count first) and the string bytes, then for real. One
 * function for both keeps the count and the entries from disagreeing. */
typedef struct {
    msgpack_packer *pk;  /* NULL while counting */
    size_t entries;
    size_t str_bytes;
    bool failed;
} encoder_t;

static void put_key(encoder_t *e, field_t f)
{
    e->entries++;
    if (e->pk && msgpack_pack_str_with_body(e->pk, fields[f].key, strlen(fields[f].key)))
        e->failed = true;
}

static void put_cstr(encoder_t *e, const char *s)
{
    size_t len = strlen(s);
    e->str_bytes += len;
    if (e->pk && msgpack_pack_str_with_body(e->pk, s, len))
        e->failed = true;
}

static void put_str(encoder_t *e, field_t f, const char *s)
{
    if (!s)
        return;
    put_key(e, f);
    put_cstr(e, s);
}

static void put_uint(encoder_t *e, field_t f, uint64_t n)
{
    put_key(e, f);
    if (e->pk && msgpack_pack_uint64(e->pk, n))
        e->failed = true;
}

static void put_bool(encoder_t *e, field_t f, bool b)
{
    put_key(e, f);
    if (e->pk && (b ? msgpack_pack_true(e->pk) : msgpack_pack_false(e->pk)))
        e->failed = true;
}

static void put_args(encoder_t *e, const sb_envelope_t *env)
{
    put_key(e, F_ARGS);
    if (e->pk && msgpack_pack_array(e->pk, env->argc))
        e->failed = true;
    for (size_t i = 0; i < env->argc; i++)
        put_cstr(e, env->argv[i]);
}

static void emit_fields(encoder_t *e, const sb_envelope_t *env)
{
    put_uint(e, F_V, SB_ENVELOPE_VERSION);
    put_key(e, F_T);
    put_cstr(e, type_names[env->type]);
    if (env->id)
        put_uint(e, F_ID, env->id);
    put_str(e, F_SVC, env->service);
    put_str(e, F_CMD, env->command);
    if (env->argc)
        put_args(e, env);
    put_str(e, F_CLI, env->client);
    put_str(e, F_TOK, env->token);
    if (env->timeout_ms)
        put_uint(e, F_TMO, env->timeout_ms);
    if (env->retry)
        put_bool(e, F_RETRY, true);
    if (env->job)
        put_bool(e, F_JOB, true);
    if (env->credit)
        put_uint(e, F_CREDIT, env->credit);
    if (env->type == SB_ENVELOPE_REPLY)
        put_bool(e, F_OK, env->ok);
    put_str(e, F_CODE, env->code);
    put_str(e, F_TEXT, env->text);
    put_str(e, F_TOPIC, env->topic);
    put_str(e, F_DATA, env->data);
    put_str(e, F_FROM, env->from);
    put_str(e, F_MQTT, env->mqtt);
    if (env->retain)
        put_bool(e, F_RETAIN, true);
    if (env->published_retain)
        put_bool(e, F_PUBRET, true);
    if (env->qos)
        put_uint(e, F_QOS, env->qos);
    if (env->expiry_s)
        put_uint(e, F_EXP, env->expiry_s);
}

static bool encodable(const sb_envelope_t *env)
{
    if (!type_is_valid(env->type) || env->argc > SB_ENVELOPE_MAX_ARGS)
        return false;
    if (env->argc && !env->argv)
        return false;
    for (size_t i = 0; i < env->argc; i++)
        if (!env->argv[i])
            return false;
    if (env->code && !code_is_word(env->code, strlen(env->code)))
        return false;
    if (env->token && !sb_token_name_is_valid(env->token, strlen(env->token)))
        return false;
    if (env->qos > SB_ENVELOPE_MAX_QOS || env->credit > SB_ENVELOPE_MAX_CREDIT)
        return false;

    unsigned present = BIT(F_V) | BIT(F_T);
    present |= env->id ? BIT(F_ID) : 0;
    present |= env->service ? BIT(F_SVC) : 0;
    present |= env->command ? BIT(F_CMD) : 0;
    present |= env->code ? BIT(F_CODE) : 0;
    present |= env->client ? BIT(F_CLI) : 0;
    present |= env->topic ? BIT(F_TOPIC) : 0;
    present |= env->from ? BIT(F_FROM) : 0;
    present |= env->type == SB_ENVELOPE_REPLY ? BIT(F_OK) : 0;
    return check_required(env->type, env->ok, present) == NULL && topic_is_acceptable(env);
}

uint8_t *sb_envelope_encode(const sb_envelope_t *env, size_t *size_out)
{
    if (!env || !encodable(env))
        return NULL;

    /* Counting first also refuses an oversized text before copying it. */
    encoder_t count = { 0 };
    emit_fields(&count, env);
    if (count.str_bytes > SB_ENVELOPE_MAX_SIZE)
        return NULL;

    msgpack_sbuffer sbuf;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sbuf);
    msgpack_packer_init(&pk, &sbuf, msgpack_sbuffer_write);
    encoder_t e = { .pk = &pk };
    e.failed = msgpack_pack_map(&pk, count.entries) != 0;
    emit_fields(&e, env);
    if (e.failed || sbuf.size > SB_ENVELOPE_MAX_SIZE) {
        msgpack_sbuffer_destroy(&sbuf);
        return NULL;
    }
    if (size_out)
        *size_out = sbuf.size;
    return (uint8_t *) msgpack_sbuffer_release(&sbuf);
}
