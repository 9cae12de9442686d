/* backoff.h — exponential backoff with jitter, for anything that retries:
 * respawning a crashing child, redialing a device that is away.
 * Each delay is the current base less a random share of up to `jitter`
 * (0..1) of it, so many retriers started together spread out. */
#ifndef SB_BACKOFF_H
#define SB_BACKOFF_H

#include <stdint.h>

typedef struct {
    long initial_ms;
    long max_ms;
    double factor;
    double jitter;
    long base_ms;           /* the next delay before jitter */
    uint64_t random_state;
} sb_backoff_t;

void sb_backoff_init(sb_backoff_t *self, long initial_ms, double factor, long max_ms,
                     double jitter, uint64_t seed);

/* The delay to wait before the next attempt; each call grows the next one. */
long sb_backoff_next_delay(sb_backoff_t *self);

/* Back to the initial delay, after a success that lasted. */
void sb_backoff_reset(sb_backoff_t *self);

#endif
