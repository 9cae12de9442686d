/* mqtt_store.c — persistent MQTT sessions in SQLite (see mqtt_store.h).
 *
 * A session is saved whole: its row, then its filters, messages and QoS 2
 * ids replace the ones before, inside the transaction of the batch. The
 * file is WAL with synchronous=NORMAL: a batch costs no fsync of its own,
 * and a power cut loses at most the last batches, never the file. */
#include "mqtt_store.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data_path.h"
#include "id_map.h"
#include "log.h"

#define BUSY_TIMEOUT_MS 2000

static const char s_schema[] =
    "PRAGMA journal_mode = WAL;"
    "PRAGMA synchronous = NORMAL;"
    "CREATE TABLE IF NOT EXISTS sessions (client_id TEXT PRIMARY KEY, token TEXT,"
    " expiry_s INTEGER, expires_in_ms INTEGER, saved_at_ms INTEGER, next_packet_id INTEGER,"
    " will_topic TEXT, will_payload BLOB, will_qos INTEGER, will_retain INTEGER,"
    " will_delay_s INTEGER);"
    "CREATE TABLE IF NOT EXISTS filters (client_id TEXT, filter TEXT, qos INTEGER,"
    " no_local INTEGER, retain_as_published INTEGER, retain_handling INTEGER, id INTEGER,"
    " skip_retained INTEGER);"
    "CREATE TABLE IF NOT EXISTS messages (client_id TEXT, position INTEGER, in_flight INTEGER,"
    " topic TEXT, payload BLOB, qos INTEGER, retain INTEGER, subscription_id INTEGER,"
    " packet_id INTEGER, sent INTEGER, released INTEGER, relayed TEXT, expires_at_ms INTEGER);"
    "CREATE TABLE IF NOT EXISTS awaiting_release (client_id TEXT, packet_id INTEGER);"
    "CREATE INDEX IF NOT EXISTS filters_of ON filters (client_id);"
    "CREATE INDEX IF NOT EXISTS messages_of ON messages (client_id);"
    "CREATE INDEX IF NOT EXISTS awaiting_of ON awaiting_release (client_id);";

/* Columns added after the first release: a file written before gets them
 * (ALTER TABLE fails harmlessly where they exist). */
static const char *const s_added_columns[] = {
    "ALTER TABLE sessions ADD COLUMN will_relayed TEXT",
    "ALTER TABLE messages ADD COLUMN correlation BLOB",
    "ALTER TABLE messages ADD COLUMN status TEXT",
};

/* The statements, in this order (s_sql). */
enum { UPSERT, ADD_FILTER, ADD_MESSAGE, ADD_AWAITING, DEL_SESSION, DEL_FILTERS, DEL_MESSAGES,
       DEL_AWAITING, STATEMENTS };

static const char *const s_sql[STATEMENTS] = {
    "INSERT OR REPLACE INTO sessions (client_id, token, expiry_s, expires_in_ms, saved_at_ms,"
    " next_packet_id, will_topic, will_payload, will_qos, will_retain, will_delay_s,"
    " will_relayed) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    "INSERT INTO filters VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    "INSERT INTO messages (client_id, position, in_flight, topic, payload, qos, retain,"
    " subscription_id, packet_id, sent, released, relayed, expires_at_ms, correlation, status)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
    "INSERT INTO awaiting_release VALUES (?1, ?2)",
    "DELETE FROM sessions WHERE client_id = ?1",
    "DELETE FROM filters WHERE client_id = ?1",
    "DELETE FROM messages WHERE client_id = ?1",
    "DELETE FROM awaiting_release WHERE client_id = ?1",
};

struct sb_mqtt_store {
    char *path;
    sqlite3 *db;
    sqlite3_stmt *statements[STATEMENTS];
    bool failed;               /* a statement of this batch failed */
};

sb_mqtt_store_t *sb_mqtt_store_open(const char *path, char *error, size_t error_size)
{
    sb_mqtt_store_t *self = calloc(1, sizeof *self);
    self->path = strdup(path);
    sb_data_path_make_parent(path);
    bool ok = sqlite3_open_v2(path, &self->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL)
              == SQLITE_OK;
    if (ok) {
        sqlite3_busy_timeout(self->db, BUSY_TIMEOUT_MS);
        ok = sqlite3_exec(self->db, s_schema, NULL, NULL, NULL) == SQLITE_OK;
        for (size_t i = 0; ok && i < sizeof s_added_columns / sizeof s_added_columns[0]; i++)
            sqlite3_exec(self->db, s_added_columns[i], NULL, NULL, NULL);
    }
    for (int i = 0; ok && i < STATEMENTS; i++)
        ok = sqlite3_prepare_v2(self->db, s_sql[i], -1, &self->statements[i], NULL) == SQLITE_OK;
    if (!ok) {
        snprintf(error, error_size, "%s: %s", path, self->db ? sqlite3_errmsg(self->db)
                                                             : "cannot open");
        sb_mqtt_store_close(&self);
    }
    return self;
}

void sb_mqtt_store_close(sb_mqtt_store_t **self_p)
{
    sb_mqtt_store_t *self = *self_p;
    if (!self)
        return;
    for (int i = 0; i < STATEMENTS; i++)
        sqlite3_finalize(self->statements[i]);
    sqlite3_close(self->db);
    free(self->path);
    free(self);
    *self_p = NULL;
}

/* ---------------------------------------------------------------- writing */

/* Runs a statement whose parameters are bound; resets it for the next use. */
static void run(sb_mqtt_store_t *self, sqlite3_stmt *statement)
{
    if (sqlite3_step(statement) != SQLITE_DONE)
        self->failed = true;
    sqlite3_reset(statement);
    sqlite3_clear_bindings(statement);
}

static sqlite3_stmt *with_client(sb_mqtt_store_t *self, int which, const char *client_id)
{
    sqlite3_stmt *statement = self->statements[which];
    sqlite3_bind_text(statement, 1, client_id, -1, SQLITE_STATIC);
    return statement;
}

void sb_mqtt_store_begin(sb_mqtt_store_t *self)
{
    self->failed = sqlite3_exec(self->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK;
}

bool sb_mqtt_store_commit(sb_mqtt_store_t *self)
{
    if (self->failed || sqlite3_exec(self->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        sb_log_error("mqtt session store: batch not written", "path=%s error=\"%s\"", self->path,
                     sqlite3_errmsg(self->db));
        sqlite3_exec(self->db, "ROLLBACK", NULL, NULL, NULL);
        return false;
    }
    return true;
}

void sb_mqtt_store_forget(sb_mqtt_store_t *self, const char *client_id)
{
    for (int which = DEL_SESSION; which <= DEL_AWAITING; which++)
        run(self, with_client(self, which, client_id));
}

static void save_message(sb_mqtt_store_t *self, const char *client_id, int position,
                         bool in_flight, const sb_mqtt_message_t *message)
{
    sqlite3_stmt *s = with_client(self, ADD_MESSAGE, client_id);
    sqlite3_bind_int(s, 2, position);
    sqlite3_bind_int(s, 3, in_flight);
    sqlite3_bind_text(s, 4, message->topic, -1, SQLITE_STATIC);
    sqlite3_bind_blob(s, 5, message->payload, (int) message->length, SQLITE_STATIC);
    sqlite3_bind_int(s, 6, message->qos);
    sqlite3_bind_int(s, 7, message->retain);
    sqlite3_bind_int64(s, 8, message->subscription_id);
    sqlite3_bind_int(s, 9, message->packet_id);
    sqlite3_bind_int(s, 10, message->sent);
    sqlite3_bind_int(s, 11, message->released);
    sqlite3_bind_text(s, 12, message->relayed, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 13, message->expires_at_ms);
    /* a command reply's Correlation Data and status (v5) */
    sqlite3_bind_blob(s, 14, message->correlation, (int) message->correlation_length,
                      SQLITE_STATIC);
    sqlite3_bind_text(s, 15, message->status, -1, SQLITE_STATIC);
    run(self, s);
}

static void save_messages(sb_mqtt_store_t *self, const char *client_id, zlistx_t *list,
                          bool in_flight, int *position)
{
    for (sb_mqtt_message_t *message = zlistx_first(list); message; message = zlistx_next(list))
        save_message(self, client_id, (*position)++, in_flight, message);
}

static void save_filters(sb_mqtt_store_t *self, const sb_mqtt_session_t *session)
{
    for (sb_mqtt_filter_t *f = zlistx_first(session->filters); f; f = zlistx_next(session->filters)) {
        sqlite3_stmt *s = with_client(self, ADD_FILTER, session->client_id);
        sqlite3_bind_text(s, 2, f->filter, -1, SQLITE_STATIC);
        sqlite3_bind_int(s, 3, f->qos);
        sqlite3_bind_int(s, 4, f->no_local);
        sqlite3_bind_int(s, 5, f->retain_as_published);
        sqlite3_bind_int(s, 6, f->retain_handling);
        sqlite3_bind_int64(s, 7, f->id);
        sqlite3_bind_int(s, 8, f->skip_retained);
        run(self, s);
    }
}

void sb_mqtt_store_save(sb_mqtt_store_t *self, const sb_mqtt_session_t *session, const char *token,
                        int64_t expires_in_ms, int64_t now_ms)
{
    const char *id = session->client_id;
    sb_mqtt_store_forget(self, id);
    sqlite3_stmt *s = with_client(self, UPSERT, id);
    sqlite3_bind_text(s, 2, token, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, session->expiry_s);
    sqlite3_bind_int64(s, 4, expires_in_ms);
    sqlite3_bind_int64(s, 5, now_ms);
    sqlite3_bind_int(s, 6, session->next_packet_id);
    const sb_mqtt_message_t *will = session->will;
    if (will) {
        sqlite3_bind_text(s, 7, will->topic, -1, SQLITE_STATIC);
        sqlite3_bind_blob(s, 8, will->payload, (int) will->length, SQLITE_STATIC);
        sqlite3_bind_int(s, 9, will->qos);
        sqlite3_bind_int(s, 10, will->retain);
        sqlite3_bind_int64(s, 11, session->will_delay_s);
        sqlite3_bind_text(s, 12, will->relayed, -1, SQLITE_STATIC);   /* NULL: none */
    }
    run(self, s);
    save_filters(self, session);
    int position = 0;
    save_messages(self, id, session->in_flight, true, &position);
    save_messages(self, id, session->queue, false, &position);
    for (void *key = zhashx_first(session->awaiting_release); key;
         key = zhashx_next(session->awaiting_release)) {
        sqlite3_stmt *a = with_client(self, ADD_AWAITING, id);
        sqlite3_bind_int(a, 2, (int) (uintptr_t) zhashx_cursor(session->awaiting_release));
        run(self, a);
    }
}

/* ---------------------------------------------------------------- reading */

static const char *text_at(sqlite3_stmt *s, int column)
{
    const unsigned char *text = sqlite3_column_text(s, column);
    return text ? (const char *) text : "";
}

/* A copy of a TEXT column, or NULL for SQL NULL. */
static char *text_or_null(sqlite3_stmt *s, int column)
{
    return sqlite3_column_type(s, column) == SQLITE_NULL ? NULL : strdup(text_at(s, column));
}

static sb_mqtt_message_t *message_at(sqlite3_stmt *s, int topic, int payload, int qos, int retain)
{
    return sb_mqtt_message_new(text_at(s, topic), sqlite3_column_blob(s, payload)
                                                      ? sqlite3_column_blob(s, payload) : "",
                               (size_t) sqlite3_column_bytes(s, payload),
                               (uint8_t) sqlite3_column_int(s, qos), sqlite3_column_int(s, retain));
}

/* Runs `sql` for the session's client id, calling `row` on each row. */
static void each_row(sb_mqtt_store_t *self, const char *sql, sb_mqtt_session_t *session,
                     void (*row)(sb_mqtt_session_t *session, sqlite3_stmt *statement))
{
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(self->db, sql, -1, &s, NULL) != SQLITE_OK)
        return;
    sqlite3_bind_text(s, 1, session->client_id, -1, SQLITE_STATIC);
    while (sqlite3_step(s) == SQLITE_ROW)
        row(session, s);
    sqlite3_finalize(s);
}

static void filter_row(sb_mqtt_session_t *session, sqlite3_stmt *s)
{
    sb_mqtt_filter_t filter = { (char *) text_at(s, 0), (uint8_t) sqlite3_column_int(s, 1),
                                sqlite3_column_int(s, 2), sqlite3_column_int(s, 3),
                                (uint8_t) sqlite3_column_int(s, 4),
                                (uint32_t) sqlite3_column_int64(s, 5), sqlite3_column_int(s, 6) };
    sb_mqtt_session_subscribe(session, &filter);
}

static void message_row(sb_mqtt_session_t *session, sqlite3_stmt *s)
{
    sb_mqtt_message_t *message = message_at(s, 1, 2, 3, 4);
    message->subscription_id = (uint32_t) sqlite3_column_int64(s, 5);
    message->packet_id = (uint16_t) sqlite3_column_int(s, 6);
    message->sent = sqlite3_column_int(s, 7);
    message->released = sqlite3_column_int(s, 8);
    message->relayed = text_or_null(s, 9);
    message->expires_at_ms = sqlite3_column_int64(s, 10);
    if (sqlite3_column_type(s, 11) != SQLITE_NULL) {
        message->correlation_length = (size_t) sqlite3_column_bytes(s, 11);
        message->correlation = malloc(message->correlation_length ? message->correlation_length : 1);
        if (message->correlation_length)
            memcpy(message->correlation, sqlite3_column_blob(s, 11), message->correlation_length);
    }
    message->status = text_or_null(s, 12);
    sb_mqtt_session_restore(session, message, sqlite3_column_int(s, 0));
}

static void awaiting_row(sb_mqtt_session_t *session, sqlite3_stmt *s)
{
    sb_mqtt_session_await_release(session, (uint16_t) sqlite3_column_int(s, 0));
}

size_t sb_mqtt_store_load(sb_mqtt_store_t *self, size_t max_queued, sb_mqtt_store_fn *fn, void *arg)
{
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(self->db, "SELECT client_id, token, expiry_s, expires_in_ms,"
                           " saved_at_ms, next_packet_id, will_topic, will_payload, will_qos,"
                           " will_retain, will_delay_s, will_relayed FROM sessions", -1, &s, NULL) != SQLITE_OK)
        return 0;
    size_t count = 0;
    while (sqlite3_step(s) == SQLITE_ROW) {
        sb_mqtt_session_t *session = sb_mqtt_session_new(text_at(s, 0), 0, max_queued);
        session->expiry_s = (uint32_t) sqlite3_column_int64(s, 2);
        session->next_packet_id = (uint16_t) sqlite3_column_int(s, 5);
        if (!session->next_packet_id)
            session->next_packet_id = 1;
        if (sqlite3_column_type(s, 6) != SQLITE_NULL) {
            sb_mqtt_message_t *will = message_at(s, 6, 7, 8, 9);
            will->relayed = text_or_null(s, 11);
            sb_mqtt_session_set_will(session, will, (uint32_t) sqlite3_column_int64(s, 10));
        }
        each_row(self, "SELECT filter, qos, no_local, retain_as_published, retain_handling, id,"
                       " skip_retained FROM filters WHERE client_id = ?1", session, filter_row);
        each_row(self, "SELECT in_flight, topic, payload, qos, retain, subscription_id, packet_id,"
                       " sent, released, relayed, expires_at_ms, correlation, status FROM messages"
                       " WHERE client_id = ?1"
                       " ORDER BY position",
                 session, message_row);
        each_row(self, "SELECT packet_id FROM awaiting_release WHERE client_id = ?1", session,
                 awaiting_row);
        const char *token = sqlite3_column_type(s, 1) == SQLITE_NULL ? NULL : text_at(s, 1);
        fn(arg, session, token, sqlite3_column_int64(s, 3), sqlite3_column_int64(s, 4));
        count++;
    }
    sqlite3_finalize(s);
    return count;
}
