/* test_access.c — unit tests for the access rules (gateways/access.c), the
 * delay after failed `auth`s (gateways/auth_delay.c), the secret hash
 * (common/secret.c) and the loopback test of listen addresses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "access.h"
#include "address.h"
#include "auth_delay.h"
#include "config.h"
#include "secret.h"


/* A config read from `text` (written to a private temporary file). */
static sb_config_t *config_of(const char *text)
{
    char path[] = "/tmp/sb-test-access-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t) strlen(text));
    close(fd);
    char *error = NULL;
    sb_config_t *config = sb_config_load(path, &error);
    if (!config)
        fail_msg("config: %s", error);
    unlink(path);
    return config;
}

/* panel (sha256 secret, limited rules) and admin (plain secret, the defaults). */
static sb_config_t *panel_config(void)
{
    char hex[SB_SECRET_HEX_SIZE];
    assert_true(sb_secret_hash_hex("panel-secret", 12, hex));
    char *text = NULL;
    assert_true(asprintf(&text,
                         "[token panel]\n"
                         "secret_sha256 = %s\n"
                         "commands = echo sub pub\n"
                         "publish = home/#\n"
                         "subscribe = home/# $sys/clients/+\n"
                         "[token admin]\n"
                         "secret = admin pass\n"
                         "url_token = yes\n", hex) > 0);
    sb_config_t *config = config_of(text);
    free(text);
    return config;
}

static void test_secret_hash(void **state)
{
    (void) state;
    char hex[SB_SECRET_HEX_SIZE];
    assert_true(sb_secret_hash_hex("test", 4, hex));
    assert_string_equal(hex, "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08");
    uint8_t parsed[SB_SECRET_DIGEST_SIZE], digest[SB_SECRET_DIGEST_SIZE];
    assert_true(sb_secret_parse_hex("9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08",
                                    parsed));
    assert_true(sb_secret_digest("test", 4, digest));
    assert_true(sb_secret_digests_equal(parsed, digest));
    digest[31] ^= 1;
    assert_false(sb_secret_digests_equal(parsed, digest));
    assert_false(sb_secret_parse_hex("9f86", parsed));
    assert_false(sb_secret_parse_hex("g f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a0", parsed));
}

static void test_authenticate(void **state)
{
    (void) state;
    sb_config_t *config = panel_config();
    sb_access_t *access = sb_access_new(config);
    assert_true(sb_access_enabled(access));
    const sb_identity_t *panel = sb_access_authenticate(access, "panel", "panel-secret");
    assert_non_null(panel);
    assert_string_equal(sb_identity_token(panel), "panel");
    assert_null(sb_access_authenticate(access, "panel", "panel-secret "));
    assert_null(sb_access_authenticate(access, "panel", ""));
    assert_null(sb_access_authenticate(access, "nobody", "panel-secret"));
    assert_null(sb_access_authenticate(access, "pane", "panel-secret"));    /* names match whole */
    assert_null(sb_access_authenticate(access, "panelx", "panel-secret"));
    const sb_identity_t *admin = sb_access_authenticate(access, "admin", "admin pass");
    assert_non_null(admin);
    assert_ptr_equal(sb_access_authenticate_pair(access, "admin:admin pass"), admin);
    assert_ptr_equal(sb_access_authenticate_pair(access, "panel:panel-secret"), panel);
    assert_null(sb_access_authenticate_pair(access, "panel"));
    assert_null(sb_access_authenticate_pair(access, ":panel-secret"));
    assert_null(sb_access_authenticate_pair(access, "pa nel:panel-secret"));
    assert_null(sb_identity_token(sb_access_anonymous(access)));
    sb_access_destroy(&access);
    assert_null(access);
    sb_config_destroy(&config);
}

static void test_rules_and_defaults(void **state)
{
    (void) state;
    sb_config_t *config = panel_config();
    sb_access_t *access = sb_access_new(config);
    const sb_identity_t *panel = sb_access_authenticate(access, "panel", "panel-secret");
    assert_true(sb_identity_may_run(panel, "echo"));
    assert_false(sb_identity_may_run(panel, "time"));
    assert_false(sb_identity_may_run(panel, "ech"));
    assert_true(sb_identity_may_publish(panel, "home/kitchen/temp"));
    assert_false(sb_identity_may_publish(panel, "other/x"));
    assert_true(sb_identity_may_subscribe(panel, "#"));            /* given only home/... */
    assert_true(sb_identity_may_subscribe(panel, "home/+/temp"));
    assert_true(sb_identity_may_subscribe(panel, "$sys/clients/#"));
    assert_false(sb_identity_may_subscribe(panel, "other/#"));
    assert_false(sb_identity_may_subscribe(panel, "$sys/stats"));
    assert_true(sb_identity_may_receive(panel, "home/x"));
    assert_true(sb_identity_may_receive(panel, "$sys/clients/tcp-1"));
    assert_false(sb_identity_may_receive(panel, "other/x"));
    assert_false(sb_identity_may_receive(panel, "$sys/other/x"));
    /* A token without lists: everything, the hub's $sys topics included. */
    const sb_identity_t *admin = sb_access_authenticate(access, "admin", "admin pass");
    assert_true(sb_identity_may_run(admin, "anything-external"));
    assert_true(sb_identity_may_publish(admin, "a/b"));
    assert_true(sb_identity_may_subscribe(admin, "$sys/#"));
    assert_true(sb_identity_may_receive(admin, "$sys/clients/tcp-1"));
    /* Only a token that says so may be given in a URL. */
    assert_true(sb_identity_allows_url_token(admin));
    assert_false(sb_identity_allows_url_token(panel));
    assert_false(sb_identity_allows_url_token(sb_access_anonymous(access)));
    /* Anonymous with tokens and no [anonymous]: ping help quit auth, no topics. */
    const sb_identity_t *anonymous = sb_access_anonymous(access);
    const char *allowed[] = { "ping", "help", "quit", "auth" };
    for (size_t i = 0; i < 4; i++)
        assert_true(sb_identity_may_run(anonymous, allowed[i]));
    assert_false(sb_identity_may_run(anonymous, "echo"));
    assert_false(sb_identity_may_run(anonymous, "stats"));
    assert_false(sb_identity_may_publish(anonymous, "a"));
    assert_false(sb_identity_may_subscribe(anonymous, "#"));
    assert_false(sb_identity_may_receive(anonymous, "a"));
    sb_access_destroy(&access);
    sb_config_destroy(&config);
}

static void test_anonymous_section_and_no_rules(void **state)
{
    (void) state;
    sb_config_t *config = config_of("[anonymous]\ncommands = ping echo\nsubscribe = public/#\n");
    sb_access_t *access = sb_access_new(config);
    assert_true(sb_access_enabled(access));   /* [anonymous] alone is a rule set */
    const sb_identity_t *anonymous = sb_access_anonymous(access);
    assert_true(sb_identity_may_run(anonymous, "echo"));
    assert_false(sb_identity_may_run(anonymous, "auth"));
    assert_true(sb_identity_may_receive(anonymous, "public/news"));
    assert_false(sb_identity_may_publish(anonymous, "public/news"));   /* default: none */
    assert_null(sb_access_authenticate(access, "anyone", "x"));
    sb_access_destroy(&access);
    sb_config_destroy(&config);

    /* No config, or one without the sections: everything, as before tokens. */
    access = sb_access_new(NULL);
    assert_false(sb_access_enabled(access));
    anonymous = sb_access_anonymous(access);
    assert_true(sb_identity_may_run(anonymous, "time"));
    assert_true(sb_identity_may_publish(anonymous, "a/b"));
    assert_true(sb_identity_may_subscribe(anonymous, "#"));
    assert_true(sb_identity_may_receive(anonymous, "$sys/clients/x"));
    sb_access_destroy(&access);
}

static void test_failure_delays(void **state)
{
    (void) state;
    sb_auth_delay_t *delays = sb_auth_delay_new(4);
    const uint32_t expected[] = { 0, 0, 0, 250, 500, 1000, 2000, 4000, 8000, 8000, 8000 };
    for (size_t i = 0; i < sizeof expected / sizeof expected[0]; i++)
        assert_int_equal(sb_auth_delay_failed(delays, "10.0.0.1", 1000 + (int64_t) i),
                         expected[i]);
    /* The last delay (8 s, from 1010) still runs at 1010 + 5000 and is over at 9010. */
    assert_int_equal(sb_auth_delay_remaining(delays, "10.0.0.1", 1010 + 5000), 3000);
    assert_int_equal(sb_auth_delay_remaining(delays, "10.0.0.1", 1010 + 8000), 0);
    assert_int_equal(sb_auth_delay_remaining(delays, "10.9.9.9", 1010), 0);
    assert_int_equal(sb_auth_delay_failed(delays, "10.0.0.2", 2000), 0);   /* its own count */
    assert_int_equal(sb_auth_delay_remaining(delays, "10.0.0.2", 2000), 0);
    /* Long quiet: forgotten. */
    for (int i = 0; i < 5; i++)
        sb_auth_delay_failed(delays, "10.0.0.3", 4000);
    assert_int_equal(sb_auth_delay_failed(delays, "10.0.0.3", 4000 + SB_AUTH_FORGET_MS + 1), 0);
    sb_auth_delay_destroy(&delays);
    assert_null(delays);
}

/* An IPv6 host picks addresses from its /64 at will: they share one count. */
static void test_ipv6_failures_count_by_their_64(void **state)
{
    (void) state;
    sb_auth_delay_t *delays = sb_auth_delay_new(8);
    const char *same_64[] = { "2001:db8:1:2::1", "2001:db8:1:2:aaaa::7", "2001:db8:1:2::ff" };
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(sb_auth_delay_failed(delays, same_64[i], 100), 0);
    assert_int_equal(sb_auth_delay_failed(delays, "2001:db8:1:2:ffff:ffff:ffff:fffe", 100), 250);
    assert_int_equal(sb_auth_delay_remaining(delays, "2001:db8:1:2::9", 100), 250);
    assert_int_equal(sb_auth_delay_remaining(delays, "2001:db8:1:3::1", 100), 0);   /* next /64 */
    assert_int_equal(sb_auth_delay_failed(delays, "2001:db8:1:3::1", 100), 0);
    /* IPv4, also written as IPv4-mapped IPv6, counts by the whole address. */
    for (int i = 0; i < 3; i++)
        sb_auth_delay_failed(delays, "10.1.1.1", 100);
    assert_int_equal(sb_auth_delay_failed(delays, "::ffff:10.1.1.1", 100), 250);
    assert_int_equal(sb_auth_delay_remaining(delays, "10.1.1.2", 100), 0);
    sb_auth_delay_destroy(&delays);
}

/* A full table forgets the address whose last failure is oldest, not a recent one. */
static void test_failure_table_is_bounded(void **state)
{
    (void) state;
    sb_auth_delay_t *delays = sb_auth_delay_new(2);
    for (int i = 0; i < 4; i++)
        sb_auth_delay_failed(delays, "old", 10);
    for (int i = 0; i < 4; i++)
        sb_auth_delay_failed(delays, "busy", 20 + i);
    sb_auth_delay_failed(delays, "third", 30);            /* "old" goes */
    assert_int_equal(sb_auth_delay_failed(delays, "busy", 31), 500);
    assert_int_equal(sb_auth_delay_failed(delays, "old", 32), 0);
    char many[64];
    for (int i = 0; i < 1000; i++) {
        snprintf(many, sizeof many, "10.1.%d.%d", i / 256, i % 256);
        sb_auth_delay_failed(delays, many, 40 + i);
    }
    sb_auth_delay_destroy(&delays);
}

static void test_addresses(void **state)
{
    (void) state;
    char host[64];
    sb_address_host("127.0.0.1:5000", host, sizeof host);
    assert_string_equal(host, "127.0.0.1");
    sb_address_host("[::1]:5000", host, sizeof host);
    assert_string_equal(host, "::1");
    assert_true(sb_address_is_loopback("127.0.0.1:7000"));
    assert_true(sb_address_is_loopback("127.1.2.3:7000"));
    assert_true(sb_address_is_loopback("localhost:7000"));
    assert_true(sb_address_is_loopback("[::1]:7000"));
    assert_false(sb_address_is_loopback("0.0.0.0:7000"));
    assert_false(sb_address_is_loopback("192.168.1.2:7000"));
    assert_false(sb_address_is_loopback("[::]:7000"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_secret_hash),
        cmocka_unit_test(test_authenticate),
        cmocka_unit_test(test_rules_and_defaults),
        cmocka_unit_test(test_anonymous_section_and_no_rules),
        cmocka_unit_test(test_failure_delays),
        cmocka_unit_test(test_ipv6_failures_count_by_their_64),
        cmocka_unit_test(test_failure_table_is_bounded),
        cmocka_unit_test(test_addresses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
