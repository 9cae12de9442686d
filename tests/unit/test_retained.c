/* test_retained.c — unit tests for the broker's retained store
 * (broker/retained.c): set, replace, clear, the bounds, batched writes and
 * what survives closing and opening the file again. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "retained.h"

typedef struct {
    char text[1024];        /* "topic=payload/qos ..." in the order given */
} seen_t;

static void collect(void *arg, const char *topic, const char *payload, int qos)
{
    seen_t *seen = arg;
    size_t used = strlen(seen->text);
    snprintf(seen->text + used, sizeof seen->text - used, "%s%s=%s/%d", used ? " " : "", topic,
             payload, qos);
}

static const char *listing(sb_retained_t *store, const char *filter)
{
    static seen_t seen;
    seen.text[0] = '\0';
    sb_retained_each(store, filter, collect, &seen);
    return seen.text;
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
    assert_int_equal(sb_retained_put(store, "home/b", "2", 0, 1), SB_RETAINED_STORED);
    assert_int_equal(sb_retained_put(store, "home/a", "1", 1, 1), SB_RETAINED_STORED);
    assert_int_equal(sb_retained_put(store, "work/x", "w", 2, 1), SB_RETAINED_STORED);
    assert_string_equal(listing(store, "home/#"), "home/a=1/1 home/b=2/0");
    assert_string_equal(listing(store, "#"), "home/a=1/1 home/b=2/0 work/x=w/2");
    assert_int_equal(sb_retained_put(store, "home/a", "one", 0, 2), SB_RETAINED_STORED);
    assert_string_equal(listing(store, "home/a"), "home/a=one/0");
    assert_int_equal(sb_retained_counters(store).bytes, strlen("home/aone") + strlen("home/b2")
                                                          + strlen("work/xw"));
    assert_int_equal(sb_retained_put(store, "home/a", "", 0, 3), SB_RETAINED_CLEARED);
    assert_int_equal(sb_retained_put(store, "never/set", NULL, 0, 3), SB_RETAINED_CLEARED);
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
    sb_retained_put(store, "$sys/devices/door", "connected", 0, 1);
    sb_retained_put(store, "home/a", "1", 0, 1);
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
    assert_int_equal(sb_retained_put(store, "a", "1", 0, 1), SB_RETAINED_STORED);
    assert_int_equal(sb_retained_put(store, "b", "2", 0, 1), SB_RETAINED_STORED);
    assert_int_equal(sb_retained_put(store, "c", "3", 0, 1), SB_RETAINED_REFUSED);
    /* a topic already held may be replaced... */
    assert_int_equal(sb_retained_put(store, "a", "11", 0, 1), SB_RETAINED_STORED);
    /* ...within the bytes: 1+17 + 1+1 = 20 fits, one more byte does not */
    assert_int_equal(sb_retained_put(store, "a", "12345678901234567", 0, 1), SB_RETAINED_STORED);
    assert_int_equal(sb_retained_put(store, "a", "123456789012345678", 0, 1), SB_RETAINED_REFUSED);
    assert_string_equal(listing(store, "a"), "a=12345678901234567/0");
    /* clearing frees room for a new topic: 18 + 2 bytes, 2 topics */
    sb_retained_put(store, "b", "", 0, 1);
    assert_int_equal(sb_retained_put(store, "c", "3", 0, 1), SB_RETAINED_STORED);
    assert_int_equal(sb_retained_put(store, "c", "34", 0, 1), SB_RETAINED_REFUSED);  /* bytes */
    assert_int_equal(sb_retained_counters(store).refused, 3);
    sb_retained_destroy(&store);
}

static void test_persistence_across_reopen(void **state)
{
    (void) state;
    const char *path = temp_path();
    sb_retained_settings_t settings = settings_for(path);
    sb_retained_t *store = open_store(&settings);
    sb_retained_put(store, "home/a", "1", 1, 1000);
    sb_retained_put(store, "home/b", "with space \"and\" quotes", 2, 1000);
    sb_retained_put(store, "home/c", "3", 0, 1000);
    assert_true(sb_retained_flush(store));
    sb_retained_put(store, "home/c", "", 0, 1001);         /* cleared, written at close */
    sb_retained_put(store, "home/d", "4", 0, 1001);
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
        sb_retained_put(store, "home/a", value, 0, i);
    }
    sb_retained_put(store, "home/b", "b", 0, 1);
    int64_t due = sb_retained_flush_due(store);
    assert_true(due > 0);                                   /* two pending: wait flush_ms */
    assert_int_equal(sb_retained_counters(store).pending, 2);
    sb_retained_put(store, "home/c", "c", 0, 1);
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
        cmocka_unit_test(test_unopenable_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
