/* test_subscriptions.c — unit tests for a gateway's subscription table
 * (gateways/subscriptions.c): when the broker must be told (first client
 * of a filter, last one gone), the per-client limit, one delivery per
 * client however many of its filters match, and the filters a restarted
 * broker is told again. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "subscriptions.h"

/* ---------------------------------------------------------------- recorders */

#define MAX_SEEN 256

typedef struct {
    size_t count;
    uint64_t clients[MAX_SEEN];
} clients_seen_t;

static void record_client(void *arg, uint64_t client)
{
    clients_seen_t *seen = arg;
    assert_true(seen->count < MAX_SEEN);
    seen->clients[seen->count++] = client;
}

typedef struct {
    size_t count;
    char *filters[MAX_SEEN];
} filters_seen_t;

static void record_filter(void *arg, const char *filter)
{
    filters_seen_t *seen = arg;
    assert_true(seen->count < MAX_SEEN);
    seen->filters[seen->count++] = strdup(filter);
}

static void filters_seen_free(filters_seen_t *seen)
{
    for (size_t i = 0; i < seen->count; i++)
        free(seen->filters[i]);
    seen->count = 0;
}

static bool filters_seen_has(const filters_seen_t *seen, const char *filter)
{
    for (size_t i = 0; i < seen->count; i++)
        if (strcmp(seen->filters[i], filter) == 0)
            return true;
    return false;
}

static bool clients_seen_has(const clients_seen_t *seen, uint64_t client)
{
    for (size_t i = 0; i < seen->count; i++)
        if (seen->clients[i] == client)
            return true;
    return false;
}

/* The clients `topic` is delivered to. */
static clients_seen_t deliveries(sb_subscriptions_t *subs, const char *topic)
{
    clients_seen_t seen = { 0 };
    sb_subscriptions_each_client(subs, topic, record_client, &seen);
    return seen;
}

/* The filters a restarted broker would be told. */
static filters_seen_t filters_in_use(sb_subscriptions_t *subs)
{
    filters_seen_t seen = { 0 };
    sb_subscriptions_each_filter(subs, record_filter, &seen);
    return seen;
}

/* ---------------------------------------------------------------- tests */

static void test_first_and_last_client_of_a_filter(void **state)
{
    (void) state;
    sb_subscriptions_t *subs = sb_subscriptions_new(64);
    assert_int_equal(sb_subscriptions_add(subs, 1, "home/+/temp"), SB_SUBSCRIBED_FIRST);
    assert_int_equal(sb_subscriptions_add(subs, 2, "home/+/temp"), SB_SUBSCRIBED);
    assert_int_equal(sb_subscriptions_add(subs, 1, "home/+/temp"), SB_ALREADY_SUBSCRIBED);
    assert_int_equal(sb_subscriptions_add(subs, 3, "home/#"), SB_SUBSCRIBED_FIRST);

    assert_int_equal(sb_subscriptions_remove(subs, 1, "home/+/temp"), SB_UNSUBSCRIBED);
    assert_int_equal(sb_subscriptions_remove(subs, 1, "home/+/temp"), SB_NOT_SUBSCRIBED);
    assert_int_equal(sb_subscriptions_remove(subs, 2, "home/+/temp"), SB_UNSUBSCRIBED_LAST);
    assert_int_equal(sb_subscriptions_remove(subs, 2, "home/+/temp"), SB_NOT_SUBSCRIBED);
    assert_int_equal(sb_subscriptions_remove(subs, 9, "never/used"), SB_NOT_SUBSCRIBED);
    assert_int_equal(sb_subscriptions_remove(subs, 3, "home/+/temp"), SB_NOT_SUBSCRIBED);

    /* Taken again after the last one let it go: the broker must be told again. */
    assert_int_equal(sb_subscriptions_add(subs, 2, "home/+/temp"), SB_SUBSCRIBED_FIRST);
    sb_subscriptions_destroy(&subs);
    assert_null(subs);
    sb_subscriptions_destroy(&subs);   /* NULL is fine */
}

static void test_filters_are_compared_exactly(void **state)
{
    (void) state;
    sb_subscriptions_t *subs = sb_subscriptions_new(64);
    assert_int_equal(sb_subscriptions_add(subs, 1, "a/b"), SB_SUBSCRIBED_FIRST);
    assert_int_equal(sb_subscriptions_add(subs, 1, "a/b/"), SB_SUBSCRIBED_FIRST);
    assert_int_equal(sb_subscriptions_add(subs, 1, "A/b"), SB_SUBSCRIBED_FIRST);
    assert_int_equal(sb_subscriptions_add(subs, 1, "a/+"), SB_SUBSCRIBED_FIRST);
    /* unsub of a filter that only matches another one is not an unsub of it */
    assert_int_equal(sb_subscriptions_remove(subs, 1, "a/#"), SB_NOT_SUBSCRIBED);
    assert_int_equal(sb_subscriptions_remove(subs, 1, "a/b"), SB_UNSUBSCRIBED_LAST);
    clients_seen_t seen = deliveries(subs, "a/b");
    assert_int_equal(seen.count, 1);   /* still through a/+ */
    sb_subscriptions_destroy(&subs);
}

static void test_limit_per_client(void **state)
{
    (void) state;
    sb_subscriptions_t *subs = sb_subscriptions_new(3);
    assert_int_equal(sb_subscriptions_add(subs, 1, "a"), SB_SUBSCRIBED_FIRST);
    assert_int_equal(sb_subscriptions_add(subs, 1, "b"), SB_SUBSCRIBED_FIRST);
    assert_int_equal(sb_subscriptions_add(subs, 1, "c"), SB_SUBSCRIBED_FIRST);
    assert_int_equal(sb_subscriptions_add(subs, 1, "d"), SB_TOO_MANY_FILTERS);
    /* a filter it has already is not a new one: no error for a repeat */
    assert_int_equal(sb_subscriptions_add(subs, 1, "c"), SB_ALREADY_SUBSCRIBED);
    /* the limit is per client */
    assert_int_equal(sb_subscriptions_add(subs, 2, "d"), SB_SUBSCRIBED_FIRST);
    /* the refused filter was not half-added */
    assert_int_equal(deliveries(subs, "d").count, 1);
    assert_int_equal(sb_subscriptions_remove(subs, 1, "d"), SB_NOT_SUBSCRIBED);
    /* room again after an unsub */
    assert_int_equal(sb_subscriptions_remove(subs, 1, "a"), SB_UNSUBSCRIBED_LAST);
    assert_int_equal(sb_subscriptions_add(subs, 1, "d"), SB_SUBSCRIBED);
    assert_int_equal(sb_subscriptions_add(subs, 1, "e"), SB_TOO_MANY_FILTERS);
    sb_subscriptions_destroy(&subs);
}

static void test_limit_of_64(void **state)
{
    (void) state;
    sb_subscriptions_t *subs = sb_subscriptions_new(64);
    char filter[32];
    for (int i = 0; i < 64; i++) {
        snprintf(filter, sizeof filter, "f/%d", i);
        assert_int_equal(sb_subscriptions_add(subs, 7, filter), SB_SUBSCRIBED_FIRST);
    }
    assert_int_equal(sb_subscriptions_add(subs, 7, "f/64"), SB_TOO_MANY_FILTERS);
    filters_seen_t seen = filters_in_use(subs);
    assert_int_equal(seen.count, 64);
    assert_false(filters_seen_has(&seen, "f/64"));
    filters_seen_free(&seen);
    sb_subscriptions_destroy(&subs);
}

static void test_one_delivery_per_client(void **state)
{
    (void) state;
    sb_subscriptions_t *subs = sb_subscriptions_new(64);
    sb_subscriptions_add(subs, 1, "home/+/temp");
    sb_subscriptions_add(subs, 1, "home/#");
    sb_subscriptions_add(subs, 1, "home/kitchen/temp");
    sb_subscriptions_add(subs, 2, "home/#");
    sb_subscriptions_add(subs, 3, "garden/#");
    sb_subscriptions_add(subs, 4, "#");

    clients_seen_t seen = deliveries(subs, "home/kitchen/temp");
    assert_int_equal(seen.count, 3);
    assert_true(clients_seen_has(&seen, 1));
    assert_true(clients_seen_has(&seen, 2));
    assert_true(clients_seen_has(&seen, 4));
    assert_false(clients_seen_has(&seen, 3));

    seen = deliveries(subs, "home");           /* home/# includes home itself */
    assert_int_equal(seen.count, 3);
    assert_true(clients_seen_has(&seen, 1));
    assert_true(clients_seen_has(&seen, 2));
    assert_true(clients_seen_has(&seen, 4));

    seen = deliveries(subs, "garden/rose");
    assert_int_equal(seen.count, 2);
    assert_true(clients_seen_has(&seen, 3));
    assert_true(clients_seen_has(&seen, 4));

    seen = deliveries(subs, "homes/x");
    assert_int_equal(seen.count, 1);
    assert_true(clients_seen_has(&seen, 4));
    sb_subscriptions_destroy(&subs);
}

static void test_system_topics(void **state)
{
    (void) state;
    sb_subscriptions_t *subs = sb_subscriptions_new(64);
    sb_subscriptions_add(subs, 1, "#");
    sb_subscriptions_add(subs, 2, "+/clients/+");
    sb_subscriptions_add(subs, 3, "$sys/clients/+");
    sb_subscriptions_add(subs, 4, "$sys/#");
    clients_seen_t seen = deliveries(subs, "$sys/clients/tcp-1");
    assert_int_equal(seen.count, 2);
    assert_true(clients_seen_has(&seen, 3));
    assert_true(clients_seen_has(&seen, 4));
    seen = deliveries(subs, "sys/clients/tcp-1");
    assert_int_equal(seen.count, 2);
    assert_true(clients_seen_has(&seen, 1));
    assert_true(clients_seen_has(&seen, 2));
    sb_subscriptions_destroy(&subs);
}

static void test_nothing_matches(void **state)
{
    (void) state;
    sb_subscriptions_t *subs = sb_subscriptions_new(64);
    assert_int_equal(deliveries(subs, "a/b").count, 0);   /* empty table */
    sb_subscriptions_add(subs, 1, "a/+/c");
    assert_int_equal(deliveries(subs, "a/b").count, 0);
    assert_int_equal(deliveries(subs, "a/b/c/d").count, 0);
    assert_int_equal(deliveries(subs, "a/b/c").count, 1);
    sb_subscriptions_remove(subs, 1, "a/+/c");
    assert_int_equal(deliveries(subs, "a/b/c").count, 0);
    filters_seen_t seen = filters_in_use(subs);
    assert_int_equal(seen.count, 0);
    sb_subscriptions_destroy(&subs);
}

static void test_drop_client(void **state)
{
    (void) state;
    sb_subscriptions_t *subs = sb_subscriptions_new(64);
    sb_subscriptions_add(subs, 1, "shared");
    sb_subscriptions_add(subs, 1, "mine/a");
    sb_subscriptions_add(subs, 1, "mine/b");
    sb_subscriptions_add(subs, 2, "shared");

    filters_seen_t unused = { 0 };
    sb_subscriptions_drop_client(subs, 1, record_filter, &unused);
    /* the broker is told about the filters nobody has any more, not "shared" */
    assert_int_equal(unused.count, 2);
    assert_true(filters_seen_has(&unused, "mine/a"));
    assert_true(filters_seen_has(&unused, "mine/b"));
    assert_false(filters_seen_has(&unused, "shared"));
    filters_seen_free(&unused);

    assert_int_equal(deliveries(subs, "mine/a").count, 0);
    clients_seen_t seen = deliveries(subs, "shared");
    assert_int_equal(seen.count, 1);
    assert_int_equal(seen.clients[0], 2);
    assert_int_equal(sb_subscriptions_remove(subs, 1, "shared"), SB_NOT_SUBSCRIBED);

    /* a client without filters, and one dropped twice: nothing to report */
    sb_subscriptions_drop_client(subs, 99, record_filter, &unused);
    sb_subscriptions_drop_client(subs, 1, record_filter, &unused);
    assert_int_equal(unused.count, 0);

    /* the dropped client's serial starts afresh (limits included) */
    assert_int_equal(sb_subscriptions_add(subs, 1, "mine/a"), SB_SUBSCRIBED_FIRST);

    sb_subscriptions_drop_client(subs, 2, record_filter, &unused);
    assert_int_equal(unused.count, 1);
    assert_string_equal(unused.filters[0], "shared");
    filters_seen_free(&unused);
    sb_subscriptions_destroy(&subs);
}

static void test_filters_in_use_once_each(void **state)
{
    (void) state;
    sb_subscriptions_t *subs = sb_subscriptions_new(64);
    sb_subscriptions_add(subs, 1, "a/#");
    sb_subscriptions_add(subs, 2, "a/#");
    sb_subscriptions_add(subs, 3, "a/#");
    sb_subscriptions_add(subs, 2, "b/+");
    sb_subscriptions_add(subs, 3, "$sys/clients/+");
    filters_seen_t seen = filters_in_use(subs);
    assert_int_equal(seen.count, 3);
    assert_true(filters_seen_has(&seen, "a/#"));
    assert_true(filters_seen_has(&seen, "b/+"));
    assert_true(filters_seen_has(&seen, "$sys/clients/+"));
    filters_seen_free(&seen);

    sb_subscriptions_remove(subs, 2, "b/+");
    sb_subscriptions_remove(subs, 1, "a/#");
    seen = filters_in_use(subs);
    assert_int_equal(seen.count, 2);
    assert_false(filters_seen_has(&seen, "b/+"));
    assert_true(filters_seen_has(&seen, "a/#"));
    filters_seen_free(&seen);
    sb_subscriptions_destroy(&subs);
}

/* Many clients: each gets one delivery, and large serials work as keys. */
static void test_many_clients(void **state)
{
    (void) state;
    sb_subscriptions_t *subs = sb_subscriptions_new(64);
    for (uint64_t client = 1; client <= 200; client++) {
        uint64_t serial = client * 1000003ULL + (client % 2 ? UINT64_C(1) << 40 : 0);
        sb_subscriptions_add(subs, serial, client % 2 ? "t/+" : "t/#");
        sb_subscriptions_add(subs, serial, "#");
    }
    clients_seen_t seen = deliveries(subs, "t/x");
    assert_int_equal(seen.count, 200);
    for (size_t i = 0; i < seen.count; i++)
        for (size_t j = i + 1; j < seen.count; j++)
            assert_true(seen.clients[i] != seen.clients[j]);
    assert_int_equal(deliveries(subs, "t/x/y").count, 200);   /* t/# and # */
    assert_int_equal(deliveries(subs, "u").count, 200);       /* # */
    sb_subscriptions_destroy(&subs);
}

/* A delivery may close the client, which drops its filters: the walk must
 * not be disturbed by that. */
typedef struct {
    sb_subscriptions_t *subs;
    clients_seen_t seen;
} dropping_t;

static void ignore_filter(void *arg, const char *filter)
{
    (void) arg;
    (void) filter;
}

static void deliver_and_drop(void *arg, uint64_t client)
{
    dropping_t *dropping = arg;
    record_client(&dropping->seen, client);
    sb_subscriptions_drop_client(dropping->subs, client, ignore_filter, NULL);
}

static void test_delivery_that_drops_the_client(void **state)
{
    (void) state;
    dropping_t dropping = { sb_subscriptions_new(64), { 0 } };
    for (uint64_t client = 1; client <= 20; client++) {
        sb_subscriptions_add(dropping.subs, client, "x/#");
        sb_subscriptions_add(dropping.subs, client, "x/+");
    }
    sb_subscriptions_each_client(dropping.subs, "x/y", deliver_and_drop, &dropping);
    assert_int_equal(dropping.seen.count, 20);
    assert_int_equal(deliveries(dropping.subs, "x/y").count, 0);
    filters_seen_t seen = filters_in_use(dropping.subs);
    assert_int_equal(seen.count, 0);
    sb_subscriptions_destroy(&dropping.subs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_and_last_client_of_a_filter),
        cmocka_unit_test(test_filters_are_compared_exactly),
        cmocka_unit_test(test_limit_per_client),
        cmocka_unit_test(test_limit_of_64),
        cmocka_unit_test(test_one_delivery_per_client),
        cmocka_unit_test(test_system_topics),
        cmocka_unit_test(test_nothing_matches),
        cmocka_unit_test(test_drop_client),
        cmocka_unit_test(test_filters_in_use_once_each),
        cmocka_unit_test(test_many_clients),
        cmocka_unit_test(test_delivery_that_drops_the_client),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
