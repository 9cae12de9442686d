/*
 * sb-nats-bench — closed-loop request/reply load generator for nats-server,
 * the NATS peer of sb-bench in bench/run.sh: the same load shape (C
 * connections x D requests in flight), the same counting, latency and report
 * (bench_support's bench_run_t), over the NATS text protocol.
 *
 * Each connection subscribes once to its own inbox, _INBOX.<conn>.*, then
 * keeps D requests in flight: request k is "PUB SUBJECT _INBOX.<conn>.<k>"
 * with the payload, and its reply (the responder publishes to the reply
 * subject) is matched by k, so replies may come back in any order (the
 * responders of a queue group answer independently). Latency of a request =
 * time it was written to the socket -> arrival of the read holding its reply.
 *
 * stdout gets exactly one machine-readable line (bench_run_report):
 *   requests=N seconds=S rps=R p50_us=X p99_us=Y errors=E [cpu_us=U]
 * where errors counts replies whose payload is not the request's. Single
 * thread, epoll, non-blocking sockets. Exit status: 0 done, 1 error, 2 no
 * progress for 10 s (no responder, for one).
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
#include "nats_proto.h"

#define INBOX_MAX 48 /* "_INBOX.<conn>." */

static bench_load_t load;
static struct {
    const char *subject;
    const char *payload;
    size_t payload_len;
} opt = {.subject = "sb.echo", .payload = "hi"};

static void usage(FILE *f)
{
    fputs("usage: sb-nats-bench --port P --requests N [options]\n"
          "\n"
          "Closed-loop request/reply load generator for nats-server: each request\n"
          "is a PUB to SUBJECT with a reply subject in the connection's inbox, and\n"
          "must be answered by one message there (sb-nats-responder echoes).\n"
          "\n" BENCH_LOAD_USAGE
          "  --subject S       subject the responders serve (default sb.echo)\n"
          "  --payload S       request payload (default 'hi')\n"
          "  -h, --help        this text\n"
          "\n"
          "Prints one line on stdout:\n"
          "  requests=N seconds=S rps=R p50_us=X p99_us=Y errors=E [cpu_us=U]\n"
          "where seconds/rps/latency/cpu cover the N measured requests only and\n"
          "errors counts replies (warmup included) whose payload differs from the\n"
          "request's. A human summary goes to stderr.\n"
          "Exit status: 0 done, 1 error, 2 no progress for 10 s.\n",
          f);
}

static void parse_args(int argc, char **argv)
{
    enum { O_SUBJECT = BENCH_OPT_OWN, O_PAYLOAD };
    static const struct option longopts[] = {
        BENCH_LOAD_LONGOPTS,
        {"subject", required_argument, NULL, O_SUBJECT},
        {"payload", required_argument, NULL, O_PAYLOAD},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    bench_load_init(&load);
    int c;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        if (bench_load_option(&load, c, optarg))
            continue;
        switch (c) {
        case O_SUBJECT: opt.subject = optarg; break;
        case O_PAYLOAD: opt.payload = optarg; break;
        case 'h': usage(stdout); exit(0);
        default: usage(stderr); exit(1);
        }
    }
    if (optind < argc)
        bench_die("unexpected argument '%s' (try --help)", argv[optind]);
    bench_load_check(&load);
    if (!*opt.subject || strpbrk(opt.subject, " \t\r\n") || strlen(opt.subject) > 256)
        bench_die("--subject must be one word of at most 256 bytes");
    opt.payload_len = strlen(opt.payload);
    if (opt.payload_len > 65536)
        bench_die("--payload: at most 65536 bytes");
}

/* --------------------------------------------------------- connections */

enum cstate { C_CONNECTING, C_HANDSHAKE, C_READY };

struct conn {
    int fd;
    unsigned id;
    enum cstate st;
    bool epollout;
    char inbox[INBOX_MAX];
    size_t inbox_len;
    /* request k (slot) in flight: busy[k], sent at ts[k] */
    bool *busy;
    uint64_t *ts;
    unsigned long *unstamped; /* slots written to `out`, not yet timestamped */
    unsigned long unstamped_count;
    char *out;
    size_t out_off, out_len, out_cap;
    char *in;
    size_t in_len, in_cap;
    uint64_t replies;
};

static int ep = -1;
static struct conn *conns;
static unsigned long n_ready;
static bench_run_t run;

static void append(struct conn *c, const void *data, size_t length)
{
    if (c->out_len + length > c->out_cap) {
        while (c->out_len + length > c->out_cap)
            c->out_cap *= 2;
        c->out = bench_xrealloc(c->out, c->out_cap);
    }
    memcpy(c->out + c->out_len, data, length);
    c->out_len += length;
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
        c->inbox_len = (size_t)snprintf(c->inbox, sizeof c->inbox, "_INBOX.%lu.", i);
        c->busy = calloc(load.pipeline, sizeof *c->busy);
        if (!c->busy)
            bench_die("out of memory");
        c->ts = bench_xrealloc(NULL, load.pipeline * sizeof *c->ts);
        c->unstamped = bench_xrealloc(NULL, load.pipeline * sizeof *c->unstamped);
        c->out_cap = 1 << 12;
        c->out = bench_xrealloc(NULL, c->out_cap);
        c->in_cap = 1 << 16;
        c->in = bench_xrealloc(NULL, c->in_cap);
        c->st = C_CONNECTING;
        c->epollout = true;
        c->fd = bench_connect(ep, ai, c);
    }
}

/* Sends request `slot` again, if the run wants more. */
static void enqueue_request(struct conn *c, unsigned long slot)
{
    if (!bench_run_issue(&run))
        return;
    char head[NATS_MAX_LINE];
    int n = snprintf(head, sizeof head, "PUB %s %s%lu %zu\r\n", opt.subject, c->inbox, slot,
                     opt.payload_len);
    append(c, head, (size_t)n);
    append(c, opt.payload, opt.payload_len);
    append(c, "\r\n", 2);
    c->busy[slot] = true;
    c->unstamped[c->unstamped_count++] = slot;
}

/* Timestamp freshly enqueued requests and write as much as the socket takes. */
static void flush_out(struct conn *c)
{
    if (c->unstamped_count) {
        uint64_t t = bench_now_ns();
        for (unsigned long i = 0; i < c->unstamped_count; i++)
            c->ts[c->unstamped[i]] = t;
        c->unstamped_count = 0;
    }
    if (!bench_send(c->fd, c->out, c->out_len, &c->out_off, c->id)) {
        bench_watch(ep, c->fd, c, &c->epollout, true);
        return;
    }
    c->out_off = c->out_len = 0;
    bench_watch(ep, c->fd, c, &c->epollout, false);
}

static void start_load(void)
{
    bench_run_start(&run);
    for (unsigned long i = 0; i < load.connections; i++) {
        for (unsigned long k = 0; k < load.pipeline; k++)
            enqueue_request(&conns[i], k);
        flush_out(&conns[i]);
    }
}

/* The slot a reply subject names, or -1 when it is not one of c's requests in flight. */
static long reply_slot(const struct conn *c, nats_text_t subject)
{
    if (subject.length <= c->inbox_len || memcmp(subject.data, c->inbox, c->inbox_len) != 0)
        return -1;
    unsigned long k = 0;
    for (size_t i = c->inbox_len; i < subject.length; i++) {
        char d = subject.data[i];
        if (d < '0' || d > '9' || k >= load.pipeline)
            return -1;
        k = k * 10 + (unsigned long)(d - '0');
    }
    return k < load.pipeline && c->busy[k] ? (long)k : -1;
}

static void on_msg(struct conn *c, const nats_op_t *op, uint64_t t)
{
    long slot = reply_slot(c, op->subject);
    if (slot < 0)
        bench_die("connection %u: message on %.*s, not a request in flight", c->id,
                  (int)op->subject.length, op->subject.data);
    c->busy[slot] = false;
    c->replies++;
    bool error = op->payload.length != opt.payload_len ||
                 memcmp(op->payload.data, opt.payload, opt.payload_len) != 0;
    if (error && run.errors == 0)
        fprintf(stderr, "sb-nats-bench: first wrong reply: %.*s\n",
                (int)(op->payload.length < 120 ? op->payload.length : 120), op->payload.data);
    bench_run_reply(&run, c->ts[slot], t, error);
    enqueue_request(c, (unsigned long)slot);
}

static void on_op(struct conn *c, const nats_op_t *op, uint64_t t)
{
    switch (op->kind) {
    case NATS_MSG:
        if (c->st != C_READY || !run.started)
            bench_die("connection %u: message before any request", c->id);
        on_msg(c, op, t);
        break;
    case NATS_PING: append(c, "PONG\r\n", 6); break;
    case NATS_PONG:
        if (c->st == C_HANDSHAKE) { /* the server has taken CONNECT and SUB */
            c->st = C_READY;
            n_ready++;
            bench_run_progress(&run, t);
        }
        break;
    case NATS_ERR:
        bench_die("connection %u: server error: %.*s", c->id, (int)op->payload.length,
                  op->payload.data);
    case NATS_INFO:
    case NATS_OK: break;
    }
}

/* Parses every complete operation in c->in and keeps the rest. */
static void parse_input(struct conn *c, uint64_t t)
{
    size_t off = 0;
    for (;;) {
        nats_op_t op;
        const char *error;
        long used = nats_parse(c->in + off, c->in_len - off, &op, &error);
        if (used < 0)
            bench_die("connection %u: bad input from the server: %s", c->id, error);
        if (used == 0)
            break;
        off += (size_t)used;
        on_op(c, &op, t);
    }
    memmove(c->in, c->in + off, c->in_len - off);
    c->in_len -= off;
}

static void on_readable(void *conn)
{
    struct conn *c = conn;
    for (;;) {
        if (c->in_len == c->in_cap) {
            if (c->in_cap >= 2 * (NATS_MAX_LINE + NATS_MAX_PAYLOAD))
                bench_die("internal error: connection %u: input buffer full", c->id);
            c->in_cap *= 2;
            c->in = bench_xrealloc(c->in, c->in_cap);
        }
        long n = bench_recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, c->id);
        if (n < 0)
            break;
        if (n == 0)
            bench_die("connection %u: closed by server (after %" PRIu64 " replies, %" PRIu64
                      " answered in total)",
                      c->id, c->replies, run.answered);
        c->in_len += (size_t)n;
        parse_input(c, bench_now_ns());
    }
    if (c->out_len)
        flush_out(c);
}

static void on_connected(void *conn)
{
    struct conn *c = conn;
    bench_check_connected(c->fd, load.host, load.port);
    bench_run_progress(&run, bench_now_ns());
    char hello[NATS_MAX_LINE];
    int n = snprintf(hello, sizeof hello, "%sSUB %s* 1\r\nPING\r\n", NATS_CONNECT, c->inbox);
    append(c, hello, (size_t)n);
    c->st = C_HANDSHAKE;
    flush_out(c);
}

static bool is_connecting(const void *conn)
{
    return ((const struct conn *)conn)->st == C_CONNECTING;
}

static void on_writable(void *conn)
{
    struct conn *c = conn;
    if (c->out_len)
        flush_out(c);
}

static bool all_ready(void)
{
    return n_ready == load.connections;
}

static void on_stalled(void)
{
    fprintf(stderr,
            "sb-nats-bench: timeout: no progress for 10 s while %s "
            "(%lu/%lu connections subscribed, %" PRIu64 "/%" PRIu64 " answered, %" PRIu64
            " in flight; is a responder serving '%s'?)\n",
            run.started ? "waiting for replies" : "connecting / subscribing", n_ready,
            load.connections, run.answered, run.total, run.issued - run.answered, opt.subject);
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
