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
 *   requests=N seconds=S rps=R p50_us=X p99_us=Y errors=E [cpu_us=U]
 * and stderr a human-readable summary (bench_run_report). Single thread, epoll, non-blocking
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

#define LINE_KEEP 120 /* bytes of each line kept for error messages */

/* ------------------------------------------------------------- options */

static bench_load_t load;
static struct {
    unsigned long skip_lines;
    char *payload;
    size_t payload_len;
} opt;

static void usage(FILE *f)
{
    fputs("usage: sb-bench --port P --requests N [options]\n"
          "\n"
          "Closed-loop load generator for line-oriented request/reply servers\n"
          "(switchboard's TCP gateway, redis-server inline commands, ...).\n"
          "Every request must be answered by exactly one '\\n'-terminated line.\n"
          "\n" BENCH_LOAD_USAGE
          "  --payload S       request bytes; escapes \\n \\r \\t \\\\ are decoded\n"
          "                    (default 'echo hi\\n')\n"
          "  --skip-lines K    greeting lines to discard per connection before\n"
          "                    sending (default 0; switchboard greets with 1)\n"
          "  -h, --help        this text\n"
          "\n"
          "Prints one line on stdout:\n"
          "  requests=N seconds=S rps=R p50_us=X p99_us=Y errors=E [cpu_us=U]\n"
          "where latency runs from writing the k-th request on a connection to\n"
          "reading its k-th reply line, seconds/rps/latency/cpu cover the N measured\n"
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
    enum { O_PAYLOAD = BENCH_OPT_OWN, O_SKIP };
    static const struct option longopts[] = {
        BENCH_LOAD_LONGOPTS,
        {"payload", required_argument, NULL, O_PAYLOAD},
        {"skip-lines", required_argument, NULL, O_SKIP},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    bench_load_init(&load);
    set_payload("echo hi\\n");
    int c;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        if (bench_load_option(&load, c, optarg))
            continue;
        switch (c) {
        case O_PAYLOAD: set_payload(optarg); break;
        case O_SKIP: opt.skip_lines = (unsigned long)bench_parse_num("skip-lines", optarg, 0, 1000000); break;
        case 'h': usage(stdout); exit(0);
        default: usage(stderr); exit(1);
        }
    }
    if (optind < argc)
        bench_die("unexpected argument '%s' (try --help)", argv[optind]);
    bench_load_check(&load);
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
static bench_run_t run;

static void ep_mod(struct conn *c, bool want_out)
{
    bench_watch(ep, c->fd, c, &c->epollout, want_out);
}

static void open_conns(int epoll, const struct addrinfo *ai)
{
    ep = epoll;
    conns = calloc(load.connections, sizeof *conns);
    if (!conns)
        bench_die("out of memory");
    for (unsigned long i = 0; i < load.connections; i++) {
        struct conn *c = &conns[i];
        c->id = (unsigned)i;
        c->ts = bench_xrealloc(NULL, load.pipeline * sizeof *c->ts);
        c->out_cap = load.pipeline * opt.payload_len;
        c->out = bench_xrealloc(NULL, c->out_cap);
        c->skip_left = opt.skip_lines;
        c->st = C_CONNECTING;
        c->epollout = true;
        c->fd = bench_connect(ep, ai, c);
    }
}

static void enqueue_request(struct conn *c)
{
    if (!bench_run_issue(&run))
        return;
    if (c->out_len + opt.payload_len > c->out_cap) {
        while (c->out_len + opt.payload_len > c->out_cap)
            c->out_cap *= 2;
        c->out = bench_xrealloc(c->out, c->out_cap);
    }
    memcpy(c->out + c->out_len, opt.payload, opt.payload_len);
    c->out_len += opt.payload_len;
    c->pending_stamp++;
}

/* Timestamp freshly enqueued requests and write as much as the socket takes. */
static void flush_out(struct conn *c)
{
    if (c->pending_stamp) {
        uint64_t t = bench_now_ns();
        for (; c->pending_stamp; c->pending_stamp--) {
            if (c->ts_count >= load.pipeline)
                bench_die("internal error: more than %lu requests in flight", load.pipeline);
            c->ts[(c->ts_head + c->ts_count) % load.pipeline] = t;
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
    bench_run_start(&run);
    for (unsigned long i = 0; i < load.connections; i++) {
        struct conn *c = &conns[i];
        for (unsigned long k = 0; k < load.pipeline; k++)
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
    if (c->st == C_GREETING) {
        bench_run_progress(&run, t);
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
    c->ts_head = (c->ts_head + 1) % load.pipeline;
    c->ts_count--;
    c->replies++;

    bool error = line_is_error(c);
    if (error && run.errors == 0)
        fprintf(stderr, "sb-bench: first error reply: %s\n", line_text(c));
    bench_run_reply(&run, sent, t, error);
    enqueue_request(c);
}

static void on_readable(void *conn)
{
    struct conn *c = conn;
    static char buf[1 << 16];
    for (;;) {
        long n = bench_recv(c->fd, buf, sizeof buf, c->id);
        if (n < 0)
            break;
        if (n == 0)
            bench_die("connection %u: closed by server (after %" PRIu64 " replies, %" PRIu64
                " answered in total)",
                c->id, c->replies, run.answered);
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
    if (c->st == C_READY && run.started)
        flush_out(c);
}

static void on_connected(void *conn)
{
    struct conn *c = conn;
    bench_check_connected(c->fd, load.host, load.port);
    bench_run_progress(&run, bench_now_ns());
    ep_mod(c, false);
    if (opt.skip_lines > 0)
        c->st = C_GREETING;
    else
        mark_ready(c);
}

static bool is_connecting(const void *conn)
{
    return ((const struct conn *)conn)->st == C_CONNECTING;
}

static void on_writable(void *conn)
{
    struct conn *c = conn;
    if (c->st == C_READY && run.started)
        flush_out(c);
}

static bool all_ready(void)
{
    return n_ready == load.connections;
}

static void on_stalled(void)
{
    const char *phase = !run.started ? (n_ready < load.connections
                                            ? "connecting / reading greetings" : "starting")
                                     : "waiting for replies";
    fprintf(stderr,
            "sb-bench: timeout: no progress for 10 s while %s "
            "(%lu/%lu connections ready, %" PRIu64 "/%" PRIu64 " answered, %" PRIu64
            " in flight)\n",
            phase, n_ready, load.connections, run.answered, run.total,
            run.issued - run.answered);
}

int main(int argc, char **argv)
{
    parse_args(argc, argv);
    bench_run_init(&run, &load);
    static const bench_conn_events_t events = {
        .open = open_conns, .is_connecting = is_connecting,
        .connected = on_connected, .readable = on_readable,
        .writable = on_writable, .all_ready = all_ready, .start = start_load,
        .stalled = on_stalled,
    };
    return bench_run_main(&run, &events);
}
