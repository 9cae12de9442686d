/*
 * sb-nats-responder — one echo responder for nats-server, the NATS side of
 * bench/run.sh: what a hub worker running `echo` is to the hub. It connects,
 * subscribes to a subject in a queue group (so N of them share the requests,
 * as the hub's N workers do) and answers every request with its own payload
 * on the request's reply subject. One process, one connection, blocking I/O:
 * each read is parsed whole and everything it asks for goes out in one write,
 * as any decent client batches.
 *
 * Prints "ready" on stdout once the server has confirmed the subscription (a
 * PONG to the PING sent after SUB), then runs until the server closes the
 * connection or a signal ends it.
 */
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench_support.h"
#include "nats_proto.h"

static struct {
    const char *host;
    const char *port;
    const char *subject;
    const char *queue;
} opt = {.host = "127.0.0.1", .subject = "sb.echo", .queue = "sb-echo"};

/* Output gathered while one read is parsed. */
static char *out;
static size_t out_len, out_cap;

static void usage(FILE *f)
{
    fputs("usage: sb-nats-responder --port P [options]\n"
          "\n"
          "Echo responder for nats-server: answers each message on SUBJECT with its\n"
          "payload, on the message's reply subject. Prints \"ready\" once subscribed.\n"
          "\n"
          "  --host H          server address (default 127.0.0.1)\n"
          "  --port P          server port (required)\n"
          "  --subject S       subject to serve (default sb.echo)\n"
          "  --queue Q         queue group (default sb-echo)\n"
          "  -h, --help        this text\n",
          f);
}

static void parse_args(int argc, char **argv)
{
    enum { O_HOST = 256, O_PORT, O_SUBJECT, O_QUEUE };
    static const struct option longopts[] = {
        {"host", required_argument, NULL, O_HOST},
        {"port", required_argument, NULL, O_PORT},
        {"subject", required_argument, NULL, O_SUBJECT},
        {"queue", required_argument, NULL, O_QUEUE},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case O_HOST: opt.host = optarg; break;
        case O_PORT:
            bench_parse_num("port", optarg, 1, 65535);
            opt.port = optarg;
            break;
        case O_SUBJECT: opt.subject = optarg; break;
        case O_QUEUE: opt.queue = optarg; break;
        case 'h': usage(stdout); exit(0);
        default: usage(stderr); exit(1);
        }
    }
    if (optind < argc)
        bench_die("unexpected argument '%s' (try --help)", argv[optind]);
    if (!opt.port)
        bench_die("--port is required (try --help)");
    if (!*opt.subject || strpbrk(opt.subject, " \t\r\n") || !*opt.queue ||
        strpbrk(opt.queue, " \t\r\n"))
        bench_die("--subject and --queue must be single non-empty words");
}

static void append(const void *data, size_t length)
{
    if (out_len + length > out_cap) {
        while (out_len + length > out_cap)
            out_cap = out_cap ? out_cap * 2 : 1 << 16;
        out = bench_xrealloc(out, out_cap);
    }
    memcpy(out + out_len, data, length);
    out_len += length;
}

/* "PUB REPLY SIZE\r\n", the head of an answer. */
static void append_pub(const nats_text_t *reply, size_t size)
{
    char head[NATS_MAX_LINE];
    int n = snprintf(head, sizeof head, "PUB %.*s %zu\r\n", (int)reply->length, reply->data, size);
    if (n < 0 || (size_t)n >= sizeof head)
        bench_die("reply subject too long");
    append(head, (size_t)n);
}

static void flush_all(int fd)
{
    size_t off = 0;
    while (off < out_len) {
        ssize_t n = send(fd, out + off, out_len - off, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            bench_die("send: %s", strerror(errno));
        }
        off += (size_t)n;
    }
    out_len = 0;
}

static int dial(void)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai;
    int gai = getaddrinfo(opt.host, opt.port, &hints, &ai);
    if (gai)
        bench_die("cannot resolve %s:%s: %s", opt.host, opt.port, gai_strerror(gai));
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        bench_die("socket: %s", strerror(errno));
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0)
        bench_die("connect to %s:%s: %s", opt.host, opt.port, strerror(errno));
    freeaddrinfo(ai);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

/* Answers one operation; true when it is the PONG that confirms the SUB. */
static bool handle(const nats_op_t *op)
{
    switch (op->kind) {
    case NATS_MSG:
        if (op->reply.length) {
            append_pub(&op->reply, op->payload.length);
            append(op->payload.data, op->payload.length);
            append("\r\n", 2);
        }
        return false;
    case NATS_PING: append("PONG\r\n", 6); return false;
    case NATS_PONG: return true;
    case NATS_ERR:
        bench_die("server error: %.*s", (int)op->payload.length, op->payload.data);
    case NATS_INFO:
    case NATS_OK: return false;
    }
    return false;
}

int main(int argc, char **argv)
{
    parse_args(argc, argv);
    int fd = dial();
    char sub[NATS_MAX_LINE];
    int n = snprintf(sub, sizeof sub, "%sSUB %s %s 1\r\nPING\r\n", NATS_CONNECT, opt.subject, opt.queue);
    if (n < 0 || (size_t)n >= sizeof sub)
        bench_die("--subject or --queue too long");
    append(sub, (size_t)n);
    flush_all(fd);

    size_t cap = 1 << 16, len = 0;
    char *in = bench_xrealloc(NULL, cap);
    bool ready = false;
    for (;;) {
        if (len == cap) {
            if (cap >= 2 * (NATS_MAX_LINE + NATS_MAX_PAYLOAD))
                bench_die("internal error: input buffer full");
            cap *= 2;
            in = bench_xrealloc(in, cap);
        }
        ssize_t got = recv(fd, in + len, cap - len, 0);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            bench_die("recv: %s", strerror(errno));
        }
        if (got == 0)
            break; /* the server closed: the bench is over */
        len += (size_t)got;
        size_t off = 0;
        for (;;) {
            nats_op_t op;
            const char *error;
            long used = nats_parse(in + off, len - off, &op, &error);
            if (used < 0)
                bench_die("bad input from the server: %s", error);
            if (used == 0)
                break;
            off += (size_t)used;
            if (handle(&op) && !ready) {
                ready = true;
                printf("ready\n");
                fflush(stdout);
            }
        }
        memmove(in, in + off, len - off);
        len -= off;
        flush_all(fd);
    }
    close(fd);
    free(in);
    free(out);
    return 0;
}
