/* bridge_config.c — the keys of a [bridge NAME] section (see bridge_config.h). */
#include "bridge_config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmdline.h"
#include "seconds.h"
#include "topic.h"

void sb_bridge_config_init(sb_bridge_config_t *self, const char *name, int line)
{
    *self = (sb_bridge_config_t) {
        .name = strdup(name), .version = 5, .keepalive_ms = 60000, .clean = true,
        .max_queued = 1000, .backoff = SB_BACKOFF_SETTINGS_DEFAULT,
        .line = line,
    };
}

void sb_bridge_config_free(sb_bridge_config_t *self)
{
    free(self->name);
    for (size_t i = 0; i < self->address_count; i++)
        free(self->addresses[i]);
    free(self->client_id);
    free(self->username);
    free(self->password_file);
    free(self->tls_ca_file);
    free(self->tls_cert);
    free(self->tls_key);
    for (size_t i = 0; i < self->rule_count; i++) {
        free(self->rules[i].pattern);
        free(self->rules[i].local_prefix);
        free(self->rules[i].remote_prefix);
    }
    memset(self, 0, sizeof *self);
}

static bool set_text(char **field, const char *value)
{
    free(*field);
    *field = strdup(value);
    return true;
}

static bool parse_long(const char *text, long min, long max, long *out)
{
    char *end;
    errno = 0;
    long value = strtol(text, &end, 10);
    if (errno || end == text || *end || value < min || value > max)
        return false;
    *out = value;
    return true;
}

static bool parse_yes_no(const char *text, bool *out)
{
    if (strcmp(text, "yes") == 0 || strcmp(text, "true") == 0)
        *out = true;
    else if (strcmp(text, "no") == 0 || strcmp(text, "false") == 0)
        *out = false;
    else
        return false;
    return true;
}

/* HOST:PORT or [V6]:PORT. */
static bool is_address(const char *text)
{
    const char *colon = strrchr(text, ':');
    long port;
    return colon && colon != text && parse_long(colon + 1, 1, 65535, &port)
           && !strpbrk(text, " \t");
}

/* A prefix ends where a topic level begins: "" or "sites/house/". */
static bool is_prefix(const char *prefix)
{
    return prefix[0] == '\0' || (!strpbrk(prefix, "+#") && sb_topic_is_valid(prefix));
}

static bool fail(char *reason, size_t size, const char *text)
{
    snprintf(reason, size, "%s", text);
    return false;
}

/* topic = PATTERN [in|out|both] [QOS] [LOCAL_PREFIX] [REMOTE_PREFIX] */
static bool add_rule(sb_bridge_config_t *self, const char *value, int line, char *reason,
                     size_t size)
{
    static const char usage[] = "topic must be PATTERN [in|out|both] [QOS] [LOCAL_PREFIX] "
                                "[REMOTE_PREFIX] (\"\" for no prefix)";
    if (self->rule_count == SB_BRIDGE_MAX_RULES)
        return fail(reason, size, "too many topic rules (at most 64 per bridge)");
    sb_cmdline_status_t status;
    sb_cmdline_t *words = sb_cmdline_parse(value, strlen(value), &status, NULL);
    if (!words || words->tag || words->argc > 5) {
        sb_cmdline_destroy(&words);
        return fail(reason, size, usage);
    }
    sb_bridge_rule_t rule = { .direction = SB_BRIDGE_OUT, .line = line };
    const char *direction = words->argc > 1 ? words->argv[1] : "out";
    long qos = 0;
    bool ok = true;
    if (strcmp(direction, "in") == 0)
        rule.direction = SB_BRIDGE_IN;
    else if (strcmp(direction, "both") == 0)
        rule.direction = SB_BRIDGE_BOTH;
    else if (strcmp(direction, "out") != 0)
        ok = fail(reason, size, "a topic rule's direction must be in, out or both");
    if (ok && words->argc > 2 && !parse_long(words->argv[2], 0, 2, &qos))
        ok = fail(reason, size, "a topic rule's QOS must be 0, 1 or 2");
    const char *local = words->argc > 3 ? words->argv[3] : "";
    const char *remote = words->argc > 4 ? words->argv[4] : "";
    if (ok && (!is_prefix(local) || !is_prefix(remote)))
        ok = fail(reason, size, "a topic rule's prefixes must be topics without + or # (\"\" for none)");
    char full[1024];
    snprintf(full, sizeof full, "%s%s", local, words->argv[0]);
    bool pattern_ok = sb_topic_filter_is_valid(full);
    snprintf(full, sizeof full, "%s%s", remote, words->argv[0]);
    if (ok && (!pattern_ok || !sb_topic_filter_is_valid(full)))
        ok = fail(reason, size, "a topic rule's PATTERN must be a topic filter (with its prefixes)");
    if (ok) {
        rule.pattern = strdup(words->argv[0]);
        rule.qos = (int) qos;
        rule.local_prefix = strdup(local);
        rule.remote_prefix = strdup(remote);
        self->rules[self->rule_count++] = rule;
    }
    sb_cmdline_destroy(&words);
    return ok;
}

/* The keys that are seconds: where each goes and its range. */
static long *seconds_field(sb_bridge_config_t *self, const char *key, double *min, double *max)
{
    static const struct {
        const char *key;
        size_t offset;
        double min, max;
    } fields[] = {
        { "keepalive", offsetof(sb_bridge_config_t, keepalive_ms), 5, 65535 },
    };
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        if (strcmp(fields[i].key, key) == 0) {
            *min = fields[i].min;
            *max = fields[i].max;
            return (long *) ((char *) self + fields[i].offset);
        }
    return NULL;
}

/* The keys that are one word or a path. */
static char **text_field(sb_bridge_config_t *self, const char *key)
{
    static const struct {
        const char *key;
        size_t offset;
    } fields[] = {
        { "client_id", offsetof(sb_bridge_config_t, client_id) },
        { "username", offsetof(sb_bridge_config_t, username) },
        { "password_file", offsetof(sb_bridge_config_t, password_file) },
        { "tls_ca_file", offsetof(sb_bridge_config_t, tls_ca_file) },
        { "tls_cert", offsetof(sb_bridge_config_t, tls_cert) },
        { "tls_key", offsetof(sb_bridge_config_t, tls_key) },
    };
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        if (strcmp(fields[i].key, key) == 0)
            return (char **) ((char *) self + fields[i].offset);
    return NULL;
}

bool sb_bridge_config_set(sb_bridge_config_t *self, const char *key, const char *value, int line,
                          char *reason, size_t size)
{
    switch (sb_backoff_settings_set(&self->backoff, key, value, reason, size)) {
    case SB_BACKOFF_KEY_SET: return true;
    case SB_BACKOFF_KEY_BAD: return false;
    case SB_BACKOFF_KEY_OTHER: break;
    }
    double min, max;
    long *milliseconds = seconds_field(self, key, &min, &max);
    if (milliseconds) {
        if (!sb_seconds_parse_ms(value, min, max, milliseconds))
            return snprintf(reason, size, "%s must be seconds from %g to %g, not '%s'", key, min,
                            max, value), false;
        return true;
    }
    char **text = text_field(self, key);
    if (text) {
        if (*value == '\0' || strpbrk(value, " \t\r\n"))
            return snprintf(reason, size, "%s must be one word, not '%s'", key, value), false;
        return set_text(text, value);
    }
    if (strcmp(key, "address") == 0) {
        if (!is_address(value))
            return snprintf(reason, size, "address must be HOST:PORT, not '%s'", value), false;
        if (self->address_count == SB_BRIDGE_MAX_ADDRESSES)
            return fail(reason, size, "too many addresses (at most 16 per bridge)");
        self->addresses[self->address_count++] = strdup(value);
        return true;
    }
    if (strcmp(key, "topic") == 0)
        return add_rule(self, value, line, reason, size);
    if (strcmp(key, "version") == 0) {
        if (strcmp(value, "5") == 0 || strcmp(value, "5.0") == 0)
            self->version = 5;
        else if (strcmp(value, "3.1.1") == 0)
            self->version = 4;
        else
            return snprintf(reason, size, "version must be 3.1.1 or 5, not '%s'", value), false;
        return true;
    }
    if (strcmp(key, "tls") == 0 || strcmp(key, "clean") == 0) {
        if (!parse_yes_no(value, key[0] == 't' ? &self->tls : &self->clean))
            return snprintf(reason, size, "%s must be yes or no, not '%s'", key, value), false;
        return true;
    }
    if (strcmp(key, "max_queued") == 0) {
        if (!parse_long(value, 0, 1000000, &self->max_queued))
            return snprintf(reason, size, "max_queued must be from 0 to 1000000, not '%s'",
                            value), false;
        return true;
    }
    if (strcmp(key, "password") == 0)
        return fail(reason, size, "the password goes in a file: password_file = PATH");
    snprintf(reason, size, "unknown key '%s' in [bridge %s] (known: address, version, client_id, "
             "username, password_file, tls, tls_ca_file, tls_cert, tls_key, keepalive, "
             "clean, topic, max_queued, " SB_BACKOFF_SETTINGS_KEYS ")", key, self->name);
    return false;
}

static void check_readable(const char *path, const char *key, int line,
                           void (*problem)(void *, int, const char *), void *arg)
{
    if (path && access(path, R_OK) != 0) {
        char reason[512];
        snprintf(reason, sizeof reason, "%s '%s' cannot be read: %s", key, path, strerror(errno));
        problem(arg, line, reason);
    }
}

void sb_bridge_config_check(const sb_bridge_config_t *self,
                            void (*problem)(void *arg, int line, const char *reason), void *arg)
{
    char reason[512];
    int line = self->line;
    if (strpbrk(self->name, " /+#=\t")) {
        snprintf(reason, sizeof reason, "bridge name '%s' must be one word without / + # or =",
                 self->name);
        problem(arg, line, reason);
    }
    if (self->address_count == 0) {
        snprintf(reason, sizeof reason, "bridge '%s' has no address (address = HOST:PORT)",
                 self->name);
        problem(arg, line, reason);
    }
    if (self->rule_count == 0) {
        snprintf(reason, sizeof reason, "bridge '%s' has no topic rule (topic = PATTERN ...)",
                 self->name);
        problem(arg, line, reason);
    }
    if (!self->tls_cert != !self->tls_key) {
        snprintf(reason, sizeof reason, "bridge '%s': tls_cert and tls_key go together",
                 self->name);
        problem(arg, line, reason);
    }
    if (!self->clean && !self->client_id) {
        snprintf(reason, sizeof reason, "bridge '%s': clean = no needs a client_id of its own",
                 self->name);
        problem(arg, line, reason);
    }
    if (sb_backoff_settings_are_inverted(&self->backoff)) {
        snprintf(reason, sizeof reason, "bridge '%s': backoff_max is shorter than backoff_initial",
                 self->name);
        problem(arg, line, reason);
    }
    check_readable(self->password_file, "password_file", line, problem, arg);
    check_readable(self->tls_ca_file, "tls_ca_file", line, problem, arg);
    check_readable(self->tls_cert, "tls_cert", line, problem, arg);
    check_readable(self->tls_key, "tls_key", line, problem, arg);
}

static bool share_an_address(const sb_bridge_config_t *a, const sb_bridge_config_t *b)
{
    for (size_t i = 0; i < a->address_count; i++)
        for (size_t j = 0; j < b->address_count; j++)
            if (strcmp(a->addresses[i], b->addresses[j]) == 0)
                return true;
    return false;
}

/* Whether the filters two rules make on one side share a topic. */
static bool overlap(const sb_bridge_rule_t *a, const sb_bridge_rule_t *b, bool local)
{
    char first[1024], second[1024];
    snprintf(first, sizeof first, "%s%s", local ? a->local_prefix : a->remote_prefix, a->pattern);
    snprintf(second, sizeof second, "%s%s", local ? b->local_prefix : b->remote_prefix,
             b->pattern);
    return sb_topic_filters_overlap(first, second);
}

/* A rule of `from` takes in what a rule of `to` sends out (on the remote)
 * and hands it to that rule again (on the hub): a circle through the remote. */
static const sb_bridge_rule_t *relayed(const sb_bridge_config_t *from,
                                       const sb_bridge_config_t *to)
{
    for (size_t i = 0; i < from->rule_count; i++) {
        const sb_bridge_rule_t *in = &from->rules[i];
        for (size_t j = 0; j < to->rule_count && (in->direction & SB_BRIDGE_IN); j++) {
            const sb_bridge_rule_t *out = &to->rules[j];
            if ((out->direction & SB_BRIDGE_OUT) && overlap(in, out, true)
                && overlap(in, out, false))
                return in;
        }
    }
    return NULL;
}

void sb_bridge_config_check_pair(const sb_bridge_config_t *a, const sb_bridge_config_t *b,
                                 void (*problem)(void *arg, int line, const char *reason),
                                 void *arg)
{
    if (!share_an_address(a, b))
        return;
    const sb_bridge_rule_t *rule = relayed(a, b);
    const sb_bridge_config_t *in = a, *out = b;
    if (!rule) {
        rule = relayed(b, a);
        in = b;
        out = a;
    }
    if (!rule)
        return;
    char reason[512];
    snprintf(reason, sizeof reason, "bridges '%s' and '%s' reach the same address, and what '%s' "
             "sends out '%s' takes in again: messages would go round for ever (one bridge per "
             "remote, or rules that do not overlap)", in->name, out->name, out->name, in->name);
    problem(arg, rule->line, reason);
}

bool sb_bridge_config_read_password(const sb_bridge_config_t *self, char *out, size_t size,
                                    char *reason, size_t reason_size)
{
    out[0] = '\0';
    if (!self->password_file)
        return true;
    FILE *file = fopen(self->password_file, "r");
    if (!file) {
        snprintf(reason, reason_size, "cannot open password_file %s: %s", self->password_file,
                 strerror(errno));
        return false;
    }
    bool ok = fgets(out, (int) size, file) != NULL;
    fclose(file);
    out[strcspn(out, "\r\n")] = '\0';
    if (!ok || out[0] == '\0') {
        snprintf(reason, reason_size, "password_file %s is empty", self->password_file);
        return false;
    }
    return true;
}
