/* test_backoff.c — unit tests for exponential backoff with jitter
 * (common/backoff.c): the growth sequence, the cap, reset, the jitter
 * range, clamping of odd parameters and reproducibility by seed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "backoff.h"

#define SEED 42

/* Draws `count` delays and checks them against `expected`. */
static void expect_delays(sb_backoff_t *backoff, const long *expected, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        long delay = sb_backoff_next_delay(backoff);
        if (delay != expected[i])
            fail_msg("delay %zu: expected %ld, got %ld", i, expected[i], delay);
    }
}

/* A backoff without jitter: its delays are the bases of a jittered twin. */
static sb_backoff_t exact(long initial_ms, double factor, long max_ms)
{
    sb_backoff_t backoff;
    sb_backoff_init(&backoff, initial_ms, factor, max_ms, 0.0, SEED);
    return backoff;
}

static void test_first_delay_is_initial(void **state)
{
    (void) state;
    sb_backoff_t backoff = exact(250, 2.0, 10000);
    assert_int_equal(sb_backoff_next_delay(&backoff), 250);
}

static void test_grows_by_factor(void **state)
{
    (void) state;
    sb_backoff_t doubling = exact(100, 2.0, 1000000);
    expect_delays(&doubling, (const long[]) { 100, 200, 400, 800, 1600, 3200 }, 6);

    sb_backoff_t tripling = exact(10, 3.0, 1000000);
    expect_delays(&tripling, (const long[]) { 10, 30, 90, 270, 810 }, 5);
}

static void test_capped_at_max(void **state)
{
    (void) state;
    sb_backoff_t backoff = exact(100, 3.0, 1000);
    expect_delays(&backoff, (const long[]) { 100, 300, 900, 1000, 1000, 1000 }, 6);

    /* Many more doublings must neither overflow nor leave the cap. */
    for (int i = 0; i < 200; i++)
        assert_int_equal(sb_backoff_next_delay(&backoff), 1000);
}

static void test_reset_returns_to_initial(void **state)
{
    (void) state;
    sb_backoff_t backoff = exact(100, 2.0, 30000);
    for (int i = 0; i < 10; i++)
        sb_backoff_next_delay(&backoff);
    assert_int_equal(sb_backoff_next_delay(&backoff), 30000);

    sb_backoff_reset(&backoff);
    expect_delays(&backoff, (const long[]) { 100, 200, 400 }, 3);
}

/* Every jittered delay lies in [base * (1 - jitter), base], where base is
 * what the same backoff without jitter returns; and the jitter is really
 * used: the delays spread over the lower and the upper half of the range. */
static void check_jitter_range(double jitter, uint64_t seed)
{
    sb_backoff_t jittered, twin = exact(100, 1.5, 5000);
    sb_backoff_init(&jittered, 100, 1.5, 5000, jitter, seed);
    int low = 0, high = 0;
    for (int i = 0; i < 1000; i++) {
        if (i % 20 == 0) {   /* revisit the small bases, not only the cap */
            sb_backoff_reset(&jittered);
            sb_backoff_reset(&twin);
        }
        long base = sb_backoff_next_delay(&twin);
        long delay = sb_backoff_next_delay(&jittered);
        double floor = (double) base * (1.0 - jitter);
        if ((double) delay < floor - 1e-6 || delay > base)
            fail_msg("draw %d: delay %ld outside [%.1f, %ld]", i, delay, floor, base);
        if ((double) delay < (double) base * (1.0 - jitter / 2))
            low++;
        else
            high++;
    }
    assert_true(low > 100);
    assert_true(high > 100);
}

static void test_jitter_within_range(void **state)
{
    (void) state;
    check_jitter_range(0.5, SEED);
    check_jitter_range(0.5, 7);
    check_jitter_range(0.2, SEED);
    check_jitter_range(1.0, SEED);
}

/* Seed 0 is documented nowhere as special, but a zero xorshift state never
 * changes: it must still give jittered delays. */
static void test_seed_zero_still_jitters(void **state)
{
    (void) state;
    check_jitter_range(0.5, 0);
}

static void draw(sb_backoff_t *backoff, long *out, size_t count)
{
    for (size_t i = 0; i < count; i++)
        out[i] = sb_backoff_next_delay(backoff);
}

static void test_same_seed_same_sequence(void **state)
{
    (void) state;
    enum { N = 64 };
    long first[N], second[N], other[N];
    sb_backoff_t a, b, c;
    sb_backoff_init(&a, 100, 2.0, 30000, 0.5, 1234);
    sb_backoff_init(&b, 100, 2.0, 30000, 0.5, 1234);
    sb_backoff_init(&c, 100, 2.0, 30000, 0.5, 4321);
    draw(&a, first, N);
    draw(&b, second, N);
    draw(&c, other, N);
    assert_memory_equal(first, second, sizeof first);
    assert_memory_not_equal(first, other, sizeof first);
}

static void test_odd_parameters_clamped(void **state)
{
    (void) state;
    /* A factor below 1 would shrink the delay: it is taken as 1. */
    sb_backoff_t shrinking = exact(500, 0.5, 10000);
    expect_delays(&shrinking, (const long[]) { 500, 500, 500 }, 3);

    /* A max below the initial delay is raised to it. */
    sb_backoff_t low_max = exact(500, 2.0, 100);
    expect_delays(&low_max, (const long[]) { 500, 500, 500 }, 3);

    /* A negative jitter is 0. */
    sb_backoff_t negative;
    sb_backoff_init(&negative, 100, 2.0, 1000, -0.5, SEED);
    expect_delays(&negative, (const long[]) { 100, 200, 400, 800, 1000 }, 5);

    /* A jitter above 1 is 1: delays stay within [0, base]. */
    sb_backoff_t huge;
    sb_backoff_init(&huge, 1000, 1.0, 1000, 5.0, SEED);
    for (int i = 0; i < 200; i++) {
        long delay = sb_backoff_next_delay(&huge);
        assert_in_range(delay, 0, 1000);
    }
}

/* With a small initial delay and a fractional factor the base must still
 * grow: truncating 1 * 1.5 back to 1 on every step would keep the retry
 * at 1 ms for ever. */
static void test_small_initial_still_grows(void **state)
{
    (void) state;
    sb_backoff_t backoff = exact(1, 1.5, 1000);
    long delay = 0;
    for (int i = 0; i < 30; i++)
        delay = sb_backoff_next_delay(&backoff);
    assert_int_equal(delay, 1000);   /* 1.5^17 > 1000 already */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_delay_is_initial),
        cmocka_unit_test(test_grows_by_factor),
        cmocka_unit_test(test_capped_at_max),
        cmocka_unit_test(test_reset_returns_to_initial),
        cmocka_unit_test(test_jitter_within_range),
        cmocka_unit_test(test_seed_zero_still_jitters),
        cmocka_unit_test(test_same_seed_same_sequence),
        cmocka_unit_test(test_odd_parameters_clamped),
        cmocka_unit_test(test_small_initial_still_grows),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
