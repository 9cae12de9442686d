/* bench_support.c — the clock, errors, option numbers, latency histogram,
 * server CPU time and closed-loop run the load generators in bench/ share
 * (see bench_support.h). */
#include "bench_support.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
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
#include <unistd.h>

#define PROGRESS_TIMEOUT_NS (10ull * 1000000000ull)

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

/* ------------------------------------------------------------ CPU time */

struct proc_cpu {
    pid_t pid, ppid;
    unsigned long long ticks; /* utime + stime + cutime + cstime */
    bool counted;
};

static int proc_cmp(const void *a, const void *b)
{
    pid_t x = ((const struct proc_cpu *)a)->pid, y = ((const struct proc_cpu *)b)->pid;
    return (x > y) - (x < y);
}

/* Reads /proc/PID/stat of `pid` into *p; false when it is gone or unreadable. */
static bool proc_read(pid_t pid, struct proc_cpu *p)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return false;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* the command name may hold spaces and parentheses: fields follow the last ')' */
    const char *rest = strrchr(buf, ')');
    int ppid;
    unsigned long long ut, st, cut, cst;
    if (!rest || sscanf(rest + 1, " %*c %d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %llu %llu",
                        &ppid, &ut, &st, &cut, &cst) != 5)
        return false;
    *p = (struct proc_cpu){.pid = pid, .ppid = ppid, .ticks = ut + st + cut + cst};
    return true;
}

double bench_cpu_seconds(const pid_t *roots, size_t count)
{
    DIR *d = opendir("/proc");
    if (!d)
        bench_die("opendir /proc: %s", strerror(errno));
    struct proc_cpu *procs = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        char *end;
        long pid = strtol(e->d_name, &end, 10);
        if (*end != '\0' || pid <= 0)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 256;
            procs = bench_xrealloc(procs, cap * sizeof *procs);
        }
        if (proc_read((pid_t)pid, &procs[n]))
            n++;
    }
    closedir(d);
    qsort(procs, n, sizeof *procs, proc_cmp);
    for (size_t i = 0; i < n; i++)
        for (size_t r = 0; r < count; r++)
            procs[i].counted |= procs[i].pid == roots[r];
    /* a process counts when its parent does: repeat until the trees stop growing */
    for (bool grew = true; grew;) {
        grew = false;
        for (size_t i = 0; i < n; i++) {
            if (procs[i].counted)
                continue;
            struct proc_cpu key = {.pid = procs[i].ppid};
            const struct proc_cpu *parent = bsearch(&key, procs, n, sizeof *procs, proc_cmp);
            if (parent && parent->counted)
                procs[i].counted = grew = true;
        }
    }
    unsigned long long ticks = 0;
    for (size_t i = 0; i < n; i++)
        if (procs[i].counted)
            ticks += procs[i].ticks;
    free(procs);
    return (double)ticks / (double)sysconf(_SC_CLK_TCK);
}

/* ----------------------------------------------------- a closed-loop run */

void bench_load_init(bench_load_t *self)
{
    *self = (bench_load_t){.host = "127.0.0.1", .connections = 1, .pipeline = 1};
}

static void parse_pids(bench_load_t *self, const char *arg)
{
    self->cpu_count = 0;
    char *copy = strdup(arg);
    if (!copy)
        bench_die("out of memory");
    char *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (self->cpu_count == BENCH_MAX_CPU_PIDS)
            bench_die("--cpu-pids: more than %d pids", BENCH_MAX_CPU_PIDS);
        self->cpu_pids[self->cpu_count++] = (pid_t)bench_parse_num("cpu-pids", tok, 1, INT32_MAX);
    }
    free(copy);
    if (self->cpu_count == 0)
        bench_die("--cpu-pids: no pid given");
}

bool bench_load_option(bench_load_t *self, int code, const char *arg)
{
    switch (code) {
    case BENCH_OPT_HOST: self->host = arg; break;
    case BENCH_OPT_PORT:
        bench_parse_num("port", arg, 1, 65535);
        self->port = arg;
        break;
    case BENCH_OPT_CONNECTIONS:
        self->connections = (unsigned long)bench_parse_num("connections", arg, 1, 100000);
        break;
    case BENCH_OPT_PIPELINE:
        self->pipeline = (unsigned long)bench_parse_num("pipeline", arg, 1, 1000000);
        break;
    case BENCH_OPT_REQUESTS: self->requests = bench_parse_num("requests", arg, 1, 1ull << 48); break;
    case BENCH_OPT_WARMUP: self->warmup = bench_parse_num("warmup", arg, 0, 1ull << 48); break;
    case BENCH_OPT_CPU_PIDS: parse_pids(self, arg); break;
    default: return false;
    }
    return true;
}

void bench_load_check(const bench_load_t *self)
{
    if (!self->port)
        bench_die("--port is required (try --help)");
    if (!self->requests)
        bench_die("--requests is required (try --help)");
}

void bench_run_init(bench_run_t *self, const bench_load_t *load)
{
    memset(self, 0, sizeof *self);
    self->load = load;
    self->total = load->warmup + load->requests;
    self->t_progress = bench_now_ns();
    bench_hist_init(&self->latency);
}

/* The measured part begins now: the servers' CPU first, so reading /proc is not timed. */
static void begin_measure(bench_run_t *self)
{
    if (self->load->cpu_count)
        self->cpu_start = bench_cpu_seconds(self->load->cpu_pids, self->load->cpu_count);
    self->t_measure = bench_now_ns();
}

void bench_run_start(bench_run_t *self)
{
    self->started = true;
    self->t_progress = bench_now_ns();
    if (self->load->warmup == 0)
        begin_measure(self);
}

bool bench_run_issue(bench_run_t *self)
{
    if (self->issued >= self->total)
        return false;
    self->issued++;
    return true;
}

void bench_run_reply(bench_run_t *self, uint64_t sent, uint64_t now, bool error)
{
    self->t_progress = now;
    self->answered++;
    if (error) {
        self->errors++;
        if (self->answered <= self->load->warmup)
            self->warm_errors++;
    }
    if (self->answered > self->load->warmup)
        bench_hist_add(&self->latency, now - sent);
    else if (self->answered == self->load->warmup)
        begin_measure(self); /* the measurement starts with the last warm-up reply */
}

bool bench_run_done(const bench_run_t *self)
{
    return self->answered >= self->total;
}

void bench_run_progress(bench_run_t *self, uint64_t now)
{
    self->t_progress = now;
}

bool bench_run_stalled(const bench_run_t *self, uint64_t now)
{
    return now - self->t_progress > PROGRESS_TIMEOUT_NS;
}

void bench_run_finish(bench_run_t *self)
{
    self->t_end = bench_now_ns();
    if (self->load->cpu_count)
        self->cpu_end = bench_cpu_seconds(self->load->cpu_pids, self->load->cpu_count);
}

void bench_run_report(const bench_run_t *self)
{
    const bench_load_t *load = self->load;
    const bench_hist_t *h = &self->latency;
    double secs = (double)(self->t_end - self->t_measure) / 1e9;
    if (secs <= 0)
        secs = 1e-9;
    double rps = (double)load->requests / secs;
    double p50 = (double)bench_hist_quantile(h, 0.50) / 1e3;
    double p99 = (double)bench_hist_quantile(h, 0.99) / 1e3;
    double cpu_us = (self->cpu_end - self->cpu_start) * 1e6 / (double)load->requests;

    fprintf(stderr,
            "%s: %s:%s C=%lu D=%lu warmup=%llu: %llu requests in %.3f s = %.0f req/s; "
            "latency us: min %.1f mean %.1f p50 %.1f p90 %.1f p99 %.1f p99.9 %.1f max %.1f; "
            "errors %" PRIu64 " (%" PRIu64 " during warmup)",
            program_invocation_short_name, load->host, load->port, load->connections,
            load->pipeline, load->warmup, load->requests, secs, rps,
            h->count ? (double)h->min / 1e3 : 0.0, bench_hist_mean(h) / 1e3, p50,
            (double)bench_hist_quantile(h, 0.90) / 1e3, p99,
            (double)bench_hist_quantile(h, 0.999) / 1e3, (double)h->max / 1e3, self->errors,
            self->warm_errors);
    if (load->cpu_count)
        fprintf(stderr, "; server CPU %.3f s = %.1f us per request", self->cpu_end - self->cpu_start,
                cpu_us);
    fputc('\n', stderr);
    printf("requests=%llu seconds=%.3f rps=%.0f p50_us=%.1f p99_us=%.1f errors=%" PRIu64,
           load->requests, secs, rps, p50, p99, self->errors);
    if (load->cpu_count)
        printf(" cpu_us=%.1f", cpu_us);
    putchar('\n');
}

/* ---------------------------------------------------------------- event loop */

static struct addrinfo *resolve(const char *host, const char *port)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *server;
    int error = getaddrinfo(host, port, &hints, &server);
    if (error)
        bench_die("cannot resolve %s:%s: %s", host, port, gai_strerror(error));
    return server;
}

static void dispatch_event(const bench_conn_events_t *events, void *conn, uint32_t happened)
{
    if (events->is_connecting(conn)) {
        if (happened & (EPOLLOUT | EPOLLERR | EPOLLHUP))
            events->connected(conn);
        return;
    }
    if (happened & (EPOLLIN | EPOLLERR | EPOLLHUP))
        events->readable(conn);
    if (happened & EPOLLOUT)
        events->writable(conn);
}

int bench_run_main(bench_run_t *run, const bench_conn_events_t *events)
{
    bench_raise_nofile(run->load->connections + 16);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0)
        bench_die("epoll_create1: %s", strerror(errno));
    struct addrinfo *server = resolve(run->load->host, run->load->port);
    events->open(ep, server);
    freeaddrinfo(server);
    struct epoll_event happened[256];
    while (!bench_run_done(run)) {
        int count = epoll_wait(ep, happened, 256, 250);
        if (count < 0 && errno != EINTR)
            bench_die("epoll_wait: %s", strerror(errno));
        for (int i = 0; i < count; i++)
            dispatch_event(events, happened[i].data.ptr, happened[i].events);
        if (!run->started && events->all_ready())
            events->start();
        if (bench_run_stalled(run, bench_now_ns())) {
            events->stalled();
            return 2;
        }
    }
    bench_run_finish(run);
    bench_run_report(run);
    close(ep);
    return 0;
}
