/* test_latency.c — unit tests for the latency histogram (common/latency.c):
 * percentiles of known distributions, the bucket error bound over the
 * whole range, and the edges (empty, zero, values past the last bucket). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "latency.h"

/* Buckets are 1/8 of a power of two wide and report their upper edge. */
#define TOLERANCE 0.13

static void assert_close(uint64_t actual, double expected, const char *what)
{
    double low = expected * (1 - TOLERANCE), high = expected * (1 + TOLERANCE);
    if ((double) actual < low || (double) actual > high)
        fail_msg("%s: %llu is not within 13%% of %.0f", what, (unsigned long long) actual,
                 expected);
}

static void record_range(sb_latency_t *latency, uint64_t from, uint64_t to)
{
    for (uint64_t value = from; value <= to; value++)
        sb_latency_record(latency, value);
}

static void record_many(sb_latency_t *latency, uint64_t value, int times)
{
    for (int i = 0; i < times; i++)
        sb_latency_record(latency, value);
}

static void test_empty_is_zero(void **state)
{
    (void) state;
    sb_latency_t latency;
    memset(&latency, 0, sizeof latency);
    assert_int_equal(sb_latency_percentile(&latency, 0), 0);
    assert_int_equal(sb_latency_percentile(&latency, 50), 0);
    assert_int_equal(sb_latency_percentile(&latency, 100), 0);
}

static void test_uniform_distribution(void **state)
{
    (void) state;
    sb_latency_t latency = { 0 };
    record_range(&latency, 1, 10000);
    assert_int_equal(latency.count, 10000);
    assert_close(sb_latency_percentile(&latency, 10), 1000, "p10");
    assert_close(sb_latency_percentile(&latency, 50), 5000, "p50");
    assert_close(sb_latency_percentile(&latency, 90), 9000, "p90");
    assert_close(sb_latency_percentile(&latency, 99), 9900, "p99");
    assert_close(sb_latency_percentile(&latency, 100), 10000, "p100");
}

static void test_bimodal_distribution(void **state)
{
    (void) state;
    sb_latency_t latency = { 0 };
    record_many(&latency, 200, 900);      /* fast path */
    record_many(&latency, 50000, 100);    /* 10 % slow */
    assert_close(sb_latency_percentile(&latency, 50), 200, "p50");
    assert_close(sb_latency_percentile(&latency, 89), 200, "p89");
    assert_close(sb_latency_percentile(&latency, 91), 50000, "p91");
    assert_close(sb_latency_percentile(&latency, 99), 50000, "p99");
}

/* One recording of `value` must read back as at least `value` and at most
 * one bucket (1/8 of its power of two) above it; below 8 it is exact. */
static void check_single_value(uint64_t value)
{
    sb_latency_t latency = { 0 };
    sb_latency_record(&latency, value);
    uint64_t reported = sb_latency_percentile(&latency, 50);
    if (reported < value || reported > value + value / 8)
        fail_msg("recorded %llu, reported %llu", (unsigned long long) value,
                 (unsigned long long) reported);
}

static void test_bucket_error_bound(void **state)
{
    (void) state;
    for (uint64_t value = 0; value < 4096; value++)
        check_single_value(value);
    /* Around every power of two up to the last bucket (2^42 us, ~51 days). */
    for (unsigned power = 12; power < 42; power++) {
        uint64_t base = 1ULL << power;
        check_single_value(base - 1);
        check_single_value(base);
        check_single_value(base + 1);
        check_single_value(base + base / 3);
        check_single_value(base + base / 2);
    }
}

static void test_small_values_exact(void **state)
{
    (void) state;
    sb_latency_t latency = { 0 };
    record_range(&latency, 0, 7);
    assert_int_equal(sb_latency_percentile(&latency, 0), 0);
    assert_int_equal(sb_latency_percentile(&latency, 50), 3);
    assert_int_equal(sb_latency_percentile(&latency, 100), 7);
}

static void test_percentiles_monotonic(void **state)
{
    (void) state;
    sb_latency_t latency = { 0 };
    for (uint64_t value = 1; value < 1000000; value = value * 3 / 2 + 1)
        record_many(&latency, value, (int) (value % 7) + 1);
    uint64_t previous = 0;
    for (int percent = 0; percent <= 100; percent++) {
        uint64_t current = sb_latency_percentile(&latency, percent);
        if (current < previous)
            fail_msg("p%d = %llu is below p%d = %llu", percent, (unsigned long long) current,
                     percent - 1, (unsigned long long) previous);
        previous = current;
    }
}

/* Values past the last bucket land in it: no overflow, and they still
 * read as the largest latency the histogram can tell. */
static void test_huge_values_clamp(void **state)
{
    (void) state;
    sb_latency_t latency = { 0 };
    sb_latency_record(&latency, 10);
    sb_latency_record(&latency, UINT64_MAX);
    sb_latency_record(&latency, 1ULL << 50);
    assert_int_equal(latency.count, 3);
    assert_int_equal(latency.buckets[SB_LATENCY_BUCKETS - 1], 2);
    assert_true(sb_latency_percentile(&latency, 100) >= (1ULL << 41));
    assert_int_equal(sb_latency_percentile(&latency, 10), 10);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_is_zero),
        cmocka_unit_test(test_uniform_distribution),
        cmocka_unit_test(test_bimodal_distribution),
        cmocka_unit_test(test_bucket_error_bound),
        cmocka_unit_test(test_small_values_exact),
        cmocka_unit_test(test_percentiles_monotonic),
        cmocka_unit_test(test_huge_values_clamp),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
