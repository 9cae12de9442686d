/* auth_delay.c — failed `auth` attempts by address (see auth_delay.h).
 * A linear table: it is searched only when an `auth` fails or succeeds. */
#include "auth_delay.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char host[64];           /* "" : a free entry */
    unsigned failures;
    int64_t last_ms;
    int64_t until_ms;        /* the end of the last failure's delay */
} entry_t;

struct sb_auth_delay {
    entry_t *entries;
    size_t size;
};

sb_auth_delay_t *sb_auth_delay_new(size_t max_addresses)
{
    sb_auth_delay_t *self = calloc(1, sizeof *self);
    self->size = max_addresses ? max_addresses : 1;
    self->entries = calloc(self->size, sizeof *self->entries);
    return self;
}

void sb_auth_delay_destroy(sb_auth_delay_t **self_p)
{
    if (!*self_p)
        return;
    free((*self_p)->entries);
    free(*self_p);
    *self_p = NULL;
}

static entry_t *find(const sb_auth_delay_t *self, const char *host)
{
    for (size_t i = 0; i < self->size; i++)
        if (self->entries[i].host[0] && strcmp(self->entries[i].host, host) == 0)
            return &self->entries[i];
    return NULL;
}

/* A free entry, or the one whose last failure is oldest. */
static entry_t *claim(sb_auth_delay_t *self, const char *host)
{
    entry_t *chosen = &self->entries[0];
    for (size_t i = 0; i < self->size && chosen->host[0]; i++)
        if (!self->entries[i].host[0] || self->entries[i].last_ms < chosen->last_ms)
            chosen = &self->entries[i];
    *chosen = (entry_t) { .failures = 0 };
    snprintf(chosen->host, sizeof chosen->host, "%s", host);
    return chosen;
}

uint32_t sb_auth_delay_failed(sb_auth_delay_t *self, const char *address, int64_t now_ms)
{
    entry_t *entry = find(self, address);
    if (!entry)
        entry = claim(self, address);
    if (now_ms - entry->last_ms > SB_AUTH_FORGET_MS)
        entry->failures = 0;
    entry->last_ms = now_ms;
    entry->failures++;
    uint32_t delay = entry->failures <= SB_AUTH_FREE_FAILURES ? 0 : SB_AUTH_DELAY_FIRST_MS;
    for (unsigned n = SB_AUTH_FREE_FAILURES + 1; n < entry->failures && delay < SB_AUTH_DELAY_MAX_MS; n++)
        delay *= 2;
    delay = delay < SB_AUTH_DELAY_MAX_MS ? delay : SB_AUTH_DELAY_MAX_MS;
    entry->until_ms = now_ms + delay;
    return delay;
}

uint32_t sb_auth_delay_remaining(const sb_auth_delay_t *self, const char *address, int64_t now_ms)
{
    const entry_t *entry = find(self, address);
    return entry && entry->until_ms > now_ms ? (uint32_t) (entry->until_ms - now_ms) : 0;
}

void sb_auth_delay_succeeded(sb_auth_delay_t *self, const char *address)
{
    entry_t *entry = find(self, address);
    if (entry)
        entry->host[0] = '\0';
}
