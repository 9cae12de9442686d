/* bench_support.h — what the load generators in bench/ share (not installed):
 * a monotonic clock, fatal errors, checked numbers from the command line, the
 * descriptor limit, and a log-linear latency histogram. */
#ifndef SB_BENCH_SUPPORT_H
#define SB_BENCH_SUPPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct addrinfo;

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t bench_now_ns(void);

/* Prints "PROGRAM: message" on stderr and exits with status 1. */
__attribute__((format(printf, 1, 2))) _Noreturn void bench_die(const char *fmt, ...);

/* realloc that dies when memory runs out. */
void *bench_xrealloc(void *p, size_t n);

/* The decimal value of option --NAME, which must lie in [min, max] (else dies). */
unsigned long long bench_parse_num(const char *name, const char *text, unsigned long long min,
                                   unsigned long long max);

/* Raises the soft RLIMIT_NOFILE to `need` descriptors where the hard limit allows. */
void bench_raise_nofile(unsigned long need);

/* A non-blocking TCP_NODELAY socket connecting to `server`, registered with
 * epoll `ep` for EPOLLIN | EPOLLOUT with `ptr` (dies on failure). */
int bench_connect(int ep, const struct addrinfo *server, void *ptr);

/* Dies with "connect to HOST:PORT: error" when the connect on `fd` failed. */
void bench_check_connected(int fd, const char *host, const char *port);

/* Sets the epoll events of `fd` to EPOLLIN, plus EPOLLOUT when `want_out`;
 * *watching_out holds the current choice, so nothing is asked twice. */
void bench_watch(int ep, int fd, void *ptr, bool *watching_out, bool want_out);

/* Writes data[*offset..length) while the socket takes it, advancing *offset;
 * true when all is written, false when the socket is full (wait for
 * EPOLLOUT). Dies on an error, naming connection `id`. */
bool bench_send(int fd, const void *data, size_t length, size_t *offset, unsigned id);

/* Reads up to `size` bytes: their count, 0 when the server closed the
 * connection, -1 when nothing is there yet. Dies on an error, naming
 * connection `id`. */
long bench_recv(int fd, void *buf, size_t size, unsigned id);

/*
 * Values < 2^SUB are exact; above that each power of two is split into
 * 2^(SUB-1) equal buckets, so the relative bucket width is <= 2^-(SUB-1).
 */
#define BENCH_HIST_SUB 8
#define BENCH_HIST_HALF (1u << (BENCH_HIST_SUB - 1))
#define BENCH_HIST_BUCKETS ((64 - BENCH_HIST_SUB) * BENCH_HIST_HALF + (1u << BENCH_HIST_SUB))

typedef struct {
    uint64_t buckets[BENCH_HIST_BUCKETS];
    uint64_t count, min, max;
    long double sum;
} bench_hist_t;

void bench_hist_init(bench_hist_t *self);
void bench_hist_add(bench_hist_t *self, uint64_t value);
/* Value at quantile q (0..1], nearest-rank, clamped to the observed range; 0 when empty. */
uint64_t bench_hist_quantile(const bench_hist_t *self, double q);
/* Mean of the values added; 0 when empty. */
double bench_hist_mean(const bench_hist_t *self);

#endif
