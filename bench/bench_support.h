/* bench_support.h — what the load generators in bench/ share (not installed):
 * a monotonic clock, fatal errors, checked numbers from the command line, the
 * descriptor limit, a log-linear latency histogram, the CPU time of the server
 * processes, and the options, counting, event loop and report of a
 * closed-loop request/reply run (sb-bench, sb-nats-bench). */
#ifndef SB_BENCH_SUPPORT_H
#define SB_BENCH_SUPPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

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

/* CPU seconds (user + system, reaped children included) used so far by the
 * processes `roots` and all their descendants, from /proc/PID/stat; a root
 * that is gone counts 0. Descendants are found afresh on every call, so a
 * worker started or reaped between two calls is still counted. */
double bench_cpu_seconds(const pid_t *roots, size_t count);

/* ----------------------------------------------- a closed-loop run */

#define BENCH_MAX_CPU_PIDS 128

/* The options every closed-loop generator takes. */
typedef struct {
    const char *host;
    const char *port;
    unsigned long connections;
    unsigned long pipeline;
    unsigned long long requests;
    unsigned long long warmup;
    pid_t cpu_pids[BENCH_MAX_CPU_PIDS];
    size_t cpu_count;
} bench_load_t;

/* getopt_long codes of those options; a program's own start at BENCH_OPT_OWN. */
enum {
    BENCH_OPT_HOST = 256,
    BENCH_OPT_PORT,
    BENCH_OPT_CONNECTIONS,
    BENCH_OPT_PIPELINE,
    BENCH_OPT_REQUESTS,
    BENCH_OPT_WARMUP,
    BENCH_OPT_CPU_PIDS,
    BENCH_OPT_OWN,
};

/* Entries for a program's `struct option` table. */
#define BENCH_LOAD_LONGOPTS                                                                       \
    {"host", required_argument, NULL, BENCH_OPT_HOST},                                            \
        {"port", required_argument, NULL, BENCH_OPT_PORT},                                        \
        {"connections", required_argument, NULL, BENCH_OPT_CONNECTIONS},                          \
        {"pipeline", required_argument, NULL, BENCH_OPT_PIPELINE},                                \
        {"requests", required_argument, NULL, BENCH_OPT_REQUESTS},                                \
        {"warmup", required_argument, NULL, BENCH_OPT_WARMUP},                                    \
        {"cpu-pids", required_argument, NULL, BENCH_OPT_CPU_PIDS}

/* Their lines for --help. */
#define BENCH_LOAD_USAGE                                                                          \
    "  --host H          server address (default 127.0.0.1)\n"                                    \
    "  --port P          server port (required)\n"                                                \
    "  --connections C   concurrent connections (default 1)\n"                                    \
    "  --pipeline D      requests kept in flight per connection (default 1)\n"                    \
    "  --requests N      measured requests to complete (required)\n"                              \
    "  --warmup W        extra requests answered before measuring starts\n"                       \
    "                    (default 0)\n"                                                           \
    "  --cpu-pids P,...  server processes (each with its descendants) whose\n"                    \
    "                    CPU time over the measured requests is reported as\n"                    \
    "                    cpu_us= (microseconds per request)\n"

/* The defaults: 127.0.0.1, 1 connection, 1 in flight, no CPU pids. */
void bench_load_init(bench_load_t *self);
/* Takes getopt_long's option `code` with `arg` when it is one of
 * BENCH_LOAD_LONGOPTS (true), else leaves it to the caller (false). */
bool bench_load_option(bench_load_t *self, int code, const char *arg);
/* Dies unless --port and --requests were given. */
void bench_load_check(const bench_load_t *self);

/* The state of a run: what was sent and answered, when the measured part
 * began, the latencies of the measured requests, the servers' CPU. */
typedef struct {
    const bench_load_t *load;
    uint64_t total; /* warmup + requests */
    uint64_t issued, answered, errors, warm_errors;
    uint64_t t_measure, t_progress, t_end;
    double cpu_start, cpu_end;
    bool started;
    bench_hist_t latency;
} bench_run_t;

void bench_run_init(bench_run_t *self, const bench_load_t *load);
/* Every connection is ready: the load (and, without warm-up, the measurement) begins. */
void bench_run_start(bench_run_t *self);
/* One more request may be sent (counts it) or false when all are out. */
bool bench_run_issue(bench_run_t *self);
/* A reply to a request sent at `sent` arrived at `now`; `error` when the
 * server answered it with an error. The last warm-up reply starts the
 * measurement. */
void bench_run_reply(bench_run_t *self, uint64_t sent, uint64_t now, bool error);
/* All requests are answered. */
bool bench_run_done(const bench_run_t *self);
/* Something arrived at `now` (a greeting, a handshake reply). */
void bench_run_progress(bench_run_t *self, uint64_t now);
/* No progress for 10 s at `now`. */
bool bench_run_stalled(const bench_run_t *self, uint64_t now);
/* Ends the measurement (time and CPU). */
void bench_run_finish(bench_run_t *self);
/* The human summary on stderr, and on stdout the one machine-readable line
 *   requests=N seconds=S rps=R p50_us=X p99_us=Y errors=E [cpu_us=U]
 * (cpu_us only with --cpu-pids). */
void bench_run_report(const bench_run_t *self);

/* What a load generator's connections do on the events of bench_run_main's
 * loop; `conn` is the pointer each connection was registered with. */
typedef struct {
    /* Opens the connections to `server` on epoll `ep` (bench_connect). */
    void (*open)(int ep, const struct addrinfo *server);
    bool (*is_connecting)(const void *conn);
    void (*connected)(void *conn);      /* its connect ended (EPOLLOUT, ERR or HUP) */
    void (*readable)(void *conn);
    void (*writable)(void *conn);
    bool (*all_ready)(void);            /* every connection may take the load */
    void (*start)(void);                /* ... so it begins (calls bench_run_start) */
    /* No progress for 10 s: say on stderr what was waited for. */
    void (*stalled)(void);
} bench_conn_events_t;

/* The whole run after the options are read: resolves the server, opens the
 * connections, drives them until every request is answered, reports.
 * The exit status: 0, or 2 when the run stalled. */
int bench_run_main(bench_run_t *run, const bench_conn_events_t *events);

#endif
