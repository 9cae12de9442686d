/* access.c — tokens and their rules (see access.h).
 *
 * Lists from the config are split into words once, here; a rule check is
 * then a walk over a few words. Only the digest of a secret is kept. */
#include "access.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "log.h"
#include "protocol.h"
#include "secret.h"
#include "topic.h"

/* What a token may do when its section does not say. `#` does not see the
 * hub's own `$sys/...` topics, so "everything" names them too. */
#define TOKEN_COMMANDS  NULL                /* every command */
#define TOKEN_PUBLISH   "#"
#define TOKEN_SUBSCRIBE "# $sys/#"
/* What a client that has not said `auth` may do, when tokens exist. */
#define ANONYMOUS_COMMANDS  "ping help quit auth"
#define ANONYMOUS_PUBLISH   ""
#define ANONYMOUS_SUBSCRIBE ""

typedef struct {
    char **words;            /* NULL-terminated */
    bool all;                /* no list: every word */
} word_list_t;

struct sb_identity {
    char *token;             /* NULL: anonymous */
    uint8_t name_digest[SB_SECRET_DIGEST_SIZE];   /* of `token`: compared in constant time */
    uint8_t digest[SB_SECRET_DIGEST_SIZE];
    word_list_t commands, publish, subscribe;
    bool url_token;
};

struct sb_access {
    bool enabled;
    sb_identity_t anonymous;
    sb_identity_t *tokens;
    size_t token_count;
    uint8_t decoy[SB_SECRET_DIGEST_SIZE];   /* compared against when the name is unknown */
};

static word_list_t words_of(const char *list)
{
    word_list_t result = { .all = list == NULL };
    size_t count = 0;
    char *copy = strdup(list ? list : "");
    char *save = NULL;
    result.words = calloc(1, sizeof *result.words);
    for (char *word = strtok_r(copy, " \t", &save); word; word = strtok_r(NULL, " \t", &save)) {
        char **grown = realloc(result.words, (count + 2) * sizeof *grown);
        if (!grown)
            break;
        result.words = grown;
        result.words[count++] = strdup(word);
        result.words[count] = NULL;
    }
    free(copy);
    return result;
}

static void words_free(word_list_t *list)
{
    for (char **word = list->words; word && *word; word++)
        free(*word);
    free(list->words);
    list->words = NULL;
}

static void identity_free(sb_identity_t *self)
{
    free(self->token);
    words_free(&self->commands);
    words_free(&self->publish);
    words_free(&self->subscribe);
}

/* Rules from a section (NULL: none), each list falling back to its default. */
static void set_rules(sb_identity_t *self, const sb_token_config_t *section, const char *commands,
                      const char *publish, const char *subscribe)
{
    self->commands = words_of(section && section->commands ? section->commands : commands);
    self->publish = words_of(section && section->publish ? section->publish : publish);
    self->subscribe = words_of(section && section->subscribe ? section->subscribe : subscribe);
}

/* A plain secret is only as safe as the file it is written in. */
static void warn_if_readable(const sb_config_t *config, const sb_token_config_t *token)
{
    struct stat info;
    const char *path = sb_config_path(config);
    if (path && stat(path, &info) == 0 && (info.st_mode & (S_IRGRP | S_IROTH)))
        sb_log_warn("a plain token secret is in a file others may read",
                    "token=%s config=%s hint=\"use secret_sha256 (switchboard hash-secret) or "
                    "chmod 600\"", token->name, path);
}

static bool load_token(sb_identity_t *self, const sb_config_t *config,
                       const sb_token_config_t *token)
{
    self->token = strdup(token->name);
    if (!sb_secret_digest(token->name, strlen(token->name), self->name_digest))
        return false;
    set_rules(self, token, TOKEN_COMMANDS, TOKEN_PUBLISH, TOKEN_SUBSCRIBE);
    self->url_token = token->url_token;
    if (token->secret) {
        warn_if_readable(config, token);
        return sb_secret_digest(token->secret, strlen(token->secret), self->digest);
    }
    return token->secret_sha256 && sb_secret_parse_hex(token->secret_sha256, self->digest);
}

sb_access_t *sb_access_new(const sb_config_t *config)
{
    sb_access_t *self = calloc(1, sizeof *self);
    size_t count = config ? sb_config_token_count(config) : 0;
    const sb_token_config_t *anonymous = config ? sb_config_anonymous(config) : NULL;
    self->enabled = count > 0 || anonymous;
    if (self->enabled)
        set_rules(&self->anonymous, anonymous, ANONYMOUS_COMMANDS, ANONYMOUS_PUBLISH,
                  ANONYMOUS_SUBSCRIBE);
    else
        set_rules(&self->anonymous, NULL, TOKEN_COMMANDS, TOKEN_PUBLISH, TOKEN_SUBSCRIBE);
    self->tokens = calloc(count ? count : 1, sizeof *self->tokens);
    for (size_t i = 0; i < count; i++) {
        const sb_token_config_t *token = sb_config_token_at(config, i);
        if (!load_token(&self->tokens[self->token_count++], config, token))
            sb_log_error("token without a usable secret: nobody can use it", "token=%s",
                         token->name);   /* config_check refuses this before a start */
    }
    sb_secret_digest("switchboard: no such token", 26, self->decoy);
    return self;
}

void sb_access_destroy(sb_access_t **self_p)
{
    sb_access_t *self = *self_p;
    if (!self)
        return;
    identity_free(&self->anonymous);
    for (size_t i = 0; i < self->token_count; i++)
        identity_free(&self->tokens[i]);
    free(self->tokens);
    free(self);
    *self_p = NULL;
}

bool sb_access_enabled(const sb_access_t *self)
{
    return self->enabled;
}

const sb_identity_t *sb_access_anonymous(const sb_access_t *self)
{
    return &self->anonymous;
}

const sb_identity_t *sb_access_authenticate(const sb_access_t *self, const char *name,
                                            const char *secret)
{
    /* Every name is looked at, by digests of one length compared in
     * constant time, so the time taken tells neither where a match was nor
     * how much of a name was right. */
    uint8_t name_digest[SB_SECRET_DIGEST_SIZE], digest[SB_SECRET_DIGEST_SIZE];
    if (!sb_secret_digest(name, strlen(name), name_digest)
        || !sb_secret_digest(secret, strlen(secret), digest))
        return NULL;
    const sb_identity_t *found = NULL;
    for (size_t i = 0; i < self->token_count; i++) {
        bool same = sb_secret_digests_equal(self->tokens[i].name_digest, name_digest);
        found = same && !found ? &self->tokens[i] : found;
    }
    bool equal = sb_secret_digests_equal(digest, found ? found->digest : self->decoy);
    return found && equal ? found : NULL;
}

const sb_identity_t *sb_access_authenticate_pair(const sb_access_t *self, const char *pair)
{
    const char *colon = strchr(pair, ':');
    if (!colon || !sb_token_name_is_valid(pair, (size_t) (colon - pair)))
        return NULL;
    char name[SB_TOKEN_NAME_MAX + 1];
    snprintf(name, sizeof name, "%.*s", (int) (colon - pair), pair);
    return sb_access_authenticate(self, name, colon + 1);
}

const sb_identity_t *sb_access_token(const sb_access_t *self, const char *name)
{
    for (size_t i = 0; i < self->token_count; i++)
        if (strcmp(self->tokens[i].token, name) == 0)
            return &self->tokens[i];
    return NULL;
}

const char *sb_identity_token(const sb_identity_t *self)
{
    return self->token;
}

bool sb_identity_may_run(const sb_identity_t *self, const char *command)
{
    if (self->commands.all)
        return true;
    for (char **word = self->commands.words; *word; word++)
        if (strcmp(*word, command) == 0)
            return true;
    return false;
}

/* Whether `test` holds between `text` and one of the filters. */
static bool any_filter(const word_list_t *filters, const char *text,
                       bool (*test)(const char *filter, const char *text))
{
    for (char **filter = filters->words; *filter; filter++)
        if (test(*filter, text))
            return true;
    return false;
}

bool sb_identity_allows_url_token(const sb_identity_t *self)
{
    return self->url_token;
}

bool sb_identity_may_publish(const sb_identity_t *self, const char *topic)
{
    return any_filter(&self->publish, topic, sb_topic_matches);
}

bool sb_identity_may_subscribe(const sb_identity_t *self, const char *filter)
{
    return any_filter(&self->subscribe, filter, sb_topic_filters_overlap);
}

bool sb_identity_may_receive(const sb_identity_t *self, const char *topic)
{
    return any_filter(&self->subscribe, topic, sb_topic_matches);
}

char *const *sb_identity_subscribe_filters(const sb_identity_t *self)
{
    return self->subscribe.all ? NULL : self->subscribe.words;
}
