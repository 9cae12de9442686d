/* bench_support.c — the clock, errors, option numbers and latency histogram
 * the load generators in bench/ share (see bench_support.h). */
#include "bench_support.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

uint64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

_Noreturn void bench_die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", program_invocation_short_name);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

void *bench_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n);
    if (!q)
        bench_die("out of memory");
    return q;
}

unsigned long long bench_parse_num(const char *name, const char *s, unsigned long long min,
                                   unsigned long long max)
{
    char *end;
    errno = 0;
    if (*s == '-' || *s == '\0')
        bench_die("--%s: not a non-negative integer: '%s'", name, s);
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end != '\0')
        bench_die("--%s: not a non-negative integer: '%s'", name, s);
    if (v < min || v > max)
        bench_die("--%s: %llu is out of range [%llu, %llu]", name, v, min, max);
    return v;
}

void bench_raise_nofile(unsigned long need)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < need) {
        rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= need ? need : rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static unsigned hist_index(uint64_t v)
{
    if (v < (1ull << BENCH_HIST_SUB))
        return (unsigned)v;
    int msb = 63 - __builtin_clzll(v);
    int e = msb - BENCH_HIST_SUB + 1;
    return (unsigned)e * BENCH_HIST_HALF + (unsigned)(v >> e);
}

static uint64_t hist_mid(unsigned idx)
{
    if (idx < (1u << BENCH_HIST_SUB))
        return idx;
    unsigned e = idx / BENCH_HIST_HALF - 1;
    uint64_t q = idx % BENCH_HIST_HALF + BENCH_HIST_HALF;
    uint64_t lo = q << e, width = 1ull << e;
    return lo + (width - 1) / 2;
}

void bench_hist_init(bench_hist_t *self)
{
    memset(self, 0, sizeof *self);
    self->min = UINT64_MAX;
}

void bench_hist_add(bench_hist_t *self, uint64_t v)
{
    self->buckets[hist_index(v)]++;
    self->count++;
    self->sum += (long double)v;
    if (v < self->min)
        self->min = v;
    if (v > self->max)
        self->max = v;
}

uint64_t bench_hist_quantile(const bench_hist_t *self, double q)
{
    if (self->count == 0)
        return 0;
    uint64_t rank = (uint64_t)(q * (double)self->count + 0.999999999);
    if (rank < 1)
        rank = 1;
    if (rank > self->count)
        rank = self->count;
    uint64_t acc = 0;
    for (unsigned i = 0; i < BENCH_HIST_BUCKETS; i++) {
        acc += self->buckets[i];
        if (acc >= rank) {
            uint64_t v = hist_mid(i);
            if (v < self->min)
                v = self->min;
            if (v > self->max)
                v = self->max;
            return v;
        }
    }
    return self->max;
}

double bench_hist_mean(const bench_hist_t *self)
{
    return self->count ? (double)(self->sum / (long double)self->count) : 0.0;
}
