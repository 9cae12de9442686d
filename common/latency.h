/* latency.h — a fixed-size latency histogram for `stats` and /metrics.
 * Buckets are log-linear (8 per power of two of microseconds), so
 * percentiles are within 12.5 % and recording costs no allocation. */
#ifndef SB_LATENCY_H
#define SB_LATENCY_H

#include <stdint.h>

#define SB_LATENCY_BUCKETS (40 * 8)

typedef struct {
    uint64_t count;
    uint64_t sum_us;
    uint64_t buckets[SB_LATENCY_BUCKETS];
} sb_latency_t;

void sb_latency_record(sb_latency_t *self, uint64_t microseconds);

/* The value below which `percent` (0..100) of the recordings fall; 0 when empty. */
uint64_t sb_latency_percentile(const sb_latency_t *self, double percent);

/* How many recordings were at most `microseconds` (to within a bucket), for
 * a Prometheus histogram's cumulative buckets. */
uint64_t sb_latency_count_at_most(const sb_latency_t *self, uint64_t microseconds);

#endif
