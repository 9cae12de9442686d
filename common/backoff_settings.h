/* backoff_settings.h — the backoff of a link that redials, as a config
 * section writes it: `backoff_initial` and `backoff_max` (seconds),
 * `backoff_factor` (1 to 10) and `backoff_jitter` (0 to 1). [device NAME]
 * and [bridge NAME] both have them; their names, ranges and defaults are
 * kept here once. */
#ifndef SB_BACKOFF_SETTINGS_H
#define SB_BACKOFF_SETTINGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backoff.h"

typedef struct {
    long initial_ms, max_ms;
    double factor, jitter;
} sb_backoff_settings_t;

/* 1 s, doubling, at most 60 s, 20 % jitter. */
#define SB_BACKOFF_SETTINGS_DEFAULT ((sb_backoff_settings_t) { 1000, 60000, 2, 0.2 })

/* The keys, for "known:" lists in messages. */
#define SB_BACKOFF_SETTINGS_KEYS "backoff_initial, backoff_factor, backoff_max, backoff_jitter"

typedef enum {
    SB_BACKOFF_KEY_OTHER,   /* not one of the four */
    SB_BACKOFF_KEY_SET,
    SB_BACKOFF_KEY_BAD,     /* one of them, with a bad value: `reason` says why */
} sb_backoff_key_t;

sb_backoff_key_t sb_backoff_settings_set(sb_backoff_settings_t *self, const char *key,
                                         const char *value, char *reason, size_t size);

/* A backoff_max shorter than backoff_initial (a config check problem). */
bool sb_backoff_settings_are_inverted(const sb_backoff_settings_t *self);

void sb_backoff_init_from(sb_backoff_t *backoff, const sb_backoff_settings_t *settings,
                          uint64_t seed);

#endif
