/* test_mqtt_store.c — persistent MQTT sessions in SQLite
 * (gateways/mqtt/mqtt_store.c): a session saved whole comes back whole
 * (expiry, will with its v5 properties, filters, queued and in-flight
 * messages in order with a command reply's correlation data, QoS 2
 * ids), a forgotten one does not, and a save replaces the one before. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "mqtt_packet.h"
#include "mqtt_store.h"

typedef struct {
    sb_mqtt_session_t *sessions[4];
    char tokens[4][32];
    int64_t left[4], saved[4];
    size_t count;
} loaded_t;

static void collect(void *arg, sb_mqtt_session_t *session, const char *token, int64_t left,
                    int64_t saved)
{
    loaded_t *loaded = arg;
    assert_true(loaded->count < 4);
    snprintf(loaded->tokens[loaded->count], sizeof loaded->tokens[0], "%s", token ? token : "-");
    loaded->left[loaded->count] = left;
    loaded->saved[loaded->count] = saved;
    loaded->sessions[loaded->count++] = session;
}

static void free_loaded(loaded_t *loaded)
{
    for (size_t i = 0; i < loaded->count; i++)
        sb_mqtt_session_destroy(&loaded->sessions[i]);
}

static char *temp_path(void)
{
    char *path = strdup("/tmp/sb-mqtt-store-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    return path;
}

static void remove_files(char *path)
{
    char extra[300];
    unlink(path);
    snprintf(extra, sizeof extra, "%s-wal", path);
    unlink(extra);
    snprintf(extra, sizeof extra, "%s-shm", path);
    unlink(extra);
    free(path);
}

static sb_mqtt_session_t *full_session(void)
{
    sb_mqtt_session_t *session = sb_mqtt_session_new("sensor-1", 9, 100);
    session->expiry_s = 600;
    sb_mqtt_filter_t filter = { "home/#", 1, false, true, 1, 7, true };
    sb_mqtt_session_subscribe(session, &filter);
    sb_mqtt_session_push(session, sb_mqtt_message_new("home/a", "one", 3, 1, false));
    sb_mqtt_session_push(session, sb_mqtt_message_new("home/b", "t\0o", 3, 2, true));
    sb_mqtt_message_t *reply = sb_mqtt_message_new("home/c", "three", 5, 0, false);
    reply->correlation = malloc(3);
    memcpy(reply->correlation, "\x01\0\x02", 3);
    reply->correlation_length = 3;
    reply->status = strdup("ERR busy");
    sb_mqtt_session_push(session, reply);
    bool owned;
    sb_mqtt_message_t *sent = sb_mqtt_session_next(session, 10, &owned);   /* home/a in flight */
    sent->sent = true;
    sb_mqtt_session_await_release(session, 42);
    sb_mqtt_message_t *will = sb_mqtt_message_new("status/s", "gone", 4, 1, true);
    will->relayed = strdup("content_type=text");
    sb_mqtt_session_set_will(session, will, 30);
    return session;
}

static void test_a_session_comes_back_whole(void **state)
{
    (void) state;
    char *path = temp_path();
    char error[256];
    sb_mqtt_store_t *store = sb_mqtt_store_open(path, error, sizeof error);
    assert_non_null(store);
    sb_mqtt_session_t *session = full_session();
    sb_mqtt_store_begin(store);
    sb_mqtt_store_save(store, session, "panel", 600000, 1000);
    sb_mqtt_store_save(store, session, "panel", 500000, 2000);   /* replaces */
    assert_true(sb_mqtt_store_commit(store));
    sb_mqtt_store_close(&store);
    assert_null(store);

    store = sb_mqtt_store_open(path, error, sizeof error);
    loaded_t loaded = { 0 };
    assert_int_equal(sb_mqtt_store_load(store, 100, collect, &loaded), 1);
    sb_mqtt_session_t *back = loaded.sessions[0];
    assert_string_equal(back->client_id, "sensor-1");
    assert_string_equal(loaded.tokens[0], "panel");
    assert_int_equal(loaded.left[0], 500000);
    assert_int_equal(loaded.saved[0], 2000);
    assert_int_equal(back->expiry_s, 600);
    assert_int_equal(back->next_packet_id, session->next_packet_id);
    const sb_mqtt_filter_t *filter = sb_mqtt_session_match(back, "home/x", false, false);
    assert_non_null(filter);
    assert_int_equal(filter->qos, 1);
    assert_true(filter->retain_as_published && filter->skip_retained);
    assert_int_equal(filter->id, 7);
    assert_int_equal(sb_mqtt_session_in_flight(back), 1);
    sb_mqtt_message_t *in_flight = zlistx_first(back->in_flight);
    assert_string_equal(in_flight->topic, "home/a");
    assert_true(in_flight->sent);
    assert_int_equal(in_flight->packet_id, ((sb_mqtt_message_t *) zlistx_first(session->in_flight))->packet_id);
    sb_mqtt_message_t *second = zlistx_first(back->queue);
    assert_string_equal(second->topic, "home/b");
    assert_int_equal(second->length, 3);
    assert_memory_equal(second->payload, "t\0o", 3);
    assert_true(second->retain);
    sb_mqtt_message_t *reply = zlistx_next(back->queue);
    assert_string_equal(reply->topic, "home/c");
    assert_int_equal(reply->correlation_length, 3);
    assert_memory_equal(reply->correlation, "\x01\0\x02", 3);
    assert_string_equal(reply->status, "ERR busy");
    assert_null(second->correlation);
    assert_null(second->status);
    assert_true(sb_mqtt_session_awaits_release(back, 42));
    assert_non_null(back->will);
    assert_string_equal(back->will->topic, "status/s");
    assert_int_equal(back->will_delay_s, 30);
    assert_string_equal(back->will->relayed, "content_type=text");
    free_loaded(&loaded);

    sb_mqtt_store_begin(store);
    sb_mqtt_store_forget(store, "sensor-1");
    assert_true(sb_mqtt_store_commit(store));
    loaded_t none = { 0 };
    assert_int_equal(sb_mqtt_store_load(store, 100, collect, &none), 0);
    sb_mqtt_store_close(&store);
    sb_mqtt_session_destroy(&session);
    remove_files(path);
}

/* A file of the first release (no will_relayed, correlation, status) gets
 * the new columns and its sessions still load. */
static void test_a_file_of_the_first_release_is_upgraded(void **state)
{
    (void) state;
    char *path = temp_path();
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
        "CREATE TABLE sessions (client_id TEXT PRIMARY KEY, token TEXT, expiry_s INTEGER,"
        " expires_in_ms INTEGER, saved_at_ms INTEGER, next_packet_id INTEGER, will_topic TEXT,"
        " will_payload BLOB, will_qos INTEGER, will_retain INTEGER, will_delay_s INTEGER);"
        "CREATE TABLE messages (client_id TEXT, position INTEGER, in_flight INTEGER, topic TEXT,"
        " payload BLOB, qos INTEGER, retain INTEGER, subscription_id INTEGER, packet_id INTEGER,"
        " sent INTEGER, released INTEGER, relayed TEXT, expires_at_ms INTEGER);"
        "INSERT INTO sessions VALUES ('old', NULL, 60, 1000, 1, 5, 'status/old', 'gone', 0, 0, 0);"
        "INSERT INTO messages VALUES ('old', 0, 0, 'home/x', 'v', 0, 0, 0, 0, 0, 0, NULL, 0);",
        NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    char error[256];
    sb_mqtt_store_t *store = sb_mqtt_store_open(path, error, sizeof error);
    assert_non_null(store);
    loaded_t loaded = { 0 };
    assert_int_equal(sb_mqtt_store_load(store, 100, collect, &loaded), 1);
    assert_null(loaded.sessions[0]->will->relayed);
    sb_mqtt_message_t *queued = zlistx_first(loaded.sessions[0]->queue);
    assert_string_equal(queued->topic, "home/x");
    assert_null(queued->correlation);
    free_loaded(&loaded);
    sb_mqtt_session_t *session = full_session();
    sb_mqtt_store_begin(store);
    sb_mqtt_store_save(store, session, NULL, 1000, 1);
    assert_true(sb_mqtt_store_commit(store));
    sb_mqtt_store_close(&store);
    sb_mqtt_session_destroy(&session);
    remove_files(path);
}

static void test_an_unopenable_file_is_an_error(void **state)
{
    (void) state;
    char error[256] = "";
    sb_mqtt_store_t *store = sb_mqtt_store_open("/proc/no/such/dir/x.db", error, sizeof error);
    assert_null(store);
    assert_non_null(strstr(error, "/proc/no/such/dir/x.db"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_session_comes_back_whole),
        cmocka_unit_test(test_a_file_of_the_first_release_is_upgraded),
        cmocka_unit_test(test_an_unopenable_file_is_an_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
