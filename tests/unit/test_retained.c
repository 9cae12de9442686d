/* test_retained.c — unit tests for the broker's retained store
 * (broker/retained.c): set, replace, clear, the bounds, batched writes,
 * what survives closing and opening the file again (an older file's too),
 * MQTT 5 properties kept with a value and Message Expiry ending it. */
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
#include <time.h>

#include "retained.h"

typedef struct {
    char text[1024];        /* "topic=payload/qos ..." in the order given */
} seen_t;

/* "topic=payload/qos", then "/MQTT" and "+Ns" (seconds left) when it has them. */
static void collect(void *arg, const char *topic, const sb_retained_value_t *value)
{
    seen_t *seen = arg;
    size_t used = strlen(seen->text);
    used += (size_t) snprintf(seen->text + used, sizeof seen->text - used, "%s%s=%s/%d",
                              used ? " " : "", topic, value->payload, value->qos);
    if (value->mqtt)
        used += (size_t) snprintf(seen->text + used, sizeof seen->text - used, "/%s",
                                  value->mqtt);
    if (value->expiry_s)
        snprintf(seen->text + used, sizeof seen->text - used, "+%us", (unsigned) value->expiry_s);
}

static const char *listing_at(sb_retained_t *store, const char *filter, int64_t now_ms)
{
    static seen_t seen;
    seen.text[0] = '\0';
    sb_retained_each(store, filter, now_ms, collect, &seen);
    return seen.text;
}

static const char *listing(sb_retained_t *store, const char *filter)
{
    return listing_at(store, filter, 0);
}

static sb_retained_result_t put(sb_retained_t *store, const char *topic, const char *payload,
                                int qos, int64_t now_ms)
{
    sb_retained_value_t value = { payload, qos, NULL, 0 };
    return sb_retained_put(store, topic, &value, now_ms);
}

static sb_retained_result_t put_mqtt(sb_retained_t *store, const char *topic, const char *payload,
                                     const char *mqtt, uint32_t expiry_s, int64_t now_ms)
{
    sb_retained_value_t value = { payload, 1, mqtt, expiry_s };
    return sb_retained_put(store, topic, &value, now_ms);
}

static int64_t wall_ms(void)
{
    return (int64_t) time(NULL) * 1000;
}

static sb_retained_settings_t settings_for(const char *path)
{
    return (sb_retained_settings_t) { .path = path, .max_count = 100, .max_bytes = 1 << 20,
                                      .flush_ms = 100, .flush_changes = 1000 };
}

static sb_retained_t *open_store(const sb_retained_settings_t *settings)
{
    char error[512] = "";
    sb_retained_t *store = sb_retained_new(settings, error, sizeof error);
    if (!store)
        fail_msg("cannot open: %s", error);
    return store;
}

/* A fresh file path in the test's own folder. */
static const char *temp_path(void)
{
    static char folder[64], path[128];
    snprintf(folder, sizeof folder, "/tmp/sb-retained-XXXXXX");
    assert_non_null(mkdtemp(folder));
    snprintf(path, sizeof path, "%s/sub/retained.db", folder);   /* folders are made */
    return path;
}

static void test_set_replace_clear(void **state)
{
    (void) state;
    sb_retained_settings_t settings = settings_for(NULL);
    sb_retained_t *store = open_store(&settings);
    assert_int_equal(put(store, "home/b", "2", 0, 1), SB_RETAINED_STORED);
    assert_int_equal(put(store, "home/a", "1", 1, 1), SB_RETAINED_STORED);
    assert_int_equal(put(store, "work/x", "w", 2, 1), SB_RETAINED_STORED);
    assert_string_equal(listing(store, "home/#"), "home/a=1/1 home/b=2/0");
    assert_string_equal(listing(store, "#"), "home/a=1/1 home/b=2/0 work/x=w/2");
    assert_int_equal(put(store, "home/a", "one", 0, 2), SB_RETAINED_STORED);
    assert_string_equal(listing(store, "home/a"), "home/a=one/0");
    assert_int_equal(sb_retained_counters(store).bytes, strlen("home/aone") + strlen("home/b2")
                                                          + strlen("work/xw"));
    assert_int_equal(put(store, "home/a", "", 0, 3), SB_RETAINED_CLEARED);
    assert_int_equal(put(store, "never/set", NULL, 0, 3), SB_RETAINED_CLEARED);
    assert_string_equal(listing(store, "home/+"), "home/b=2/0");
    assert_int_equal(sb_retained_counters(store).count, 2);
    /* memory only: nothing is ever pending */
    assert_int_equal(sb_retained_flush_due(store), -1);
    assert_int_equal(sb_retained_counters(store).pending, 0);
    sb_retained_destroy(&store);
    assert_null(store);
}

static void test_dollar_topics(void **state)
{
    (void) state;
    sb_retained_settings_t settings = settings_for(NULL);
    sb_retained_t *store = open_store(&settings);
    put(store, "$sys/devices/door", "connected", 0, 1);
    put(store, "home/a", "1", 0, 1);
    assert_string_equal(listing(store, "#"), "home/a=1/0");
    assert_string_equal(listing(store, "$sys/#"), "$sys/devices/door=connected/0");
    sb_retained_destroy(&store);
}

static void test_bounds(void **state)
{
    (void) state;
    sb_retained_settings_t settings = settings_for(NULL);
    settings.max_count = 2;
    settings.max_bytes = 20;
    sb_retained_t *store = open_store(&settings);
    assert_int_equal(put(store, "a", "1", 0, 1), SB_RETAINED_STORED);
    assert_int_equal(put(store, "b", "2", 0, 1), SB_RETAINED_STORED);
    assert_int_equal(put(store, "c", "3", 0, 1), SB_RETAINED_REFUSED);
    /* a topic already held may be replaced... */
    assert_int_equal(put(store, "a", "11", 0, 1), SB_RETAINED_STORED);
    /* ...within the bytes: 1+17 + 1+1 = 20 fits, one more byte does not */
    assert_int_equal(put(store, "a", "12345678901234567", 0, 1), SB_RETAINED_STORED);
    assert_int_equal(put(store, "a", "123456789012345678", 0, 1), SB_RETAINED_REFUSED);
    assert_string_equal(listing(store, "a"), "a=12345678901234567/0");
    /* clearing frees room for a new topic: 18 + 2 bytes, 2 topics */
    put(store, "b", "", 0, 1);
    assert_int_equal(put(store, "c", "3", 0, 1), SB_RETAINED_STORED);
    assert_int_equal(put(store, "c", "34", 0, 1), SB_RETAINED_REFUSED);  /* bytes */
    assert_int_equal(sb_retained_counters(store).refused, 3);
    sb_retained_destroy(&store);
}

static void test_persistence_across_reopen(void **state)
{
    (void) state;
    const char *path = temp_path();
    sb_retained_settings_t settings = settings_for(path);
    sb_retained_t *store = open_store(&settings);
    put(store, "home/a", "1", 1, 1000);
    put(store, "home/b", "with space \"and\" quotes", 2, 1000);
    put(store, "home/c", "3", 0, 1000);
    assert_true(sb_retained_flush(store));
    put(store, "home/c", "", 0, 1001);         /* cleared, written at close */
    put(store, "home/d", "4", 0, 1001);
    sb_retained_destroy(&store);

    store = open_store(&settings);
    assert_string_equal(listing(store, "#"),
                        "home/a=1/1 home/b=with space \"and\" quotes/2 home/d=4/0");
    sb_retained_destroy(&store);

    /* A lower bound takes what fits, in topic order; the rest stays in the file. */
    settings.max_count = 1;
    store = open_store(&settings);
    assert_string_equal(listing(store, "#"), "home/a=1/1");
    sb_retained_destroy(&store);
    settings.max_count = 100;
    store = open_store(&settings);
    assert_int_equal(sb_retained_counters(store).count, 3);
    sb_retained_destroy(&store);
}

static void test_batch_flush(void **state)
{
    (void) state;
    const char *path = temp_path();
    sb_retained_settings_t settings = settings_for(path);
    settings.flush_changes = 3;
    sb_retained_t *store = open_store(&settings);
    assert_int_equal(sb_retained_flush_due(store), -1);
    for (int i = 0; i < 50; i++) {                          /* one topic, many times */
        char value[16];
        snprintf(value, sizeof value, "%d", i);
        put(store, "home/a", value, 0, i);
    }
    put(store, "home/b", "b", 0, 1);
    int64_t due = sb_retained_flush_due(store);
    assert_true(due > 0);                                   /* two pending: wait flush_ms */
    assert_int_equal(sb_retained_counters(store).pending, 2);
    put(store, "home/c", "c", 0, 1);
    assert_int_equal(sb_retained_flush_due(store), 0);      /* flush_changes: at once */
    assert_true(sb_retained_flush(store));
    sb_retained_counters_t counters = sb_retained_counters(store);
    assert_int_equal(counters.writes, 3);
    assert_int_equal(counters.batches, 1);
    assert_int_equal(counters.pending, 0);
    assert_int_equal(sb_retained_flush_due(store), -1);
    assert_true(sb_retained_flush(store));                  /* nothing: no batch */
    assert_int_equal(sb_retained_counters(store).batches, 1);
    sb_retained_destroy(&store);

    store = open_store(&settings);
    assert_string_equal(listing(store, "home/a"), "home/a=49/0");
    sb_retained_destroy(&store);
}

static void test_properties_and_expiry(void **state)
{
    (void) state;
    sb_retained_settings_t settings = settings_for(NULL);
    sb_retained_t *store = open_store(&settings);
    assert_int_equal(put_mqtt(store, "home/a", "1", "ab12", 10, 1000), SB_RETAINED_STORED);
    assert_int_equal(put_mqtt(store, "home/b", "2", "cd", 0, 1000), SB_RETAINED_STORED);
    assert_int_equal(sb_retained_counters(store).bytes, strlen("home/a1ab12") + strlen("home/b2cd"));
    /* what is left of the interval, rounded up: never 0 while it is held */
    assert_string_equal(listing_at(store, "#", 1000), "home/a=1/1/ab12+10s home/b=2/1/cd");
    assert_string_equal(listing_at(store, "#", 5500), "home/a=1/1/ab12+6s home/b=2/1/cd");
    assert_string_equal(listing_at(store, "#", 10999), "home/a=1/1/ab12+1s home/b=2/1/cd");
    /* expired: dropped by any lookup, whatever its filter */
    assert_string_equal(listing_at(store, "home/b", 11000), "home/b=2/1/cd");
    assert_int_equal(sb_retained_counters(store).count, 1);
    assert_int_equal(sb_retained_counters(store).expired, 1);
    assert_int_equal(sb_retained_counters(store).bytes, strlen("home/b2cd"));
    /* a new value replaces the properties and the expiry with its own */
    assert_int_equal(put(store, "home/b", "3", 0, 12000), SB_RETAINED_STORED);
    assert_string_equal(listing_at(store, "#", 12000), "home/b=3/0");
    sb_retained_destroy(&store);
}

static void test_expired_values_make_room(void **state)
{
    (void) state;
    sb_retained_settings_t settings = settings_for(NULL);
    settings.max_count = 1;
    sb_retained_t *store = open_store(&settings);
    assert_int_equal(put_mqtt(store, "a", "1", NULL, 1, 0), SB_RETAINED_STORED);
    assert_int_equal(put(store, "b", "2", 0, 999), SB_RETAINED_REFUSED);
    assert_int_equal(put(store, "b", "2", 0, 1000), SB_RETAINED_STORED);
    assert_string_equal(listing_at(store, "#", 1000), "b=2/0");
    sb_retained_counters_t counters = sb_retained_counters(store);
    assert_int_equal(counters.refused, 1);
    assert_int_equal(counters.expired, 1);
    sb_retained_destroy(&store);

    /* Each expiry is found after the one before it has gone. */
    settings.max_count = 10;
    store = open_store(&settings);
    put_mqtt(store, "late", "l", NULL, 5, 0);
    put_mqtt(store, "early", "e", NULL, 2, 0);
    put_mqtt(store, "later", "l", NULL, 9, 0);
    assert_string_equal(listing_at(store, "#", 2000), "late=l/1+3s later=l/1+7s");
    assert_string_equal(listing_at(store, "#", 4999), "late=l/1+1s later=l/1+5s");
    assert_string_equal(listing_at(store, "#", 5000), "later=l/1+4s");
    assert_string_equal(listing_at(store, "#", 9000), "");
    assert_int_equal(sb_retained_counters(store).expired, 3);
    assert_int_equal(sb_retained_counters(store).count, 0);
    sb_retained_destroy(&store);
}

static void test_properties_and_expiry_survive_reopen(void **state)
{
    (void) state;
    const char *path = temp_path();
    sb_retained_settings_t settings = settings_for(path);
    sb_retained_t *store = open_store(&settings);
    int64_t now = wall_ms();
    assert_int_equal(put_mqtt(store, "home/kept", "k", "3008000172", 3600, now),
                     SB_RETAINED_STORED);
    assert_int_equal(put_mqtt(store, "home/gone", "g", NULL, 1, now - 10000), SB_RETAINED_STORED);
    assert_int_equal(put_mqtt(store, "home/plain", "p", NULL, 0, now), SB_RETAINED_STORED);
    assert_true(sb_retained_flush(store));
    sb_retained_destroy(&store);

    /* Expired while the broker was down: not loaded, and its row deleted. */
    store = open_store(&settings);
    assert_int_equal(sb_retained_counters(store).expired, 1);
    assert_int_equal(sb_retained_counters(store).pending, 1);
    assert_string_equal(listing_at(store, "#", now), "home/kept=k/1/3008000172+3600s home/plain=p/1");
    sb_retained_destroy(&store);
    store = open_store(&settings);
    assert_int_equal(sb_retained_counters(store).expired, 0);
    assert_int_equal(sb_retained_counters(store).count, 2);
    sb_retained_destroy(&store);
}

/* A file written before the properties and the expiry were kept gets their columns. */
static void test_an_older_file_gets_the_new_columns(void **state)
{
    (void) state;
    const char *path = temp_path();
    sb_retained_settings_t settings = settings_for(path);
    sb_retained_t *store = open_store(&settings);   /* makes the folder */
    sb_retained_destroy(&store);
    unlink(path);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "CREATE TABLE retained (topic TEXT PRIMARY KEY, payload TEXT"
                                  " NOT NULL, qos INTEGER NOT NULL DEFAULT 0, set_ms INTEGER NOT"
                                  " NULL); INSERT INTO retained VALUES ('home/old', 'o', 1, 5);",
                                  NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);

    store = open_store(&settings);
    assert_string_equal(listing(store, "#"), "home/old=o/1");
    assert_int_equal(put_mqtt(store, "home/new", "n", "ff", 3600, wall_ms()), SB_RETAINED_STORED);
    sb_retained_destroy(&store);
    store = open_store(&settings);
    assert_string_equal(listing_at(store, "#", wall_ms()), "home/new=n/1/ff+3600s home/old=o/1");
    sb_retained_destroy(&store);
}

static void test_unopenable_file(void **state)
{
    (void) state;
    sb_retained_settings_t settings = settings_for("/proc/no-such-folder/retained.db");
    char error[512] = "";
    sb_retained_t *store = sb_retained_new(&settings, error, sizeof error);
    assert_null(store);
    assert_non_null(strstr(error, "/proc/no-such-folder/retained.db"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_set_replace_clear),
        cmocka_unit_test(test_dollar_topics),
        cmocka_unit_test(test_bounds),
        cmocka_unit_test(test_persistence_across_reopen),
        cmocka_unit_test(test_batch_flush),
        cmocka_unit_test(test_properties_and_expiry),
        cmocka_unit_test(test_expired_values_make_room),
        cmocka_unit_test(test_properties_and_expiry_survive_reopen),
        cmocka_unit_test(test_an_older_file_gets_the_new_columns),
        cmocka_unit_test(test_unopenable_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
