/* retained.c — retained values in memory, written to SQLite in batches
 * (see retained.h).
 *
 * Pending changes are kept as a set of topics, not a log: a flush writes
 * each topic's value as it is in memory then (or deletes it when it is gone),
 * so a topic set a thousand times between two flushes is one row written.
 * An expired value is dropped like a cleared one: its row is deleted. */
#include "retained.h"

#include <czmq.h>
#include <inttypes.h>
#include <sqlite3.h>

#include "data_path.h"
#include "log.h"
#include "topic.h"

/* A file another broker has locked (two started on one file) is waited for this long. */
#define BUSY_TIMEOUT_MS 5000
/* Refusals are logged at most this often (each one is counted). */
#define REFUSAL_LOG_INTERVAL_MS 10000

typedef struct {
    char *payload;
    size_t length;
    int qos;
    char *mqtt;              /* the publisher's MQTT 5 properties, or NULL */
    int64_t set_ms;          /* wall clock, ms since the epoch */
    int64_t expires_ms;      /* wall clock: its Message Expiry; 0: never */
} value_t;

struct sb_retained {
    sb_retained_settings_t settings;
    zhashx_t *values;        /* topic -> value_t */
    zhashx_t *pending;       /* topic -> (unused): changed since the last flush */
    int64_t pending_since_ms;
    int64_t last_refusal_log_ms;
    int64_t next_expiry_ms;  /* no value expires before this (wall clock); 0: none expires */
    sqlite3 *db;
    sqlite3_stmt *upsert;
    sqlite3_stmt *remove;
    sb_retained_counters_t counters;
};

/* synchronous = FULL, as for the account store: a retained value the broker
 * took may not vanish at a power cut once its batch is written. With batches
 * that costs one fsync per flush interval at most, not one per publish. */
static const char *s_schema =
    "PRAGMA journal_mode = WAL;"
    "PRAGMA synchronous = FULL;"
    "CREATE TABLE IF NOT EXISTS retained ("
    "  topic TEXT PRIMARY KEY,"
    "  payload TEXT NOT NULL,"
    "  qos INTEGER NOT NULL DEFAULT 0,"
    "  set_ms INTEGER NOT NULL,"
    "  mqtt TEXT,"
    "  expires_ms INTEGER NOT NULL DEFAULT 0);";

/* Columns added after the first release: a file written before gets them
 * (ALTER TABLE fails harmlessly where they exist). */
static const char *const s_added_columns[] = {
    "ALTER TABLE retained ADD COLUMN mqtt TEXT",
    "ALTER TABLE retained ADD COLUMN expires_ms INTEGER NOT NULL DEFAULT 0",
};

static void value_free(void **item)
{
    value_t *value = *item;
    if (value) {
        free(value->payload);
        free(value->mqtt);
    }
    free(value);
    *item = NULL;
}

static size_t value_bytes(const char *topic, const value_t *value)
{
    return strlen(topic) + value->length + (value->mqtt ? strlen(value->mqtt) : 0);
}

/* Lowers next_expiry_ms to a value's expiry, if it has one. */
static void note_expiry(sb_retained_t *self, const value_t *value)
{
    if (value->expires_ms && (!self->next_expiry_ms || value->expires_ms < self->next_expiry_ms))
        self->next_expiry_ms = value->expires_ms;
}

static void hold(sb_retained_t *self, const char *topic, value_t *value)
{
    note_expiry(self, value);
    value_t *old = zhashx_lookup(self->values, topic);
    if (old)
        self->counters.bytes -= value_bytes(topic, old);
    self->counters.bytes += value_bytes(topic, value);
    zhashx_update(self->values, topic, value);
}

static void forget(sb_retained_t *self, const char *topic)
{
    value_t *old = zhashx_lookup(self->values, topic);
    if (!old)
        return;
    self->counters.bytes -= value_bytes(topic, old);
    zhashx_delete(self->values, topic);
}

static value_t *value_new(const char *payload, int qos, const char *mqtt, int64_t set_ms,
                          int64_t expires_ms)
{
    value_t *value = calloc(1, sizeof *value);
    value->payload = strdup(payload);
    value->length = strlen(payload);
    value->qos = qos;
    value->mqtt = mqtt ? strdup(mqtt) : NULL;
    value->set_ms = set_ms;
    value->expires_ms = expires_ms;
    return value;
}

static bool fits(const sb_retained_t *self, const char *topic, const value_t *value)
{
    value_t *old = zhashx_lookup(self->values, topic);
    if (!old && zhashx_size(self->values) >= self->settings.max_count)
        return false;
    size_t bytes = self->counters.bytes - (old ? value_bytes(topic, old) : 0);
    return bytes + value_bytes(topic, value) <= self->settings.max_bytes;
}

static bool has_expired(const value_t *value, int64_t now_ms)
{
    return value->expires_ms && value->expires_ms <= now_ms;
}

/* ---------------------------------------------------------------- the file */

static bool open_file(sb_retained_t *self, char *error, size_t error_size)
{
    const char *path = self->settings.path;
    sb_data_path_make_parent(path);
    bool ok = sqlite3_open_v2(path, &self->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL)
              == SQLITE_OK;
    if (ok) {
        sqlite3_busy_timeout(self->db, BUSY_TIMEOUT_MS);
        ok = sqlite3_exec(self->db, s_schema, NULL, NULL, NULL) == SQLITE_OK;
        for (size_t i = 0; ok && i < sizeof s_added_columns / sizeof s_added_columns[0]; i++)
            sqlite3_exec(self->db, s_added_columns[i], NULL, NULL, NULL);
        ok = ok
             && sqlite3_prepare_v2(self->db,
                                   "INSERT INTO retained (topic, payload, qos, set_ms, mqtt,"
                                   " expires_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
                                   " ON CONFLICT (topic) DO UPDATE SET payload = ?2, qos = ?3,"
                                   " set_ms = ?4, mqtt = ?5, expires_ms = ?6", -1, &self->upsert,
                                   NULL) == SQLITE_OK
             && sqlite3_prepare_v2(self->db, "DELETE FROM retained WHERE topic = ?1", -1,
                                   &self->remove, NULL) == SQLITE_OK;
    }
    if (!ok)
        snprintf(error, error_size, "%s: %s", path, self->db ? sqlite3_errmsg(self->db)
                                                             : "cannot open");
    return ok;
}

static void mark_pending(sb_retained_t *self, const char *topic);

/* Rows beyond today's bounds (the config was lowered) or with a topic no
 * longer valid stay in the file, unused, and are counted in the log; rows
 * whose Message Expiry passed while the broker was down are deleted. */
static bool load(sb_retained_t *self, char *error, size_t error_size)
{
    sqlite3_stmt *select;
    if (sqlite3_prepare_v2(self->db, "SELECT topic, payload, qos, set_ms, mqtt, expires_ms"
                                     " FROM retained ORDER BY topic", -1, &select, NULL)
        != SQLITE_OK) {
        snprintf(error, error_size, "%s: %s", self->settings.path, sqlite3_errmsg(self->db));
        return false;
    }
    size_t skipped = 0, expired = 0;
    int64_t now_ms = zclock_time();
    int step;
    while ((step = sqlite3_step(select)) == SQLITE_ROW) {
        const char *topic = (const char *) sqlite3_column_text(select, 0);
        const char *payload = (const char *) sqlite3_column_text(select, 1);
        int qos = sqlite3_column_int(select, 2);
        if (!topic || !payload || !*payload || !sb_topic_is_valid(topic) || qos < 0 || qos > 2) {
            skipped++;
            continue;
        }
        value_t *value = value_new(payload, qos, (const char *) sqlite3_column_text(select, 4),
                                   sqlite3_column_int64(select, 3),
                                   sqlite3_column_int64(select, 5));
        if (has_expired(value, now_ms)) {
            expired++;
            mark_pending(self, topic);
        }
        else if (fits(self, topic, value)) {
            hold(self, topic, value);
            continue;
        }
        else
            skipped++;
        value_free((void **) &value);
    }
    self->counters.expired += expired;
    sqlite3_finalize(select);
    if (step != SQLITE_DONE) {
        snprintf(error, error_size, "%s: %s", self->settings.path, sqlite3_errmsg(self->db));
        return false;
    }
    char quoted[SB_LOG_QUOTE_MAX];
    sb_log_info("retained store opened", "path=%s values=%zu bytes=%zu skipped=%zu expired=%zu "
                "synchronous=full", sb_log_quote(quoted, self->settings.path),
                zhashx_size(self->values), self->counters.bytes, skipped, expired);
    return true;
}

static bool write_change(sb_retained_t *self, const char *topic)
{
    value_t *value = zhashx_lookup(self->values, topic);
    sqlite3_stmt *statement = value ? self->upsert : self->remove;
    sqlite3_reset(statement);
    sqlite3_bind_text(statement, 1, topic, -1, SQLITE_STATIC);
    if (value) {
        sqlite3_bind_text(statement, 2, value->payload, (int) value->length, SQLITE_STATIC);
        sqlite3_bind_int(statement, 3, value->qos);
        sqlite3_bind_int64(statement, 4, value->set_ms);
        sqlite3_bind_text(statement, 5, value->mqtt, -1, SQLITE_STATIC);   /* NULL: none */
        sqlite3_bind_int64(statement, 6, value->expires_ms);
    }
    bool ok = sqlite3_step(statement) == SQLITE_DONE;
    sqlite3_reset(statement);
    return ok;
}

static bool write_pending(sb_retained_t *self)
{
    if (sqlite3_exec(self->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        return false;
    for (void *item = zhashx_first(self->pending); item; item = zhashx_next(self->pending))
        if (!write_change(self, zhashx_cursor(self->pending))) {
            sqlite3_exec(self->db, "ROLLBACK", NULL, NULL, NULL);
            return false;
        }
    return sqlite3_exec(self->db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK;
}

bool sb_retained_flush(sb_retained_t *self)
{
    size_t changes = zhashx_size(self->pending);
    if (changes == 0)
        return true;
    if (!write_pending(self)) {
        char reason[SB_LOG_QUOTE_MAX];
        self->counters.write_errors++;
        self->pending_since_ms = zclock_mono();   /* tried again an interval later */
        sb_log_error("retained values not written, kept to try again", "changes=%zu error=%s",
                     changes, sb_log_quote(reason, sqlite3_errmsg(self->db)));
        return false;
    }
    self->counters.writes += changes;
    self->counters.batches++;
    zhashx_purge(self->pending);
    return true;
}

/* ---------------------------------------------------------------- lifecycle */

sb_retained_t *sb_retained_new(const sb_retained_settings_t *settings, char *error,
                               size_t error_size)
{
    sb_retained_t *self = calloc(1, sizeof *self);
    self->settings = *settings;
    self->values = zhashx_new();
    zhashx_set_destructor(self->values, value_free);
    self->pending = zhashx_new();
    self->last_refusal_log_ms = -REFUSAL_LOG_INTERVAL_MS;
    if (settings->path && (!open_file(self, error, error_size) || !load(self, error, error_size)))
        sb_retained_destroy(&self);
    return self;
}

void sb_retained_destroy(sb_retained_t **self_p)
{
    sb_retained_t *self = *self_p;
    if (!self)
        return;
    if (self->db)
        sb_retained_flush(self);
    sqlite3_finalize(self->upsert);
    sqlite3_finalize(self->remove);
    sqlite3_close(self->db);
    zhashx_destroy(&self->pending);
    zhashx_destroy(&self->values);
    free(self);
    *self_p = NULL;
}

/* ---------------------------------------------------------------- values */

static void mark_pending(sb_retained_t *self, const char *topic)
{
    if (!self->db)
        return;
    if (zhashx_size(self->pending) == 0)
        self->pending_since_ms = zclock_mono();
    zhashx_update(self->pending, topic, (void *) 1);
}

static void refuse(sb_retained_t *self, const char *topic)
{
    self->counters.refused++;
    int64_t now = zclock_mono();
    if (now - self->last_refusal_log_ms < REFUSAL_LOG_INTERVAL_MS)
        return;
    self->last_refusal_log_ms = now;
    char quoted[SB_LOG_QUOTE_MAX];
    sb_log_warn("retained value refused, over the bounds", "topic=%s count=%zu bytes=%zu "
                "max=%zu max_bytes=%zu refused_total=%" PRIu64, sb_log_quote(quoted, topic),
                zhashx_size(self->values), self->counters.bytes, self->settings.max_count,
                self->settings.max_bytes, self->counters.refused);
}

/* Drops every value whose Message Expiry has passed, walking the table
 * only when one may have (next_expiry_ms). Topics are taken first:
 * deleting from the table while walking it is not allowed. */
static void drop_expired(sb_retained_t *self, int64_t now_ms)
{
    if (!self->next_expiry_ms || now_ms < self->next_expiry_ms)
        return;
    self->next_expiry_ms = 0;
    zlistx_t *expired = zlistx_new();
    for (value_t *value = zhashx_first(self->values); value; value = zhashx_next(self->values))
        if (has_expired(value, now_ms))
            zlistx_add_end(expired, (void *) zhashx_cursor(self->values));
        else
            note_expiry(self, value);
    for (const char *topic = zlistx_first(expired); topic; topic = zlistx_next(expired)) {
        mark_pending(self, topic);
        forget(self, topic);             /* frees `topic`, the table's key */
        self->counters.expired++;
    }
    zlistx_destroy(&expired);
}

sb_retained_result_t sb_retained_put(sb_retained_t *self, const char *topic,
                                     const sb_retained_value_t *value, int64_t now_ms)
{
    if (!value->payload || !*value->payload) {
        if (zhashx_lookup(self->values, topic)) {
            forget(self, topic);
            mark_pending(self, topic);
        }
        return SB_RETAINED_CLEARED;
    }
    int64_t expires_ms = value->expiry_s ? now_ms + 1000LL * value->expiry_s : 0;
    value_t *held = value_new(value->payload, value->qos, value->mqtt, now_ms, expires_ms);
    if (!fits(self, topic, held))
        drop_expired(self, now_ms);      /* what has expired makes room first */
    if (!fits(self, topic, held)) {
        value_free((void **) &held);
        refuse(self, topic);
        return SB_RETAINED_REFUSED;
    }
    hold(self, topic, held);
    mark_pending(self, topic);
    return SB_RETAINED_STORED;
}

static int compare_topics(const void *a, const void *b)
{
    return strcmp(a, b);
}

/* What is left of a value's Message Expiry, in whole seconds rounded up, so
 * a value still held is never handed on with 0 (MQTT 5.0 §3.3.2.3.3). */
static uint32_t seconds_left(const value_t *value, int64_t now_ms)
{
    return value->expires_ms ? (uint32_t) ((value->expires_ms - now_ms + 999) / 1000) : 0;
}

size_t sb_retained_each(sb_retained_t *self, const char *filter, int64_t now_ms,
                        sb_retained_fn *fn, void *arg)
{
    drop_expired(self, now_ms);          /* a walk over every value anyway */
    zlistx_t *topics = zlistx_new();
    zlistx_set_comparator(topics, (zlistx_comparator_fn *) compare_topics);
    for (void *item = zhashx_first(self->values); item; item = zhashx_next(self->values)) {
        const char *topic = zhashx_cursor(self->values);
        if (sb_topic_matches(filter, topic))
            zlistx_add_end(topics, (void *) topic);
    }
    zlistx_sort(topics);
    size_t count = 0;
    for (const char *topic = zlistx_first(topics); topic; topic = zlistx_next(topics)) {
        const value_t *value = zhashx_lookup(self->values, topic);
        sb_retained_value_t given = { value->payload, value->qos, value->mqtt,
                                      seconds_left(value, now_ms) };
        fn(arg, topic, &given);
        count++;
    }
    zlistx_destroy(&topics);
    return count;
}

int64_t sb_retained_flush_due(const sb_retained_t *self)
{
    size_t pending = zhashx_size(self->pending);
    if (pending == 0)
        return -1;
    if (pending >= self->settings.flush_changes)
        return 0;
    return self->pending_since_ms + self->settings.flush_ms;
}

sb_retained_counters_t sb_retained_counters(const sb_retained_t *self)
{
    sb_retained_counters_t counters = self->counters;
    counters.count = zhashx_size(self->values);
    counters.pending = zhashx_size(self->pending);
    return counters;
}
