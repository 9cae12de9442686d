/* bench_support.c — the clock, errors, option numbers and latency histogram
 * the load generators in bench/ share (see bench_support.h). */
#include "bench_support.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
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

int bench_connect(int ep, const struct addrinfo *server, void *ptr)
{
    int fd = socket(server->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        bench_die("socket: %s", strerror(errno));
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, server->ai_addr, server->ai_addrlen) < 0 && errno != EINPROGRESS)
        bench_die("connect: %s", strerror(errno));
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = ptr};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0)
        bench_die("epoll_ctl: %s", strerror(errno));
    return fd;
}

void bench_check_connected(int fd, const char *host, const char *port)
{
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        err = errno;
    if (err)
        bench_die("connect to %s:%s: %s", host, port, strerror(err));
}

void bench_watch(int ep, int fd, void *ptr, bool *watching_out, bool want_out)
{
    if (*watching_out == want_out)
        return;
    struct epoll_event ev = {.events = EPOLLIN | (want_out ? EPOLLOUT : 0), .data.ptr = ptr};
    if (epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev) < 0)
        bench_die("epoll_ctl: %s", strerror(errno));
    *watching_out = want_out;
}

bool bench_send(int fd, const void *data, size_t length, size_t *offset, unsigned id)
{
    while (*offset < length) {
        ssize_t n = send(fd, (const char *)data + *offset, length - *offset, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return false;
            bench_die("connection %u: send: %s", id, strerror(errno));
        }
        *offset += (size_t)n;
    }
    return true;
}

long bench_recv(int fd, void *buf, size_t size, unsigned id)
{
    for (;;) {
        ssize_t n = recv(fd, buf, size, 0);
        if (n >= 0)
            return (long)n;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return -1;
        if (errno != EINTR)
            bench_die("connection %u: recv: %s", id, strerror(errno));
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
