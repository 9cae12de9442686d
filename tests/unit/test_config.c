/* test_config.c — unit tests for the INI config file (common/config.c):
 * [service], [command], [device], [token] and [anonymous] sections with their defaults, raw program
 * values with their line numbers, and errors that name file:line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "config_check.h"

/* ------------------------------------------------------------------ */
/* Helpers                                                              */

/* Each test gets a temporary file it fills with write_ini(). */
typedef struct {
    char path[64];
    sb_config_t *config;
    char *error;
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    snprintf(f->path, sizeof f->path, "/tmp/sb-test-config-XXXXXX");
    int fd = mkstemp(f->path);
    if (fd < 0) {
        free(f);
        return -1;
    }
    close(fd);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    sb_config_destroy(&f->config);
    free(f->error);
    unlink(f->path);
    free(f);
    return 0;
}

static void write_ini(fixture_t *f, const char *text)
{
    FILE *file = fopen(f->path, "w");
    assert_non_null(file);
    assert_int_equal(fputs(text, file) >= 0, 1);
    assert_int_equal(fclose(file), 0);
}

/* Writes `text` and loads it, which must succeed. */
static const sb_config_t *load_ok(fixture_t *f, const char *text)
{
    write_ini(f, text);
    f->config = sb_config_load(f->path, &f->error);
    if (!f->config)
        fail_msg("load failed: %s", f->error ? f->error : "(no error)");
    assert_null(f->error);
    return f->config;
}

/* Writes `text` and loads it, which must fail with an error that starts
 * with "PATH:LINE: " and contains `reason`. */
static void expect_error(fixture_t *f, const char *text, int line, const char *reason)
{
    write_ini(f, text);
    f->config = sb_config_load(f->path, &f->error);
    assert_null(f->config);
    assert_non_null(f->error);
    char prefix[128];
    snprintf(prefix, sizeof prefix, "%s:%d: ", f->path, line);
    if (strncmp(f->error, prefix, strlen(prefix)) != 0 || !strstr(f->error, reason))
        fail_msg("expected '%s...%s...', got '%s'", prefix, reason, f->error);
    free(f->error);
    f->error = NULL;
}

static const sb_command_config_t *command(const sb_config_t *config, const char *name)
{
    const sb_command_config_t *found = sb_config_command(config, name);
    if (!found)
        fail_msg("no [command %s]", name);
    return found;
}

static void expect_command(const sb_config_t *config, const char *name, const char *service,
                           uint32_t timeout_ms)
{
    const sb_command_config_t *found = command(config, name);
    assert_string_equal(found->name, name);
    assert_string_equal(found->service, service);
    assert_int_equal(found->timeout_ms, timeout_ms);
}

static void expect_workers(const sb_config_t *config, const char *name, int workers)
{
    const sb_service_config_t *found = sb_config_service(config, name);
    if (!found)
        fail_msg("no [service %s]", name);
    assert_string_equal(found->name, name);
    assert_int_equal(found->workers, workers);
}

static void expect_timeout(fixture_t *f, const char *value, uint32_t timeout_ms)
{
    char text[128];
    snprintf(text, sizeof text, "[command c]\ntimeout = %s\n", value);
    const sb_config_t *config = load_ok(f, text);
    expect_command(config, "c", SB_DEFAULT_SERVICE, timeout_ms);
    sb_config_destroy(&f->config);
}

/* ------------------------------------------------------------------ */
/* Successful loads                                                     */

static void test_services_and_commands(void **state)
{
    fixture_t *f = *state;
    const sb_config_t *config = load_ok(f,
        "# comment\n"
        "[service default]\n"
        "workers = 2\n"
        "\n"
        "[service slow]\n"
        "workers = 0\n"
        "[command sleep]\n"
        "service = slow\n"
        "timeout = 60\n"
        "[command quick]\n"
        "timeout = 0.5\n");
    assert_string_equal(sb_config_path(config), f->path);

    assert_int_equal(sb_config_service_count(config), 2);
    assert_string_equal(sb_config_service_at(config, 0)->name, "default");
    assert_string_equal(sb_config_service_at(config, 1)->name, "slow");
    assert_null(sb_config_service_at(config, 2));
    expect_workers(config, "default", 2);
    expect_workers(config, "slow", 0);
    assert_null(sb_config_service(config, "fast"));

    assert_int_equal(sb_config_command_count(config), 2);
    assert_string_equal(sb_config_command_at(config, 0)->name, "sleep");
    assert_string_equal(sb_config_command_at(config, 1)->name, "quick");
    assert_null(sb_config_command_at(config, 2));
    expect_command(config, "sleep", "slow", 60000);
    expect_command(config, "quick", SB_DEFAULT_SERVICE, 500);
    assert_null(sb_config_command(config, "echo"));
}

static void test_command_defaults(void **state)
{
    fixture_t *f = *state;
    const sb_config_t *config = load_ok(f,
        "[command routed]\n"
        "service = slow\n"
        "[command timed]\n"
        "timeout = 3\n");
    expect_command(config, "routed", "slow", 0);
    expect_command(config, "timed", SB_DEFAULT_SERVICE, 3000);
    assert_string_equal(SB_DEFAULT_SERVICE, "default");
}

/* A section that appears twice adds to the same entry; the last value wins. */
static void test_repeated_sections_merge(void **state)
{
    fixture_t *f = *state;
    const sb_config_t *config = load_ok(f,
        "[command sleep]\n"
        "service = slow\n"
        "timeout = 5\n"
        "[service slow]\n"
        "workers = 1\n"
        "[command sleep]\n"
        "timeout = 7\n"
        "[service slow]\n"
        "workers = 4\n");
    assert_int_equal(sb_config_command_count(config), 1);
    assert_int_equal(sb_config_service_count(config), 1);
    expect_command(config, "sleep", "slow", 7000);
    expect_workers(config, "slow", 4);
}

static void test_timeout_values(void **state)
{
    fixture_t *f = *state;
    expect_timeout(f, "0.5", 500);
    expect_timeout(f, "1", 1000);
    expect_timeout(f, "2.25", 2250);
    expect_timeout(f, "0.001", 1);
    expect_timeout(f, "2.0006", 2001);    /* rounded to the millisecond */
    expect_timeout(f, "86400", 86400000);
    expect_timeout(f, "5 ; inline comment", 5000);
}

static void test_workers_upper_bound(void **state)
{
    fixture_t *f = *state;
    expect_workers(load_ok(f, "[service s]\nworkers = 256\n"), "s", 256);
}

static void test_program_values(void **state)
{
    fixture_t *f = *state;
    const sb_config_t *config = load_ok(f,
        "[broker]\n"                        /* 1 */
        "queue_max = 1000\n"                /* 2 */
        "; comment\n"                       /* 3 */
        "\n"                                /* 4 */
        "[log]\n"                           /* 5 */
        "level = debug\n"                   /* 6 */
        "[gateway-tcp]\n"                   /* 7 */
        "listen = tcp://*:7000\n");         /* 8 */
    assert_string_equal(sb_config_value(config, "broker", "queue_max"), "1000");
    assert_int_equal(sb_config_value_line(config, "broker", "queue_max"), 2);
    assert_string_equal(sb_config_value(config, "log", "level"), "debug");
    assert_int_equal(sb_config_value_line(config, "log", "level"), 6);
    assert_string_equal(sb_config_value(config, "gateway-tcp", "listen"), "tcp://*:7000");
    assert_int_equal(sb_config_value_line(config, "gateway-tcp", "listen"), 8);

    /* Unset: the key elsewhere, or in another section, does not count. */
    assert_null(sb_config_value(config, "broker", "level"));
    assert_int_equal(sb_config_value_line(config, "broker", "level"), 0);
    assert_null(sb_config_value(config, "workers", "queue_max"));
    assert_int_equal(sb_config_value_line(config, "workers", "queue_max"), 0);
}

static void test_last_assignment_wins(void **state)
{
    fixture_t *f = *state;
    const sb_config_t *config = load_ok(f,
        "[broker]\n"                        /* 1 */
        "queue_max = 1\n"                   /* 2 */
        "queue_max = 2\n"                   /* 3 */
        "[log]\n"                           /* 4 */
        "level = warn\n"                    /* 5 */
        "[broker]\n"                        /* 6 */
        "queue_max = 3\n"                   /* 7 */
        "[launcher]\n"                      /* 8 */
        "queue_max = 99\n");                /* 9: another section */
    assert_string_equal(sb_config_value(config, "broker", "queue_max"), "3");
    assert_int_equal(sb_config_value_line(config, "broker", "queue_max"), 7);
    assert_string_equal(sb_config_value(config, "launcher", "queue_max"), "99");
}

static void test_empty_config(void **state)
{
    (void) state;
    sb_config_t *config = sb_config_new();
    assert_non_null(config);
    assert_null(sb_config_path(config));
    assert_int_equal(sb_config_service_count(config), 0);
    assert_int_equal(sb_config_command_count(config), 0);
    assert_null(sb_config_service_at(config, 0));
    assert_null(sb_config_command_at(config, 0));
    assert_null(sb_config_value(config, "broker", "queue_max"));
    assert_int_equal(sb_config_value_line(config, "broker", "queue_max"), 0);
    sb_config_destroy(&config);
    assert_null(config);
    sb_config_destroy(&config);   /* NULL-safe */
}

static void test_empty_file(void **state)
{
    fixture_t *f = *state;
    const sb_config_t *config = load_ok(f, "");
    assert_int_equal(sb_config_service_count(config), 0);
    assert_int_equal(sb_config_command_count(config), 0);
}

/* ------------------------------------------------------------------ */
/* Errors                                                               */

static void test_missing_file(void **state)
{
    (void) state;
    char *error = NULL;
    sb_config_t *config = sb_config_load("/nonexistent/switchboard.conf", &error);
    assert_null(config);
    assert_non_null(error);
    assert_non_null(strstr(error, "/nonexistent/switchboard.conf: cannot open"));
    free(error);
}

static void test_unknown_section(void **state)
{
    fixture_t *f = *state;
    expect_error(f, "[broker]\nqueue_max = 1\n\n[brokr]\nqueue_max = 2\n", 4,
                 "unknown section [brokr]");
    /* "service" / "command" without a name is not a pool or a command. */
    expect_error(f, "# pools\n[service]\nworkers = 1\n", 2, "unknown section [service]");
    expect_error(f, "[commandx y]\ntimeout = 1\n", 1, "unknown section [commandx y]");
}

static void test_unknown_key_in_command(void **state)
{
    fixture_t *f = *state;
    expect_error(f, "[command sleep]\nservice = slow\n\ntimeot = 5\n", 4,
                 "unknown key 'timeot' in [command sleep]");
}

static void test_unknown_key_in_service(void **state)
{
    fixture_t *f = *state;
    expect_error(f, "[service slow]\nworker = 2\n", 2, "unknown key 'worker' in [service slow]");
}

static void test_bad_workers(void **state)
{
    fixture_t *f = *state;
    static const char *bad[] = { "many", "-1", "257", "2.5", "3x", "", "99999999999999999999" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char text[128];
        snprintf(text, sizeof text, "; pools\n[service s]\nworkers = %s\n", bad[i]);
        expect_error(f, text, 3, "workers must be a whole number from 0 to 256");
    }
}

static void test_bad_timeout(void **state)
{
    fixture_t *f = *state;
    static const char *bad[] = { "0", "-1", "abc", "5s", "86401", "nan", "inf", "" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char text[128];
        snprintf(text, sizeof text, "[command c]\nservice = x\ntimeout = %s\n", bad[i]);
        expect_error(f, text, 3, "timeout must be seconds");
    }
}

static void test_bad_service_name(void **state)
{
    fixture_t *f = *state;
    expect_error(f, "[command c]\nservice = two words\n", 2, "service must be one word");
    expect_error(f, "[command c]\nservice =\n", 2, "service must be one word");
}

static void test_key_outside_section(void **state)
{
    fixture_t *f = *state;
    expect_error(f, "# leading comment\n\nworkers = 2\n[service s]\n", 3,
                 "'workers' is outside any [section]");
}

static void test_syntax_error(void **state)
{
    fixture_t *f = *state;
    expect_error(f, "[broker]\nqueue_max = 1\nthis line has no equals sign\n", 3,
                 "expected 'key = value'");
    expect_error(f, "# broken header\n[broker\n", 2, "section header without ']'");
}

/* A line longer than inih's buffer (INI_MAX_LINE, 200 in Debian's build,
 * which cannot grow it) must be either read whole or refused on its own
 * line; never cut into a shorter value or blamed on the next line. */
static void test_long_line(void **state)
{
    fixture_t *f = *state;
    char value[301], text[400];
    memset(value, 'a', sizeof value - 1);
    value[sizeof value - 1] = '\0';
    snprintf(text, sizeof text, "[broker]\nname = %s\nqueue_max = 1\n", value);
    write_ini(f, text);
    f->config = sb_config_load(f->path, &f->error);
    if (f->config) {
        assert_string_equal(sb_config_value(f->config, "broker", "name"), value);
        assert_int_equal(sb_config_value_line(f->config, "broker", "queue_max"), 3);
        return;
    }
    char prefix[128];
    snprintf(prefix, sizeof prefix, "%s:2: ", f->path);
    if (strncmp(f->error, prefix, strlen(prefix)) != 0)
        fail_msg("a long line 2 was reported as '%s'", f->error);
}

/* The header promises the first problem. inih is built with
 * INI_STOP_ON_FIRST_ERROR 0, so it goes on calling the handler after one
 * fails: the report must still be about line 2, and no error string may
 * be leaked by a later one (LeakSanitizer checks under SB_SANITIZE). */
/* One reading reports every problem, in file order, each with its line. */
static void test_every_error_reported(void **state)
{
    fixture_t *f = *state;
    write_ini(f,
        "[service s]\n"              /* 1 */
        "workers = lots\n"           /* 2: first problem */
        "[command c]\n"              /* 3 */
        "bogus = 1\n"                /* 4: second problem */
        "no equals sign here\n"      /* 5: third problem */
        "[nowhere]\n");              /* 6: fourth problem */
    f->config = sb_config_load(f->path, &f->error);
    assert_null(f->config);
    assert_non_null(f->error);
    const int lines[] = { 2, 4, 5, 6 };
    const char *line = f->error;
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
        char prefix[128];
        snprintf(prefix, sizeof prefix, "%s:%d: ", f->path, lines[i]);
        if (!line || strncmp(line, prefix, strlen(prefix)) != 0)
            fail_msg("problem %zu: expected '%s...' in '%s'", i + 1, prefix, f->error);
        line = strchr(line, '\n');
        line = line ? line + 1 : NULL;
    }
    assert_null(line);   /* and nothing more */
    free(f->error);
    f->error = NULL;
}

/* ------------------------------------------------------------------ */
/* [device NAME]                                                        */

static void test_device_kinds_and_defaults(void **state)
{
    fixture_t *f = *state;
    const sb_config_t *config = load_ok(f,
        "[device lamp]\nconnect = esp32.local:7000\n"
        "[device meter]\nserial = /dev/ttyUSB0\nbaud = 9600\n"
        "[device hall]\n"
        "[device door]\ntoken = s3cret\nbackoff_initial = 0.5\nbackoff_factor = 1.5\n"
        "backoff_max = 30\nbackoff_jitter = 0\nhealthy_after = 2\ncall_timeout = 0.25\n"
        "max_pending = 3\non_connect = LOGIN x\nkeepalive = PING\nkeepalive_interval = 10\n");
    assert_int_equal(sb_config_device_count(config), 4);
    assert_int_equal(sb_config_device(config, "hall")->kind, SB_DEVICE_DIAL_IN);   /* header only */
    const sb_device_config_t *lamp = sb_config_device(config, "lamp");
    assert_int_equal(lamp->kind, SB_DEVICE_TCP);
    assert_string_equal(lamp->connect, "esp32.local:7000");
    assert_int_equal(lamp->backoff.initial_ms, 1000);
    assert_int_equal(lamp->backoff.max_ms, 60000);
    assert_true(lamp->backoff.factor == 2 && lamp->backoff.jitter == 0.2);
    assert_int_equal(lamp->call_timeout_ms, 5000);
    assert_int_equal(lamp->max_pending, 16);
    assert_null(lamp->keepalive);
    const sb_device_config_t *meter = sb_config_device(config, "meter");
    assert_int_equal(meter->kind, SB_DEVICE_SERIAL);
    assert_int_equal(meter->baud, 9600);
    const sb_device_config_t *door = sb_config_device(config, "door");
    assert_int_equal(door->kind, SB_DEVICE_DIAL_IN);
    assert_string_equal(door->token, "s3cret");
    assert_int_equal(door->backoff.initial_ms, 500);
    assert_true(door->backoff.factor == 1.5 && door->backoff.jitter == 0);
    assert_int_equal(door->backoff.max_ms, 30000);
    assert_int_equal(door->healthy_after_ms, 2000);
    assert_int_equal(door->call_timeout_ms, 250);
    assert_int_equal(door->max_pending, 3);
    assert_string_equal(door->on_connect, "LOGIN x");
    assert_string_equal(door->keepalive, "PING");
    assert_int_equal(door->keepalive_interval_ms, 10000);
}

static void test_bad_device_values(void **state)
{
    fixture_t *f = *state;
    static const struct {
        const char *line;
        const char *reason;
    } cases[] = {
        { "connect = nowhere", "connect must be HOST:PORT" },
        { "connect = host:99999", "connect must be HOST:PORT" },
        { "serial = ttyUSB0", "serial must be an absolute device path" },
        { "baud = fast", "baud must be one of" },
        { "baud = 12345", "baud must be one of" },
        { "backoff_factor = 0.5", "backoff_factor must be from 1 to 10" },
        { "backoff_jitter = 2", "backoff_jitter must be from 0 to 1" },
        { "call_timeout = 0", "call_timeout must be seconds" },
        { "max_pending = 0", "max_pending must be from 1 to 1000" },
        { "keepalive = ", "keepalive must be one non-empty line" },
        { "colour = red", "unknown key 'colour' in [device d]" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char text[160];
        snprintf(text, sizeof text, "[device d]\n%s\n", cases[i].line);
        expect_error(f, text, 2, cases[i].reason);
    }
}

static void test_tokens_and_anonymous(void **state)
{
    fixture_t *f = *state;
    const sb_config_t *config = load_ok(f,
        "[token panel]\n"
        "secret_sha256 = 9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08\n"
        "commands = echo sub\n"
        "publish = home/#\n"
        "subscribe = home/# $sys/#\n"
        "[token script]\n"
        "secret = open sesame\n"
        "url_token = yes\n"
        "[anonymous]\n"
        "commands = ping\n");
    assert_int_equal(sb_config_token_count(config), 2);
    const sb_token_config_t *panel = sb_config_token(config, "panel");
    assert_non_null(panel);
    assert_string_equal(panel->commands, "echo sub");
    assert_string_equal(panel->publish, "home/#");
    assert_string_equal(panel->subscribe, "home/# $sys/#");
    assert_null(panel->secret);
    assert_false(panel->url_token);
    assert_int_equal(panel->line, 1);
    assert_int_equal(panel->secret_line, 2);
    const sb_token_config_t *script = sb_config_token_at(config, 1);
    assert_string_equal(script->name, "script");
    assert_string_equal(script->secret, "open sesame");
    assert_true(script->url_token);
    assert_null(script->commands);     /* the access rules pick the defaults */
    assert_null(script->publish);
    assert_null(script->subscribe);
    const sb_token_config_t *anonymous = sb_config_anonymous(config);
    assert_non_null(anonymous);
    assert_null(anonymous->name);
    assert_string_equal(anonymous->commands, "ping");
    assert_null(sb_config_check(config, NULL));
    sb_config_destroy(&f->config);

    /* A header alone is a section with its defaults; no [anonymous]: NULL. */
    config = load_ok(f, "[token bare]\n");
    assert_non_null(sb_config_token(config, "bare"));
    assert_null(sb_config_anonymous(config));
    sb_config_destroy(&f->config);
    config = load_ok(f, "[anonymous]\n");
    assert_int_equal(sb_config_token_count(config), 0);
    assert_non_null(sb_config_anonymous(config));
}

static void test_unknown_token_keys(void **state)
{
    fixture_t *f = *state;
    expect_error(f, "[token t]\nsecret = x\ncolour = red\n", 3, "unknown key 'colour' in [token t]");
    expect_error(f, "[anonymous]\nsecret = x\n", 2, "unknown key 'secret' in [anonymous]");
    expect_error(f, "[anonymous]\nurl_token = yes\n", 2, "unknown key 'url_token' in [anonymous]");
    expect_error(f, "[token t]\nurl_token = maybe\n", 2, "url_token must be yes or no, not 'maybe'");
}

/* Problems only config_check finds: secrets and filters. */
static void test_token_checks(void **state)
{
    fixture_t *f = *state;
    static const struct {
        const char *text;
        const char *problem;
    } cases[] = {
        { "[token t]\ncommands = echo\n", "[token t] needs secret_sha256" },
        { "[token t]\nsecret = a\nsecret_sha256 = 00\n", "has both secret and secret_sha256" },
        { "[token t]\nsecret_sha256 = abc\n", "secret_sha256 must be 64 hex digits" },
        { "[token t]\nsecret_sha256 = "
          "zz86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\n",
          "secret_sha256 must be 64 hex digits" },
        { "[token t]\nsecret = x\npublish = home/# a/#/b\n", "'a/#/b' is not a topic filter" },
        { "[token t]\nsecret = x\nsubscribe = ok/+ bad+\n", "'bad+' is not a topic filter" },
        { "[token t:x]\nsecret = x\n", "token name 't:x' must be" },
        { "[anonymous]\nsubscribe = #/a\n", "[anonymous]: subscribe: '#/a'" },
        { "[token t]\nsecret = x\npublish = \"zigbee2mqtt/Living Room/#\"\n",
          "publish: '\"zigbee2mqtt/Living': filters are split at spaces and cannot be quoted" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const sb_config_t *config = load_ok(f, cases[i].text);
        char *problems = sb_config_check(config, NULL);
        if (!problems || !strstr(problems, cases[i].problem))
            fail_msg("case %zu: expected '%s', got '%s'", i, cases[i].problem,
                     problems ? problems : "(none)");
        free(problems);
        sb_config_destroy(&f->config);
    }
}

int main(void)
{
#define TEST(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        TEST(test_services_and_commands),
        TEST(test_command_defaults),
        TEST(test_repeated_sections_merge),
        TEST(test_timeout_values),
        TEST(test_workers_upper_bound),
        TEST(test_program_values),
        TEST(test_last_assignment_wins),
        TEST(test_empty_config),
        TEST(test_empty_file),
        TEST(test_missing_file),
        TEST(test_unknown_section),
        TEST(test_unknown_key_in_command),
        TEST(test_unknown_key_in_service),
        TEST(test_bad_workers),
        TEST(test_bad_timeout),
        TEST(test_bad_service_name),
        TEST(test_key_outside_section),
        TEST(test_syntax_error),
        TEST(test_long_line),
        TEST(test_every_error_reported),
        TEST(test_device_kinds_and_defaults),
        TEST(test_bad_device_values),
        TEST(test_tokens_and_anonymous),
        TEST(test_unknown_token_keys),
        TEST(test_token_checks),
    };
#undef TEST
    return cmocka_run_group_tests(tests, NULL, NULL);
}
