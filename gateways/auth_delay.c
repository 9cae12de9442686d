/* auth_delay.c — failed `auth` attempts by address (see auth_delay.h).
 * A linear table: it is searched only when an `auth` or a Bearer header
 * is tried. */
#include "auth_delay.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* "2001:db8:1:2::/64" and any IPv4 address fit. */
#define KEY_SIZE 64

typedef struct {
    char host[KEY_SIZE];     /* the key (see key_of); "" : a free entry */
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

/* What failures are counted under: an IPv6 address's /64 (a host picks
 * new addresses in it at will), anything else as given. An IPv4-mapped
 * IPv6 address is the IPv4 one. */
static void key_of(const char *address, char key[KEY_SIZE])
{
    struct in6_addr ip6;
    if (inet_pton(AF_INET6, address, &ip6) == 1) {
        if (IN6_IS_ADDR_V4MAPPED(&ip6)) {
            inet_ntop(AF_INET, &ip6.s6_addr[12], key, KEY_SIZE);
            return;
        }
        memset(&ip6.s6_addr[8], 0, 8);
        char prefix[INET6_ADDRSTRLEN];
        inet_ntop(AF_INET6, &ip6, prefix, sizeof prefix);
        snprintf(key, KEY_SIZE, "%s/64", prefix);
        return;
    }
    snprintf(key, KEY_SIZE, "%s", address);
}

/* The entry of `address`, if any; its key into `key`. */
static entry_t *find(const sb_auth_delay_t *self, const char *address, char key[KEY_SIZE])
{
    key_of(address, key);
    for (size_t i = 0; i < self->size; i++)
        if (self->entries[i].host[0] && strcmp(self->entries[i].host, key) == 0)
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
    char key[KEY_SIZE];
    entry_t *entry = find(self, address, key);
    if (!entry)
        entry = claim(self, key);
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
    char key[KEY_SIZE];
    const entry_t *entry = find(self, address, key);
    return entry && entry->until_ms > now_ms ? (uint32_t) (entry->until_ms - now_ms) : 0;
}
