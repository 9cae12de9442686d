/* latency.c — log-linear latency histogram (see latency.h). */
#include "latency.h"

#define SUB_BUCKETS 8

static unsigned bucket_of(uint64_t value)
{
    if (value < SUB_BUCKETS)
        return (unsigned) value;
    unsigned power = 63u - (unsigned) __builtin_clzll(value);          /* >= 3 */
    unsigned sub = (unsigned) (value >> (power - 3)) & (SUB_BUCKETS - 1);
    unsigned bucket = (power - 2) * SUB_BUCKETS + sub;
    return bucket < SB_LATENCY_BUCKETS ? bucket : SB_LATENCY_BUCKETS - 1;
}

/* The upper edge of a bucket, reported as its value. */
static uint64_t bucket_limit(unsigned bucket)
{
    if (bucket < SUB_BUCKETS)
        return bucket;
    unsigned power = bucket / SUB_BUCKETS + 2;
    uint64_t sub = bucket % SUB_BUCKETS;
    return ((SUB_BUCKETS + sub + 1) << (power - 3)) - 1;
}

void sb_latency_record(sb_latency_t *self, uint64_t microseconds)
{
    self->buckets[bucket_of(microseconds)]++;
    self->count++;
    self->sum_us += microseconds;
}

uint64_t sb_latency_percentile(const sb_latency_t *self, double percent)
{
    if (self->count == 0)
        return 0;
    uint64_t rank = (uint64_t) ((double) self->count * percent / 100.0 + 0.5);
    if (rank < 1)
        rank = 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < SB_LATENCY_BUCKETS; i++) {
        seen += self->buckets[i];
        if (seen >= rank)
            return bucket_limit(i);
    }
    return bucket_limit(SB_LATENCY_BUCKETS - 1);
}

uint64_t sb_latency_count_at_most(const sb_latency_t *self, uint64_t microseconds)
{
    uint64_t count = 0;
    for (unsigned i = 0; i < SB_LATENCY_BUCKETS && bucket_limit(i) <= microseconds; i++)
        count += self->buckets[i];
    return count;
}
