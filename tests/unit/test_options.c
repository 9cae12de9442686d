/* test_options.c — unit tests for settings resolution (common/options.c):
 * flags > SWITCHBOARD_* environment > config file > defaults, the source
 * each value is reported from, validation of every kind from every source,
 * and the exits for --help, --version and bad command lines.
 *
 * Each load runs with stdout and stderr captured, so the tests can check
 * what the user is told (and keep the test log quiet). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "options.h"
#include "sb_version.h"

/* ------------------------------------------------------------------ */
/* The program under test                                               */

static const sb_option_spec_t s_specs[] = {
    { "name", SB_OPTION_TEXT, "broker.name", "hub", 0, 0, "NAME", "a text setting" },
    { "queue-max", SB_OPTION_INT, "broker.queue_max", "100", 1, 1000, "N", "a bounded number" },
    { "timeout", SB_OPTION_SECONDS, "broker.timeout", "2.5", 100, 60000, "SECONDS",
      "a duration from 0.1 to 60 s" },
    { "secret", SB_OPTION_TEXT, NULL, NULL, 0, 0, "TEXT", "no file key and no default" },
};

static const sb_program_t s_program = {
    "sb-test", "Exercises common/options.c.", s_specs, sizeof s_specs / sizeof s_specs[0],
};

/* How one setting is named in each source; spelled out here rather than
 * derived, so the derivation in options.c is tested too. */
typedef struct {
    const char *flag;
    const char *env;
    const char *section;
    const char *key;
} setting_t;

static const setting_t s_queue_max = { "queue-max", "SWITCHBOARD_QUEUE_MAX", "broker", "queue_max" };
static const setting_t s_timeout = { "timeout", "SWITCHBOARD_TIMEOUT", "broker", "timeout" };
static const setting_t s_name = { "name", "SWITCHBOARD_NAME", "broker", "name" };
static const setting_t s_log_level = { "log-level", "SWITCHBOARD_LOG_LEVEL", "log", "level" };

static const char *s_env_names[] = {
    "SWITCHBOARD_CONFIG", "SWITCHBOARD_LOG_LEVEL", "SWITCHBOARD_NAME",
    "SWITCHBOARD_QUEUE_MAX", "SWITCHBOARD_TIMEOUT", "SWITCHBOARD_SECRET",
};

/* ------------------------------------------------------------------ */
/* Fixture: a temporary INI file, a clean environment, the last load    */

typedef struct {
    char ini[64];
    sb_options_t *options;
    int exit_code;
    char *out;              /* what the last load printed on stdout */
    char *err;              /* ... and on stderr */
} fixture_t;

static void clear_environment(void)
{
    for (size_t i = 0; i < sizeof s_env_names / sizeof s_env_names[0]; i++)
        unsetenv(s_env_names[i]);
}

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    snprintf(f->ini, sizeof f->ini, "/tmp/sb-test-options-XXXXXX");
    int fd = mkstemp(f->ini);
    if (fd < 0) {
        free(f);
        return -1;
    }
    close(fd);
    clear_environment();
    *state = f;
    return 0;
}

static void forget_load(fixture_t *f)
{
    sb_options_destroy(&f->options);
    free(f->out);
    free(f->err);
    f->out = f->err = NULL;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    forget_load(f);
    unlink(f->ini);
    clear_environment();
    free(f);
    return 0;
}

/* Fills the fixture's INI file; returns its path for --config. */
static const char *write_ini(fixture_t *f, const char *text)
{
    FILE *file = fopen(f->ini, "w");
    assert_non_null(file);
    assert_true(fputs(text, file) >= 0);
    assert_int_equal(fclose(file), 0);
    return f->ini;
}

static void set_env(const char *name, const char *value)
{
    assert_int_equal(setenv(name, value, 1), 0);
}

/* Redirects a stream into a temporary file until capture_end. */
typedef struct {
    FILE *stream;
    FILE *sink;
    int saved_fd;
} capture_t;

static void capture_begin(capture_t *capture, FILE *stream)
{
    fflush(stream);
    capture->stream = stream;
    capture->sink = tmpfile();
    assert_non_null(capture->sink);
    capture->saved_fd = dup(fileno(stream));
    assert_true(capture->saved_fd >= 0);
    assert_true(dup2(fileno(capture->sink), fileno(stream)) >= 0);
}

/* Restores the stream; returns what was written to it (malloc'd). */
static char *capture_end(capture_t *capture)
{
    fflush(capture->stream);
    dup2(capture->saved_fd, fileno(capture->stream));
    close(capture->saved_fd);
    fseek(capture->sink, 0, SEEK_END);
    long size = ftell(capture->sink);
    rewind(capture->sink);
    char *text = calloc(1, (size_t) size + 1);
    assert_non_null(text);
    assert_int_equal(fread(text, 1, (size_t) size, capture->sink), (size_t) size);
    fclose(capture->sink);
    return text;
}

/* Loads with the NULL-terminated flags in `args` after the program name. */
static sb_options_t *load_va(fixture_t *f, va_list args)
{
    char *argv[32] = { (char *) "sb-test" };
    int argc = 1;
    for (char *arg; (arg = va_arg(args, char *)) != NULL; argc++) {
        assert_true(argc < 31);
        argv[argc] = arg;
    }
    forget_load(f);
    capture_t out, err;
    capture_begin(&out, stdout);
    capture_begin(&err, stderr);
    f->exit_code = -1;
    f->options = sb_options_load(&s_program, argc, argv, &f->exit_code);
    f->err = capture_end(&err);
    f->out = capture_end(&out);
    return f->options;
}

/* load(f, "--flag", "value", ..., NULL): must succeed. */
static sb_options_t *load(fixture_t *f, ...)
{
    va_list args;
    va_start(args, f);
    load_va(f, args);
    va_end(args);
    if (!f->options)
        fail_msg("load failed with exit code %d: %s", f->exit_code, f->err);
    assert_int_equal(f->exit_code, 0);
    return f->options;
}

static void expect_output(const char *stream_name, const char *text, const char *wanted)
{
    if (wanted && !strstr(text, wanted))
        fail_msg("%s should contain '%s' but was '%s'", stream_name, wanted, text);
}

/* expect_exit(f, code, "expected stderr text" or NULL, "--flag", ..., NULL):
 * the load must return NULL with `code`. */
static void expect_exit(fixture_t *f, int code, const char *message, ...)
{
    va_list args;
    va_start(args, message);
    load_va(f, args);
    va_end(args);
    if (f->options)
        fail_msg("load should have failed (stderr: '%s')", f->err);
    assert_int_equal(f->exit_code, code);
    expect_output("stderr", f->err, message);
}

static void expect_text(fixture_t *f, const char *name, const char *text, const char *source)
{
    const char *value = sb_options_text(f->options, name);
    if (!text)
        assert_null(value);
    else if (!value || strcmp(value, text) != 0)
        fail_msg("%s: expected '%s', got '%s'", name, text, value ? value : "(null)");
    assert_string_equal(sb_options_source(f->options, name), source);
}

static void expect_number(fixture_t *f, const char *name, long number, const char *source)
{
    assert_int_equal(sb_options_int(f->options, name), number);
    assert_string_equal(sb_options_source(f->options, name), source);
}

/* An INI file that sets every file-settable option. */
static const char s_full_ini[] =
    "[broker]\n"
    "name = filehub\n"
    "queue_max = 200\n"
    "timeout = 1.5\n"
    "[log]\n"
    "level = warn\n";

static void set_full_env(void)
{
    set_env("SWITCHBOARD_NAME", "envhub");
    set_env("SWITCHBOARD_QUEUE_MAX", "300");
    set_env("SWITCHBOARD_TIMEOUT", "3");
    set_env("SWITCHBOARD_LOG_LEVEL", "error");
}

/* ------------------------------------------------------------------ */
/* Precedence                                                           */

static void test_defaults_only(void **state)
{
    fixture_t *f = *state;
    load(f, NULL);
    expect_text(f, "name", "hub", "default");
    expect_number(f, "queue-max", 100, "default");
    expect_number(f, "timeout", 2500, "default");
    expect_text(f, "timeout", "2.5", "default");
    expect_text(f, "log-level", "info", "default");
    expect_text(f, "secret", NULL, "unset");
    expect_text(f, "config", NULL, "unset");

    const sb_config_t *config = sb_options_config(f->options);
    assert_non_null(config);
    assert_null(sb_config_path(config));
    assert_int_equal(sb_config_service_count(config), 0);
}

static void test_file_overrides_default(void **state)
{
    fixture_t *f = *state;
    const char *path = write_ini(f, s_full_ini);
    load(f, "--config", path, NULL);
    expect_text(f, "config", path, "flag");
    expect_text(f, "name", "filehub", "file");
    expect_number(f, "queue-max", 200, "file");
    expect_number(f, "timeout", 1500, "file");
    expect_text(f, "log-level", "warn", "file");
    expect_text(f, "secret", NULL, "unset");
    assert_string_equal(sb_config_path(sb_options_config(f->options)), path);
}

/* Only the settings the file has come from it; the rest keep defaults. */
static void test_file_partial(void **state)
{
    fixture_t *f = *state;
    load(f, "--config", write_ini(f, "[broker]\nqueue_max = 7\n"), NULL);
    expect_number(f, "queue-max", 7, "file");
    expect_text(f, "name", "hub", "default");
    expect_number(f, "timeout", 2500, "default");
}

static void test_env_overrides_file(void **state)
{
    fixture_t *f = *state;
    const char *path = write_ini(f, s_full_ini);
    set_env("SWITCHBOARD_QUEUE_MAX", "300");
    set_env("SWITCHBOARD_TIMEOUT", "3");
    load(f, "--config", path, NULL);
    expect_number(f, "queue-max", 300, "environment");
    expect_number(f, "timeout", 3000, "environment");
    expect_text(f, "name", "filehub", "file");

    set_full_env();
    load(f, "--config", path, NULL);
    expect_text(f, "name", "envhub", "environment");
    expect_text(f, "log-level", "error", "environment");
}

static void test_env_overrides_default(void **state)
{
    fixture_t *f = *state;
    set_env("SWITCHBOARD_NAME", "envhub");
    set_env("SWITCHBOARD_SECRET", "hunter2");
    load(f, NULL);
    expect_text(f, "name", "envhub", "environment");
    expect_text(f, "secret", "hunter2", "environment");
    expect_number(f, "queue-max", 100, "default");
}

static void test_flag_overrides_env(void **state)
{
    fixture_t *f = *state;
    const char *path = write_ini(f, s_full_ini);
    set_full_env();
    load(f, "--config", path, "--name", "flaghub", "--queue-max=400", "--timeout", "0.25",
         "--log-level=debug", NULL);
    expect_text(f, "name", "flaghub", "flag");
    expect_number(f, "queue-max", 400, "flag");
    expect_number(f, "timeout", 250, "flag");
    expect_text(f, "log-level", "debug", "flag");

    char config_flag[128];
    snprintf(config_flag, sizeof config_flag, "--config=%s", path);
    load(f, config_flag, "--name=flaghub", "--queue-max", "400", "--timeout=0.25", NULL);
    expect_text(f, "config", path, "flag");
    expect_text(f, "name", "flaghub", "flag");
    expect_number(f, "queue-max", 400, "flag");
    expect_number(f, "timeout", 250, "flag");
    expect_text(f, "log-level", "error", "environment");
}

static void test_flag_forms(void **state)
{
    fixture_t *f = *state;
    /* --x=V splits at the first '=' only. */
    load(f, "--name=a=b", NULL);
    expect_text(f, "name", "a=b", "flag");

    /* With --x V the next word is the value, whatever it looks like. */
    load(f, "--name", "--queue-max", NULL);
    expect_text(f, "name", "--queue-max", "flag");
    expect_number(f, "queue-max", 100, "default");

    /* The last occurrence wins. */
    load(f, "--queue-max", "5", "--queue-max=6", NULL);
    expect_number(f, "queue-max", 6, "flag");
}

/* ------------------------------------------------------------------ */
/* Validation                                                           */

typedef enum { FROM_FLAG, FROM_ENV, FROM_FILE } source_t;

/* Gives `setting` the value `value` from `source` alone; loads. */
static void load_from(fixture_t *f, source_t source, const setting_t *setting, const char *value,
                      bool should_load)
{
    char flag[128], ini[256];
    snprintf(flag, sizeof flag, "--%s", setting->flag);
    snprintf(ini, sizeof ini, "[%s]\n; line 2\n%s = %s\n", setting->section, setting->key, value);
    clear_environment();
    switch (source) {
    case FROM_FLAG:
        if (should_load)
            load(f, flag, value, NULL);
        else
            expect_exit(f, 2, flag, flag, value, NULL);
        break;
    case FROM_ENV:
        set_env(setting->env, value);
        if (should_load)
            load(f, NULL);
        else
            expect_exit(f, 2, setting->env, NULL);
        break;
    case FROM_FILE: {
        char where[128];
        snprintf(where, sizeof where, "%s:3: %s.%s", f->ini, setting->section, setting->key);
        write_ini(f, ini);
        if (should_load)
            load(f, "--config", f->ini, NULL);
        else
            expect_exit(f, 2, where, "--config", f->ini, NULL);
        break;
    }
    }
}

static const source_t s_sources[] = { FROM_FLAG, FROM_ENV, FROM_FILE };
static const char *s_source_names[] = { "flag", "environment", "file" };

/* `value` for `setting` is refused from every source, with exit code 2 and
 * an error that says where it came from and quotes it. */
static void expect_rejected(fixture_t *f, const setting_t *setting, const char *value)
{
    for (size_t i = 0; i < sizeof s_sources / sizeof s_sources[0]; i++) {
        load_from(f, s_sources[i], setting, value, false);
        char quoted[128];
        snprintf(quoted, sizeof quoted, "'%s'", value);
        expect_output("stderr", f->err, quoted);
    }
}

/* `value` for `setting` is accepted from every source as `number`. */
static void expect_accepted(fixture_t *f, const setting_t *setting, const char *value,
                            long number)
{
    for (size_t i = 0; i < sizeof s_sources / sizeof s_sources[0]; i++) {
        load_from(f, s_sources[i], setting, value, true);
        expect_number(f, setting->flag, number, s_source_names[i]);
    }
}

static void test_bad_int(void **state)
{
    fixture_t *f = *state;
    static const char *bad[] = {
        "abc", "12x", "1.5", "0x10", "0", "-1", "1001", "99999999999999999999",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect_rejected(f, &s_queue_max, bad[i]);
}

static void test_int_bounds_accepted(void **state)
{
    fixture_t *f = *state;
    expect_accepted(f, &s_queue_max, "1", 1);
    expect_accepted(f, &s_queue_max, "1000", 1000);
    expect_accepted(f, &s_queue_max, "42", 42);
}

static void test_bad_seconds(void **state)
{
    fixture_t *f = *state;
    static const char *bad[] = {
        "abc", "5s", "1,5", "-1", "0.05", "0", "60.001", "61", "nan", "inf", "1e300",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect_rejected(f, &s_timeout, bad[i]);
}

static void test_seconds_accepted(void **state)
{
    fixture_t *f = *state;
    expect_accepted(f, &s_timeout, "0.1", 100);
    expect_accepted(f, &s_timeout, "60", 60000);
    expect_accepted(f, &s_timeout, "1.0004", 1000);   /* rounded to the millisecond */
    expect_accepted(f, &s_timeout, "1.0006", 1001);
    expect_accepted(f, &s_timeout, "7", 7000);
}

/* TEXT takes any non-empty string, inner spaces included, from any source. */
static void test_text_from_each_source(void **state)
{
    fixture_t *f = *state;
    for (size_t i = 0; i < sizeof s_sources / sizeof s_sources[0]; i++) {
        load_from(f, s_sources[i], &s_name, "tcp://*:5555 x=1", true);
        expect_text(f, "name", "tcp://*:5555 x=1", s_source_names[i]);
    }
}

static void test_empty_value_rejected(void **state)
{
    fixture_t *f = *state;
    expect_exit(f, 2, "--name must not be empty", "--name=", NULL);
    expect_exit(f, 2, "--queue-max must not be empty", "--queue-max", "", NULL);
    set_env("SWITCHBOARD_NAME", "");
    expect_exit(f, 2, "SWITCHBOARD_NAME must not be empty", NULL);
}

static void test_log_level(void **state)
{
    fixture_t *f = *state;
    static const char *levels[] = { "debug", "info", "warn", "error" };
    for (size_t i = 0; i < sizeof levels / sizeof levels[0]; i++)
        for (size_t s = 0; s < sizeof s_sources / sizeof s_sources[0]; s++) {
            load_from(f, s_sources[s], &s_log_level, levels[i], true);
            expect_text(f, "log-level", levels[i], s_source_names[s]);
        }

    static const char *bad[] = { "loud", "INFO", "warning", " info" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        for (size_t s = 0; s < sizeof s_sources / sizeof s_sources[0]; s++) {
            clear_environment();
            if (s_sources[s] == FROM_FLAG)
                expect_exit(f, 2, "log level must be", "--log-level", bad[i], NULL);
            else if (s_sources[s] == FROM_ENV) {
                set_env("SWITCHBOARD_LOG_LEVEL", bad[i]);
                expect_exit(f, 2, "log level must be", NULL);
            }
            /* " info" from the file is trimmed by the INI reader: skip it. */
            else if (bad[i][0] != ' ') {
                char ini[64];
                snprintf(ini, sizeof ini, "[log]\nlevel = %s\n", bad[i]);
                expect_exit(f, 2, "log level must be", "--config", write_ini(f, ini), NULL);
            }
        }
    clear_environment();
    expect_exit(f, 2, "must not be empty", "--log-level=", NULL);
}

/* A setting without ini_key ignores a same-named key in the file. */
/* A setting without an ini key cannot be set in the file: there, it is a
 * key no program reads, and the file is refused. */
static void test_no_ini_key_not_read_from_file(void **state)
{
    fixture_t *f = *state;
    expect_exit(f, 2, "unknown key 'secret' in [broker]",
                "--config", write_ini(f, "[broker]\nsecret = fromfile\n"), NULL);
    load(f, "--secret", "fromflag", NULL);
    expect_text(f, "secret", "fromflag", "flag");
}

/* ------------------------------------------------------------------ */
/* Command-line errors, --help, --version                               */

static void test_unknown_flag(void **state)
{
    fixture_t *f = *state;
    expect_exit(f, 2, "unknown option '--bogus'", "--bogus", NULL);
    expect_exit(f, 2, "unknown option '--bogus=1'", "--bogus=1", NULL);
    expect_exit(f, 2, "unknown option", "--queue", "5", NULL);          /* no prefixes */
    expect_exit(f, 2, "unknown option", "--queue-max-x=5", NULL);
    expect_exit(f, 2, "unknown option", "--", NULL);
    expect_exit(f, 2, "unexpected argument 'stray'", "stray", NULL);
    expect_exit(f, 2, "unexpected argument '-q'", "-q", NULL);
    expect_exit(f, 2, "unknown option", "--name", "x", "--bogus", NULL);
}

static void test_missing_value(void **state)
{
    fixture_t *f = *state;
    expect_exit(f, 2, "'--name' needs a value", "--name", NULL);
    expect_exit(f, 2, "'--config' needs a value", "--queue-max", "5", "--config", NULL);
}

static void test_help(void **state)
{
    fixture_t *f = *state;
    static const char *forms[] = { "--help", "-h" };
    for (size_t i = 0; i < 2; i++) {
        expect_exit(f, 0, NULL, forms[i], NULL);
        expect_output("stdout", f->out, "Usage: sb-test");
        expect_output("stdout", f->out, "Exercises common/options.c.");
        expect_output("stdout", f->out, "--queue-max N");
        expect_output("stdout", f->out, "(default: 100)");
        expect_output("stdout", f->out, "[file: broker.queue_max]");
        expect_output("stdout", f->out, "--config FILE");
        expect_output("stdout", f->out, "--log-level LEVEL");
        expect_output("stdout", f->out, "--version");
    }
    /* Help is given even when other flags carry bad values. */
    expect_exit(f, 0, NULL, "--queue-max", "abc", "--help", NULL);
    expect_output("stdout", f->out, "Usage: sb-test");
}

static void test_version(void **state)
{
    fixture_t *f = *state;
    expect_exit(f, 0, NULL, "--version", NULL);
    assert_string_equal(f->out, "sb-test " SB_VERSION "\n");
}

/* ------------------------------------------------------------------ */
/* The config file                                                      */

static void test_config_from_env(void **state)
{
    fixture_t *f = *state;
    const char *path = write_ini(f, s_full_ini);
    set_env("SWITCHBOARD_CONFIG", path);
    load(f, NULL);
    expect_text(f, "config", path, "environment");
    expect_text(f, "name", "filehub", "file");
    expect_number(f, "queue-max", 200, "file");
}

static void test_config_flag_overrides_env(void **state)
{
    fixture_t *f = *state;
    set_env("SWITCHBOARD_CONFIG", "/nonexistent/from-env.conf");
    load(f, "--config", write_ini(f, s_full_ini), NULL);
    expect_text(f, "config", f->ini, "flag");
    expect_text(f, "name", "filehub", "file");
}

static void test_missing_config_file(void **state)
{
    fixture_t *f = *state;
    expect_exit(f, 2, "/nonexistent/switchboard.conf: cannot open",
                "--config", "/nonexistent/switchboard.conf", NULL);
    set_env("SWITCHBOARD_CONFIG", "/nonexistent/switchboard.conf");
    expect_exit(f, 2, "/nonexistent/switchboard.conf: cannot open", NULL);
}

static void test_invalid_config_file(void **state)
{
    fixture_t *f = *state;
    const char *path = write_ini(f, "[broker]\nqueue_max = 1\n[nowhere]\nx = 1\n");
    char where[128];
    snprintf(where, sizeof where, "%s:3: unknown section [nowhere]", path);
    expect_exit(f, 2, where, "--config", path, NULL);
}

/* The loaded file is handed on: services and commands are readable. */
static void test_config_is_exposed(void **state)
{
    fixture_t *f = *state;
    load(f, "--config", write_ini(f, "[service slow]\nworkers = 3\n[command sleep]\nservice = slow\n"),
         NULL);
    const sb_config_t *config = sb_options_config(f->options);
    const sb_service_config_t *slow = sb_config_service(config, "slow");
    assert_non_null(slow);
    assert_int_equal(slow->workers, 3);
    assert_non_null(sb_config_command(config, "sleep"));
}

int main(void)
{
#define TEST(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        TEST(test_defaults_only),
        TEST(test_file_overrides_default),
        TEST(test_file_partial),
        TEST(test_env_overrides_file),
        TEST(test_env_overrides_default),
        TEST(test_flag_overrides_env),
        TEST(test_flag_forms),
        TEST(test_bad_int),
        TEST(test_int_bounds_accepted),
        TEST(test_bad_seconds),
        TEST(test_seconds_accepted),
        TEST(test_text_from_each_source),
        TEST(test_empty_value_rejected),
        TEST(test_log_level),
        TEST(test_no_ini_key_not_read_from_file),
        TEST(test_unknown_flag),
        TEST(test_missing_value),
        TEST(test_help),
        TEST(test_version),
        TEST(test_config_from_env),
        TEST(test_config_flag_overrides_env),
        TEST(test_missing_config_file),
        TEST(test_invalid_config_file),
        TEST(test_config_is_exposed),
    };
#undef TEST
    return cmocka_run_group_tests(tests, NULL, NULL);
}
