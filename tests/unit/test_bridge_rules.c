/* test_bridge_rules.c — unit tests for a bridge's topic rules
 * (common/bridge_config.c reads them, gateways/bridge/bridge_rules.c maps
 * topics with them) and its echo memory (echo_memory.c): prefixes rewritten
 * both ways, direction kept, the first rule wins, bad rules refused, and an
 * echo recognised once, oldest first, until it expires. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "bridge_config.h"
#include "bridge_rules.h"
#include "echo_memory.h"

static void set_ok(sb_bridge_config_t *config, const char *key, const char *value)
{
    char reason[512] = "";
    bool ok = sb_bridge_config_set(config, key, value, 1, reason, sizeof reason);
    if (!ok)
        fail_msg("%s = %s: %s", key, value, reason);
}

static void test_prefixes_are_rewritten_both_ways(void **state)
{
    (void) state;
    sb_bridge_config_t config;
    sb_bridge_config_init(&config, "cloud", 1);
    set_ok(&config, "topic", "sensors/# out 1 house/ sites/house/");
    set_ok(&config, "topic", "cmd/# in 1 house/ \"sites/house/\"");
    set_ok(&config, "topic", "shared/+ both");
    char out[256];
    const sb_bridge_rule_t *rule = sb_bridge_rules_outbound(&config, "house/sensors/t", out,
                                                            sizeof out);
    assert_non_null(rule);
    assert_string_equal(out, "sites/house/sensors/t");
    assert_int_equal(rule->qos, 1);
    assert_null(sb_bridge_rules_inbound(&config, "sites/house/sensors/t", out, sizeof out));
    assert_non_null(sb_bridge_rules_inbound(&config, "sites/house/cmd/lamp", out, sizeof out));
    assert_string_equal(out, "house/cmd/lamp");
    assert_null(sb_bridge_rules_outbound(&config, "house/cmd/lamp", out, sizeof out));
    assert_non_null(sb_bridge_rules_outbound(&config, "shared/x", out, sizeof out));
    assert_string_equal(out, "shared/x");
    assert_non_null(sb_bridge_rules_inbound(&config, "shared/y", out, sizeof out));
    assert_null(sb_bridge_rules_inbound(&config, "shared/y/z", out, sizeof out));
    assert_null(sb_bridge_rules_outbound(&config, "elsewhere", out, sizeof out));
    /* "house/sensors/#" matches "house/sensors" too: the pattern's own level, kept. */
    assert_non_null(sb_bridge_rules_outbound(&config, "house/sensors", out, sizeof out));
    assert_string_equal(out, "sites/house/sensors");
    sb_bridge_rule_filter(&config.rules[1], false, out, sizeof out);
    assert_string_equal(out, "sites/house/cmd/#");
    sb_bridge_config_free(&config);
}

static void test_bad_rules_and_keys_are_refused(void **state)
{
    (void) state;
    sb_bridge_config_t config;
    sb_bridge_config_init(&config, "cloud", 1);
    char reason[512];
    static const char *const bad[][2] = {
        { "topic", "a/# sideways" }, { "topic", "a/# in 3" }, { "topic", "a/# in 1 x/+/ y/" },
        { "topic", "a/#/b" }, { "topic", "a b c d e f" }, { "topic", "\"unterminated" },
        { "address", "nowhere" }, { "address", "host:99999" }, { "version", "4" },
        { "password", "secret" }, { "clean", "maybe" }, { "keepalive", "1" },
        { "max_queued", "-1" }, { "colour", "blue" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (sb_bridge_config_set(&config, bad[i][0], bad[i][1], 1, reason, sizeof reason))
            fail_msg("accepted %s = %s", bad[i][0], bad[i][1]);
    assert_int_equal(config.rule_count, 0);
    set_ok(&config, "version", "3.1.1");
    assert_int_equal(config.version, 4);
    set_ok(&config, "address", "[::1]:1883");
    set_ok(&config, "address", "broker.example:8883");
    assert_int_equal(config.address_count, 2);
    sb_bridge_config_free(&config);
}

static void count_problem(void *arg, int line, const char *reason)
{
    (void) line;
    (void) reason;
    (*(int *) arg)++;
}

static int pair_problems(const char *a_rule, const char *a_address, const char *b_rule,
                         const char *b_address)
{
    sb_bridge_config_t a, b;
    sb_bridge_config_init(&a, "a", 1);
    sb_bridge_config_init(&b, "b", 1);
    set_ok(&a, "topic", a_rule);
    set_ok(&a, "address", a_address);
    set_ok(&b, "topic", b_rule);
    set_ok(&b, "address", b_address);
    int problems = 0;
    sb_bridge_config_check_pair(&a, &b, count_problem, &problems);
    sb_bridge_config_free(&a);
    sb_bridge_config_free(&b);
    return problems;
}

static void test_two_bridges_that_would_pass_messages_round_are_refused(void **state)
{
    (void) state;
    assert_int_equal(pair_problems("x/# in", "h:1", "x/# out", "h:1"), 1);
    assert_int_equal(pair_problems("x/# both", "h:1", "x/+ both", "h:1"), 1);
    assert_int_equal(pair_problems("x/# in", "h:1", "x/# out", "other:1"), 0);
    /* Apart on the remote: b sends b/x/..., a takes in a/x/... */
    assert_int_equal(pair_problems("x/# in 0 \"\" a/", "h:1", "x/# out 0 \"\" b/", "h:1"), 0);
    assert_int_equal(pair_problems("x/# in", "h:1", "y/# out", "h:1"), 0);
}

static void test_an_echo_is_recognised_once_until_it_expires(void **state)
{
    (void) state;
    sb_echo_memory_t *memory = sb_echo_memory_new(4, 1000);
    sb_echo_memory_add(memory, "a/b", "on", 2, 0);
    sb_echo_memory_add(memory, "a/b", "on", 2, 10);
    assert_false(sb_echo_memory_take(memory, "a/b", "off", 3, 20));
    assert_false(sb_echo_memory_take(memory, "a/c", "on", 2, 20));
    assert_true(sb_echo_memory_take(memory, "a/b", "on", 2, 20));
    assert_true(sb_echo_memory_take(memory, "a/b", "on", 2, 20));
    assert_false(sb_echo_memory_take(memory, "a/b", "on", 2, 20));
    sb_echo_memory_add(memory, "late", "", 0, 0);
    assert_false(sb_echo_memory_take(memory, "late", "", 0, 5000));   /* expired */
    for (int i = 0; i < 5; i++)   /* a full memory forgets the oldest */
        sb_echo_memory_add(memory, "t", &i, sizeof i, 100);
    int first = 0;
    assert_false(sb_echo_memory_take(memory, "t", &first, sizeof first, 100));
    sb_echo_memory_destroy(&memory);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_prefixes_are_rewritten_both_ways),
        cmocka_unit_test(test_bad_rules_and_keys_are_refused),
        cmocka_unit_test(test_two_bridges_that_would_pass_messages_round_are_refused),
        cmocka_unit_test(test_an_echo_is_recognised_once_until_it_expires),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
