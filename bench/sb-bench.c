/*
 * sb-bench — closed-loop load generator for switchboard's line-oriented TCP
 * gateway, and for any server that answers each request with exactly one
 * line (e.g. redis-server with inline "PING\r\n"), so the two can be compared
 * on the same machine by bench/run.sh.
 *
 * It opens C connections, reads and discards K greeting lines on each, then
 * keeps D requests in flight per connection (D copies of the payload up
 * front, one more per reply line) until N requests have been answered.
 * Latency of the k-th request on a connection = time it was written to the
 * socket -> arrival of the k-th reply line on that connection
 * (CLOCK_MONOTONIC, ns, log-linear histogram with < 0.4% bucket error).
 *
 * stdout gets exactly one machine-readable line:
 *   requests=N seconds=S rps=R p50_us=X p99_us=Y errors=E
 * and stderr a human-readable summary. Single thread, epoll, non-blocking
 * sockets. Exit status: 0 done, 1 error, 2 no progress for 10 s.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench_support.h"

#define PROGRESS_TIMEOUT_NS (10ull * 1000000000ull)
#define LINE_KEEP 120 /* bytes of each line kept for error messages */

static bench_hist_t latency;

/* ------------------------------------------------------------- options */

static struct {
    const char *host;
    const char *port;
    unsigned long connections;
    unsigned long pipeline;
    unsigned long long requests;
    unsigned long long warmup;
    unsigned long skip_lines;
    char *payload;
    size_t payload_len;
} opt = {
    .host = "127.0.0.1",
    .connections = 1,
    .pipeline = 1,
};

static void usage(FILE *f)
{
    fputs(
        "usage: sb-bench --port P --requests N [options]\n"
        "\n"
        "Closed-loop load generator for line-oriented request/reply servers\n"
        "(switchboard's TCP gateway, redis-server inline commands, ...).\n"
        "Every request must be answered by exactly one '\\n'-terminated line.\n"
        "\n"
        "  --host H          server address (default 127.0.0.1)\n"
        "  --port P          server port (required)\n"
        "  --connections C   concurrent connections (default 1)\n"
        "  --pipeline D      requests kept in flight per connection (default 1)\n"
        "  --requests N      measured requests to complete (required)\n"
        "  --payload S       request bytes; escapes \\n \\r \\t \\\\ are decoded\n"
        "                    (default 'echo hi\\n')\n"
        "  --skip-lines K    greeting lines to discard per connection before\n"
        "                    sending (default 0; switchboard greets with 1)\n"
        "  --warmup W        extra requests answered before measuring starts\n"
        "                    (default 0)\n"
        "  -h, --help        this text\n"
        "\n"
        "Prints one line on stdout:\n"
        "  requests=N seconds=S rps=R p50_us=X p99_us=Y errors=E\n"
        "where latency runs from writing the k-th request on a connection to\n"
        "reading its k-th reply line, seconds/rps/latency cover the N measured\n"
        "requests only, and errors counts reply lines (warmup included)\n"
        "starting with \"ERR\" or \"-ERR\". A human summary goes to stderr.\n"
        "Exit status: 0 done, 1 error, 2 no progress for 10 s.\n",
        f);
}

static void set_payload(const char *s)
{
    size_t n = strlen(s), o = 0;
    char *p = bench_xrealloc(NULL, n + 1);
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '\\') {
            p[o++] = s[i];
            continue;
        }
        switch (s[++i]) {
        case 'n': p[o++] = '\n'; break;
        case 'r': p[o++] = '\r'; break;
        case 't': p[o++] = '\t'; break;
        case '\\': p[o++] = '\\'; break;
        case '\0': bench_die("--payload: trailing backslash");
        default: bench_die("--payload: unknown escape '\\%c'", s[i]);
        }
    }
    p[o] = '\0';
    free(opt.payload);
    opt.payload = p;
    opt.payload_len = o;
}

static void parse_args(int argc, char **argv)
{
    enum { O_HOST = 256, O_PORT, O_CONN, O_PIPE, O_REQ, O_PAYLOAD, O_SKIP, O_WARM };
    static const struct option longopts[] = {
        {"host", required_argument, NULL, O_HOST},
        {"port", required_argument, NULL, O_PORT},
        {"connections", required_argument, NULL, O_CONN},
        {"pipeline", required_argument, NULL, O_PIPE},
        {"requests", required_argument, NULL, O_REQ},
        {"payload", required_argument, NULL, O_PAYLOAD},
        {"skip-lines", required_argument, NULL, O_SKIP},
        {"warmup", required_argument, NULL, O_WARM},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    bool have_req = false;
    set_payload("echo hi\\n");
    int c;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case O_HOST: opt.host = optarg; break;
        case O_PORT:
            bench_parse_num("port", optarg, 1, 65535);
            opt.port = optarg;
            break;
        case O_CONN: opt.connections = (unsigned long)bench_parse_num("connections", optarg, 1, 100000); break;
        case O_PIPE: opt.pipeline = (unsigned long)bench_parse_num("pipeline", optarg, 1, 1000000); break;
        case O_REQ:
            opt.requests = bench_parse_num("requests", optarg, 1, 1ull << 48);
            have_req = true;
            break;
        case O_PAYLOAD: set_payload(optarg); break;
        case O_SKIP: opt.skip_lines = (unsigned long)bench_parse_num("skip-lines", optarg, 0, 1000000); break;
        case O_WARM: opt.warmup = bench_parse_num("warmup", optarg, 0, 1ull << 48); break;
        case 'h': usage(stdout); exit(0);
        default: usage(stderr); exit(1);
        }
    }
    if (optind < argc)
        bench_die("unexpected argument '%s' (try --help)", argv[optind]);
    if (!opt.port)
        bench_die("--port is required (try --help)");
    if (!have_req)
        bench_die("--requests is required (try --help)");
    if (opt.payload_len == 0)
        bench_die("--payload must not be empty");
    size_t nl = 0;
    for (size_t i = 0; i < opt.payload_len; i++)
        nl += opt.payload[i] == '\n';
    if (nl != 1 || opt.payload[opt.payload_len - 1] != '\n')
        fprintf(stderr, "sb-bench: warning: payload should be exactly one line ending in \\n "
                        "(replies are matched to requests one line each)\n");
}

/* --------------------------------------------------------- connections */

enum cstate { C_CONNECTING, C_GREETING, C_READY };

struct conn {
    int fd;
    unsigned id;
    enum cstate st;
    unsigned long skip_left;
    bool epollout;              /* EPOLLOUT currently requested */
    /* send timestamps of in-flight requests: FIFO ring, capacity pipeline */
    uint64_t *ts;
    unsigned long ts_head, ts_count;
    unsigned long pending_stamp; /* enqueued requests not yet timestamped */
    /* unsent output */
    char *out;
    size_t out_off, out_len, out_cap;
    /* start of the line being received */
    char line[LINE_KEEP + 1];
    size_t line_len;
    uint64_t replies;
};

static int ep = -1;
static struct conn *conns;
static unsigned long n_ready;
static uint64_t total_target; /* warmup + requests */
static uint64_t issued, answered, errors, warm_errors;
static uint64_t t_measure, t_progress;
static bool load_started;

static void ep_mod(struct conn *c, bool want_out)
{
    bench_watch(ep, c->fd, c, &c->epollout, want_out);
}

static void open_conns(const struct addrinfo *ai)
{
    conns = calloc(opt.connections, sizeof *conns);
    if (!conns)
        bench_die("out of memory");
    for (unsigned long i = 0; i < opt.connections; i++) {
        struct conn *c = &conns[i];
        c->id = (unsigned)i;
        c->ts = bench_xrealloc(NULL, opt.pipeline * sizeof *c->ts);
        c->out_cap = opt.pipeline * opt.payload_len;
        c->out = bench_xrealloc(NULL, c->out_cap);
        c->skip_left = opt.skip_lines;
        c->st = C_CONNECTING;
        c->epollout = true;
        c->fd = bench_connect(ep, ai, c);
    }
}

static void enqueue_request(struct conn *c)
{
    if (c->out_len + opt.payload_len > c->out_cap) {
        while (c->out_len + opt.payload_len > c->out_cap)
            c->out_cap *= 2;
        c->out = bench_xrealloc(c->out, c->out_cap);
    }
    memcpy(c->out + c->out_len, opt.payload, opt.payload_len);
    c->out_len += opt.payload_len;
    c->pending_stamp++;
    issued++;
}

/* Timestamp freshly enqueued requests and write as much as the socket takes. */
static void flush_out(struct conn *c)
{
    if (c->pending_stamp) {
        uint64_t t = bench_now_ns();
        for (; c->pending_stamp; c->pending_stamp--) {
            if (c->ts_count >= opt.pipeline)
                bench_die("internal error: more than %lu requests in flight", opt.pipeline);
            c->ts[(c->ts_head + c->ts_count) % opt.pipeline] = t;
            c->ts_count++;
        }
    }
    if (!bench_send(c->fd, c->out, c->out_len, &c->out_off, c->id)) {
        ep_mod(c, true);
        return;
    }
    c->out_off = c->out_len = 0;
    ep_mod(c, false);
}

static void mark_ready(struct conn *c)
{
    c->st = C_READY;
    n_ready++;
}

static void start_load(void)
{
    load_started = true;
    t_measure = t_progress = bench_now_ns();
    for (unsigned long i = 0; i < opt.connections; i++) {
        struct conn *c = &conns[i];
        for (unsigned long k = 0; k < opt.pipeline && issued < total_target; k++)
            enqueue_request(c);
        flush_out(c);
    }
}

static const char *line_text(struct conn *c)
{
    c->line[c->line_len] = '\0';
    size_t n = c->line_len;
    while (n && (c->line[n - 1] == '\r'))
        c->line[--n] = '\0';
    return c->line;
}

static bool line_is_error(const struct conn *c)
{
    return (c->line_len >= 3 && !memcmp(c->line, "ERR", 3)) ||
           (c->line_len >= 4 && !memcmp(c->line, "-ERR", 4));
}

static void on_line(struct conn *c, uint64_t t)
{
    t_progress = t;
    if (c->st == C_GREETING) {
        if (line_is_error(c))
            bench_die("connection %u: server greeted with an error: %s", c->id, line_text(c));
        if (--c->skip_left == 0)
            mark_ready(c);
        return;
    }
    if (c->ts_count == 0)
        bench_die("connection %u: unsolicited line from server (wrong --skip-lines?): %s",
            c->id, line_text(c));
    uint64_t sent = c->ts[c->ts_head];
    c->ts_head = (c->ts_head + 1) % opt.pipeline;
    c->ts_count--;
    c->replies++;
    answered++;

    if (line_is_error(c)) {
        if (errors == 0)
            fprintf(stderr, "sb-bench: first error reply: %s\n", line_text(c));
        errors++;
        if (answered <= opt.warmup)
            warm_errors++;
    }
    if (answered > opt.warmup)
        bench_hist_add(&latency, t - sent);
    else if (answered == opt.warmup)
        t_measure = t; /* measurement window starts with the last warmup reply */
    if (issued < total_target)
        enqueue_request(c);
}

static void on_readable(struct conn *c)
{
    static char buf[1 << 16];
    for (;;) {
        long n = bench_recv(c->fd, buf, sizeof buf, c->id);
        if (n < 0)
            break;
        if (n == 0)
            bench_die("connection %u: closed by server (after %" PRIu64 " replies, %" PRIu64
                " answered in total)",
                c->id, c->replies, answered);
        uint64_t t = bench_now_ns();
        const char *p = buf, *end = buf + n;
        while (p < end) {
            const char *nl = memchr(p, '\n', (size_t)(end - p));
            const char *seg_end = nl ? nl : end;
            size_t seg = (size_t)(seg_end - p);
            if (c->line_len < LINE_KEEP) {
                size_t room = LINE_KEEP - c->line_len;
                size_t k = seg < room ? seg : room;
                memcpy(c->line + c->line_len, p, k);
                c->line_len += k;
            }
            if (!nl)
                break;
            on_line(c, t);
            c->line_len = 0;
            p = nl + 1;
        }
        if ((size_t)n < sizeof buf)
            break;
    }
    if (c->st == C_READY && load_started)
        flush_out(c);
}

static void on_connected(struct conn *c)
{
    bench_check_connected(c->fd, opt.host, opt.port);
    t_progress = bench_now_ns();
    ep_mod(c, false);
    if (opt.skip_lines > 0)
        c->st = C_GREETING;
    else
        mark_ready(c);
}

int main(int argc, char **argv)
{
    parse_args(argc, argv);
    total_target = opt.warmup + opt.requests;
    bench_raise_nofile(opt.connections + 16);
    bench_hist_init(&latency);

    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai;
    int gai = getaddrinfo(opt.host, opt.port, &hints, &ai);
    if (gai)
        bench_die("cannot resolve %s:%s: %s", opt.host, opt.port, gai_strerror(gai));

    ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0)
        bench_die("epoll_create1: %s", strerror(errno));
    t_progress = bench_now_ns();
    open_conns(ai);
    freeaddrinfo(ai);

    struct epoll_event evs[256];
    while (answered < total_target) {
        int n = epoll_wait(ep, evs, 256, 250);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            bench_die("epoll_wait: %s", strerror(errno));
        }
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            uint32_t e = evs[i].events;
            if (c->st == C_CONNECTING) {
                if (e & (EPOLLOUT | EPOLLERR | EPOLLHUP))
                    on_connected(c);
                continue;
            }
            if (e & (EPOLLIN | EPOLLERR | EPOLLHUP))
                on_readable(c);
            if ((e & EPOLLOUT) && c->st == C_READY && load_started)
                flush_out(c);
        }
        if (!load_started && n_ready == opt.connections)
            start_load();
        uint64_t t = bench_now_ns();
        if (t - t_progress > PROGRESS_TIMEOUT_NS) {
            const char *phase = !load_started
                                    ? (n_ready < opt.connections ? "connecting / reading greetings"
                                                                 : "starting")
                                    : "waiting for replies";
            fprintf(stderr,
                    "sb-bench: timeout: no progress for 10 s while %s "
                    "(%lu/%lu connections ready, %" PRIu64 "/%" PRIu64 " answered, %" PRIu64
                    " in flight)\n",
                    phase, n_ready, opt.connections, answered, total_target, issued - answered);
            return 2;
        }
    }
    uint64_t t_end = bench_now_ns();

    for (unsigned long i = 0; i < opt.connections; i++)
        close(conns[i].fd);

    double secs = (double)(t_end - t_measure) / 1e9;
    if (secs <= 0)
        secs = 1e-9;
    double rps = (double)opt.requests / secs;
    double p50 = (double)bench_hist_quantile(&latency, 0.50) / 1e3;
    double p90 = (double)bench_hist_quantile(&latency, 0.90) / 1e3;
    double p99 = (double)bench_hist_quantile(&latency, 0.99) / 1e3;
    double p999 = (double)bench_hist_quantile(&latency, 0.999) / 1e3;
    double mean = bench_hist_mean(&latency) / 1e3;

    fprintf(stderr,
            "sb-bench: %s:%s C=%lu D=%lu warmup=%llu: %llu requests in %.3f s = %.0f req/s; "
            "latency us: min %.1f mean %.1f p50 %.1f p90 %.1f p99 %.1f p99.9 %.1f max %.1f; "
            "errors %" PRIu64 " (%" PRIu64 " during warmup)\n",
            opt.host, opt.port, opt.connections, opt.pipeline, opt.warmup, opt.requests, secs,
            rps, latency.count ? (double)latency.min / 1e3 : 0.0, mean, p50, p90, p99, p999,
            (double)latency.max / 1e3, errors, warm_errors);
    printf("requests=%llu seconds=%.3f rps=%.0f p50_us=%.1f p99_us=%.1f errors=%" PRIu64 "\n",
           opt.requests, secs, rps, p50, p99, errors);
    return 0;
}
