/* backoff.c — exponential backoff with jitter (see backoff.h). */
#include "backoff.h"

#include <math.h>

void sb_backoff_init(sb_backoff_t *self, long initial_ms, double factor, long max_ms,
                     double jitter, uint64_t seed)
{
    self->initial_ms = initial_ms;
    self->factor = factor < 1 ? 1 : factor;
    self->max_ms = max_ms < initial_ms ? initial_ms : max_ms;
    self->jitter = jitter < 0 ? 0 : jitter > 1 ? 1 : jitter;
    self->base_ms = initial_ms;
    self->random_state = seed ? seed : 0x9e3779b97f4a7c15ULL;
}

/* xorshift64*: plenty for spreading retries, and reproducible in tests. */
static double random_unit(sb_backoff_t *self)
{
    uint64_t x = self->random_state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    self->random_state = x;
    return (double) ((x * 0x2545F4914F6CDD1DULL) >> 11) / (double) (1ULL << 53);
}

long sb_backoff_next_delay(sb_backoff_t *self)
{
    long base = self->base_ms;
    double grown = (double) base * self->factor;
    self->base_ms = grown > (double) self->max_ms ? self->max_ms : (long) ceil(grown);
    return base - (long) ((double) base * self->jitter * random_unit(self));
}

void sb_backoff_reset(sb_backoff_t *self)
{
    self->base_ms = self->initial_ms;
}
