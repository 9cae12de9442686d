/*
 * sb-mqtt-bench — MQTT load generator for bench/mqtt_vs_mosquitto.py. One
 * client, written on the hub's own packet codec (sb-mqtt-protocol), drives
 * both switchboard's MQTT gateway and mosquitto, so the two are compared on
 * equal terms.
 *
 * Flow mode (default): one publisher and S subscribers of one topic, QoS 0
 * or 1 both ways. The publisher keeps at most W messages in flight: sent but
 * not yet delivered to the slowest subscriber and, at QoS 1, not yet
 * acknowledged with a PUBACK. Each payload carries a sequence number and the
 * time it was sent, so a subscriber measures publish → delivery latency (one
 * process, one clock) and counts the sequence numbers that never came
 * (lost). When deliveries stall for STALL_NS with the window full (lost QoS 0
 * messages), the window is reopened. After --warmup seconds, and once every
 * subscriber has had a message, deliveries are counted for --seconds.
 *   stdout: subscribers=S qos=Q seconds=T published=P delivered=D rate=R
 *           p50_us=X p99_us=Y lost=L
 * where rate is deliveries per second over all subscribers.
 *
 * Idle mode (--idle N): N clients connect (CONNECT, CONNACK) and then send
 * nothing; it prints "connected=N" on stdout and waits until stdin is closed,
 * so that the caller can read the server's memory meanwhile.
 *
 * Single thread, epoll, non-blocking sockets, MQTT 3.1.1 (or 5 with
 * --mqtt-version 5). Exit status: 0 done, 1 error, 2 no progress for 10 s.
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
#include "mqtt_packet.h"

#define PROGRESS_TIMEOUT_NS (10ull * 1000000000ull)
#define STALL_NS (200ull * 1000000ull)     /* no delivery with a full window: count the rest lost */
#define MAX_CONNECTING 64                   /* handshakes at once (listen backlogs are short) */
#define KEEP_ALIVE 300                      /* seconds; longer than any run */
#define STAMP_LENGTH 32                     /* payload head: 16 hex digits of sequence, 16 of time */
#define IDLE_HOLD_NS (600ull * 1000000000ull)

typedef enum { C_CONNECTING, C_CONNACK, C_SUBACK, C_READY } conn_state_t;

typedef struct {
    int fd;
    unsigned id;
    bool publisher;
    conn_state_t state;
    bool want_out;
    sb_mqtt_framer_t *framer;
    sb_mqtt_buffer_t out;
    size_t out_off;
    uint64_t last_seq;      /* subscriber: highest sequence number delivered */
    bool delivered_any;
} conn_t;

static struct {
    const char *host;
    const char *port;
    const char *topic;
    unsigned qos;
    unsigned long subscribers;
    unsigned long window;
    unsigned long long seconds;
    unsigned long long warmup;
    size_t payload;
    sb_mqtt_version_t version;
    unsigned long idle;     /* 0: flow mode */
} opt = {
    .host = "127.0.0.1",
    .topic = "bench/flow",
    .subscribers = 1,
    .window = 32,
    .seconds = 5,
    .warmup = 1,
    .payload = 64,
    .version = SB_MQTT_V311,
};

static int ep = -1;
static struct addrinfo *server;
static conn_t *conns;
static unsigned long n_conns, n_opened, n_pending, n_ready;
static uint64_t t_progress;
static bench_hist_t latency;

/* The flow: publisher's counters and the measurement window. */
static uint64_t published, unacked, floor_seq, stalls;
static uint64_t t_last_delivery;
static unsigned long subscribers_served;  /* subscribers that have had a message */
static bool measuring;
static uint64_t measured_published, delivered, lost, foreign;

/* ------------------------------------------------------------- options */

static void usage(FILE *f)
{
    fputs("usage: sb-mqtt-bench --port P [options]\n"
          "\n"
          "MQTT publish/subscribe load generator (one publisher, S subscribers of one\n"
          "topic), or N idle connections for memory measurements.\n"
          "\n"
          "  --host H            server address (default 127.0.0.1)\n"
          "  --port P            server port (required)\n"
          "  --qos Q             0 or 1, for the publishes and the subscriptions (default 0)\n"
          "  --subscribers S     subscribers of the topic (default 1)\n"
          "  --window W          messages in flight: published, not yet delivered to\n"
          "                      every subscriber (and at QoS 1 not yet PUBACKed) (default 32)\n"
          "  --seconds T         measured seconds (default 5)\n"
          "  --warmup T          seconds of load before measuring (default 1)\n"
          "  --payload BYTES     payload size, 32..65000 (default 64)\n"
          "  --topic T           the topic (default bench/flow)\n"
          "  --mqtt-version V    4 (3.1.1, default) or 5\n"
          "  --idle N            instead: connect N clients, print connected=N, and\n"
          "                      stay idle until stdin is closed\n"
          "  -h, --help          this text\n"
          "\n"
          "Prints one line on stdout:\n"
          "  subscribers=S qos=Q seconds=T published=P delivered=D rate=R p50_us=X p99_us=Y lost=L\n"
          "where rate is deliveries per second (all subscribers), latency runs from\n"
          "the publisher's write to the subscriber's read, and lost counts sequence\n"
          "numbers a subscriber never got. Exit status: 0 done, 1 error, 2 no progress\n"
          "for 10 s.\n",
          f);
}

static void parse_args(int argc, char **argv)
{
    enum { O_HOST = 256, O_PORT, O_QOS, O_SUBS, O_WINDOW, O_SECONDS, O_WARMUP, O_PAYLOAD, O_TOPIC,
           O_VERSION, O_IDLE };
    static const struct option longopts[] = {
        {"host", required_argument, NULL, O_HOST},
        {"port", required_argument, NULL, O_PORT},
        {"qos", required_argument, NULL, O_QOS},
        {"subscribers", required_argument, NULL, O_SUBS},
        {"window", required_argument, NULL, O_WINDOW},
        {"seconds", required_argument, NULL, O_SECONDS},
        {"warmup", required_argument, NULL, O_WARMUP},
        {"payload", required_argument, NULL, O_PAYLOAD},
        {"topic", required_argument, NULL, O_TOPIC},
        {"mqtt-version", required_argument, NULL, O_VERSION},
        {"idle", required_argument, NULL, O_IDLE},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int ch;
    while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (ch) {
        case O_HOST: opt.host = optarg; break;
        case O_PORT: opt.port = optarg; break;
        case O_QOS: opt.qos = (unsigned)bench_parse_num("qos", optarg, 0, 1); break;
        case O_SUBS: opt.subscribers = bench_parse_num("subscribers", optarg, 1, 100000); break;
        case O_WINDOW: opt.window = bench_parse_num("window", optarg, 1, 65535); break;
        case O_SECONDS: opt.seconds = bench_parse_num("seconds", optarg, 1, 3600); break;
        case O_WARMUP: opt.warmup = bench_parse_num("warmup", optarg, 0, 3600); break;
        case O_PAYLOAD: opt.payload = bench_parse_num("payload", optarg, STAMP_LENGTH, 65000); break;
        case O_TOPIC: opt.topic = optarg; break;
        case O_VERSION:
            opt.version = bench_parse_num("mqtt-version", optarg, 4, 5) == 5 ? SB_MQTT_V5 : SB_MQTT_V311;
            break;
        case O_IDLE: opt.idle = bench_parse_num("idle", optarg, 1, 100000); break;
        case 'h': usage(stdout); exit(0);
        default: usage(stderr); exit(1);
        }
    }
    if (optind < argc)
        bench_die("unexpected argument '%s'", argv[optind]);
    if (!opt.port)
        bench_die("--port is required (see --help)");
    if (!sb_mqtt_topic_name_is_valid(opt.topic, strlen(opt.topic)))
        bench_die("--topic: not a valid MQTT topic name: '%s'", opt.topic);
}

/* --------------------------------------------------------- connections */

static void watch(conn_t *c, bool want_out)
{
    bench_watch(ep, c->fd, c, &c->want_out, want_out);
}

static void queue_packet(conn_t *c, const sb_mqtt_packet_t *packet)
{
    int n = sb_mqtt_encode(packet, opt.version, 0, &c->out);
    if (n < 0)
        bench_die("cannot encode a %s (%d)", sb_mqtt_type_name(packet->type), n);
}

/* Writes what the socket takes; the rest waits for EPOLLOUT. */
static void flush_out(conn_t *c)
{
    if (!bench_send(c->fd, c->out.data, c->out.length, &c->out_off, c->id)) {
        watch(c, true);
        return;
    }
    c->out_off = 0;
    sb_mqtt_buffer_clear(&c->out);
    watch(c, false);
}

static void open_conn(conn_t *c)
{
    c->framer = sb_mqtt_framer_new(0);
    if (!c->framer)
        bench_die("out of memory");
    sb_mqtt_buffer_init(&c->out);
    c->state = C_CONNECTING;
    c->want_out = true;
    c->fd = bench_connect(ep, server, c);
}

/* Starts handshakes until MAX_CONNECTING are under way or all are open. */
static void open_more(void)
{
    for (; n_opened < n_conns && n_pending < MAX_CONNECTING; n_opened++, n_pending++)
        open_conn(&conns[n_opened]);
}

static void on_connected(conn_t *c)
{
    bench_check_connected(c->fd, opt.host, opt.port);
    char client_id[48];
    snprintf(client_id, sizeof client_id, "sb-mqtt-bench-%ld-%u", (long)getpid(), c->id);
    sb_mqtt_packet_t p = {.type = SB_MQTT_CONNECT};
    p.u.connect.version = opt.version;
    p.u.connect.clean_start = true;
    p.u.connect.keep_alive = KEEP_ALIVE;
    p.u.connect.client_id = sb_mqtt_str(client_id);
    queue_packet(c, &p);
    c->state = C_CONNACK;
    flush_out(c);
}

static void mark_ready(conn_t *c)
{
    c->state = C_READY;
    n_ready++;
    n_pending--;
    open_more();
}

static void subscribe(conn_t *c)
{
    sb_mqtt_subscription_t item = {.filter = sb_mqtt_str(opt.topic), .qos = (uint8_t)opt.qos};
    item.topic_filter = item.filter;
    sb_mqtt_packet_t p = {.type = SB_MQTT_SUBSCRIBE};
    p.u.subscribe.packet_id = 1;
    p.u.subscribe.items = &item;
    p.u.subscribe.count = 1;
    queue_packet(c, &p);
    c->state = C_SUBACK;
}

/* --------------------------------------------------------------- flow */

static void stamp(char *payload, uint64_t seq, uint64_t t)
{
    static const char hex[] = "0123456789abcdef";
    for (int i = 15; i >= 0; i--, seq >>= 4, t >>= 4) {
        payload[i] = hex[seq & 15];
        payload[16 + i] = hex[t & 15];
    }
}

static bool read_hex(const char *s, uint64_t *value)
{
    uint64_t v = 0;
    for (int i = 0; i < 16; i++) {
        char ch = s[i];
        unsigned d;
        if (ch >= '0' && ch <= '9')
            d = (unsigned)(ch - '0');
        else if (ch >= 'a' && ch <= 'f')
            d = (unsigned)(ch - 'a' + 10);
        else
            return false;
        v = v << 4 | d;
    }
    *value = v;
    return true;
}

static uint64_t slowest_subscriber(void)
{
    uint64_t least = UINT64_MAX;
    for (unsigned long i = 1; i < n_conns; i++)
        if (conns[i].last_seq < least)
            least = conns[i].last_seq;
    return least;
}

static bool window_open(void)
{
    if (opt.qos > 0 && unacked >= opt.window)
        return false;
    uint64_t slowest = slowest_subscriber();
    if (slowest > floor_seq)
        floor_seq = slowest;
    return published - floor_seq < opt.window;
}

/* The publisher fills its window; one write for the burst. */
static void pump(conn_t *pub)
{
    static char *payload;
    if (!payload) {
        payload = bench_xrealloc(NULL, opt.payload);
        memset(payload, 'x', opt.payload);
    }
    bool sent = false;
    while (window_open()) {
        published++;
        if (measuring)
            measured_published++;
        stamp(payload, published, bench_now_ns());
        sb_mqtt_packet_t p = {.type = SB_MQTT_PUBLISH};
        p.u.publish.qos = (uint8_t)opt.qos;
        p.u.publish.topic = sb_mqtt_str(opt.topic);
        p.u.publish.packet_id = opt.qos ? (uint16_t)(published % 65535 + 1) : 0;
        p.u.publish.payload.data = payload;
        p.u.publish.payload.length = opt.payload;
        queue_packet(pub, &p);
        if (opt.qos)
            unacked++;
        sent = true;
    }
    if (sent)
        flush_out(pub);
}

/* Lost QoS 0 messages would close the window for good: after a stall, the
 * messages still out count as gone. */
static void break_stall(uint64_t now)
{
    if (published - floor_seq >= opt.window && now - t_last_delivery > STALL_NS &&
        (opt.qos == 0 || unacked < opt.window)) {
        floor_seq = published;
        stalls++;
        t_last_delivery = now;
    }
}

static void on_delivery(conn_t *c, const sb_mqtt_publish_t *m, uint64_t now)
{
    uint64_t seq, sent;
    if (m->payload.length < STAMP_LENGTH || !read_hex(m->payload.data, &seq) ||
        !read_hex(m->payload.data + 16, &sent) || seq > published || sent > now) {
        foreign++;
        return;
    }
    t_last_delivery = now;
    if (!c->delivered_any) {
        c->delivered_any = true;
        subscribers_served++;
    }
    if (measuring) {
        delivered++;
        bench_hist_add(&latency, now - sent);
        if (seq > c->last_seq + 1)
            lost += seq - c->last_seq - 1;
    }
    if (seq > c->last_seq)
        c->last_seq = seq;
    if (m->qos > 0) {
        sb_mqtt_packet_t ack = {.type = SB_MQTT_PUBACK};
        ack.u.ack.packet_id = m->packet_id;
        queue_packet(c, &ack);
    }
}

/* ------------------------------------------------------------ packets */

static void on_packet(conn_t *c, const sb_mqtt_packet_t *p, uint64_t now)
{
    switch (p->type) {
    case SB_MQTT_CONNACK:
        if (c->state != C_CONNACK)
            bench_die("connection %u: unexpected CONNACK", c->id);
        if (p->u.connack.reason != 0)
            bench_die("connection %u: CONNACK refused: %s", c->id,
                      sb_mqtt_reason_name(p->u.connack.reason));
        if (opt.idle || c->publisher)
            mark_ready(c);
        else
            subscribe(c);
        break;
    case SB_MQTT_SUBACK:
        if (c->state != C_SUBACK || p->u.suback.count != 1)
            bench_die("connection %u: unexpected SUBACK", c->id);
        if (p->u.suback.reasons[0] >= 0x80)
            bench_die("connection %u: SUBSCRIBE refused: %s", c->id,
                      sb_mqtt_reason_name(p->u.suback.reasons[0]));
        if (p->u.suback.reasons[0] < opt.qos)
            bench_die("connection %u: granted QoS %u, asked %u", c->id, p->u.suback.reasons[0], opt.qos);
        mark_ready(c);
        break;
    case SB_MQTT_PUBLISH:
        if (c->publisher || c->state != C_READY)
            bench_die("connection %u: unexpected PUBLISH", c->id);
        on_delivery(c, &p->u.publish, now);
        break;
    case SB_MQTT_PUBACK:
        if (!c->publisher || unacked == 0)
            bench_die("connection %u: unexpected PUBACK", c->id);
        if (p->u.ack.reason >= 0x80)
            bench_die("connection %u: PUBLISH refused: %s", c->id, sb_mqtt_reason_name(p->u.ack.reason));
        unacked--;
        break;
    case SB_MQTT_PINGRESP:
        break;
    case SB_MQTT_DISCONNECT:
        bench_die("connection %u: DISCONNECT from the server: %s", c->id,
                  sb_mqtt_reason_name(p->u.disconnect.reason));
    default:
        bench_die("connection %u: unexpected %s", c->id, sb_mqtt_type_name(p->type));
    }
}

static void on_readable(conn_t *c)
{
    static uint8_t buf[1 << 16];
    for (;;) {
        long n = bench_recv(c->fd, buf, sizeof buf, c->id);
        if (n < 0)
            break;
        if (n == 0)
            bench_die("connection %u: closed by the server (%" PRIu64 " published, %" PRIu64
                      " delivered while measuring)", c->id, published, delivered);
        uint64_t now = bench_now_ns();
        t_progress = now;
        const uint8_t *in = buf;
        size_t left = (size_t)n;
        sb_mqtt_frame_t frame;
        sb_mqtt_frame_status_t status;
        while ((status = sb_mqtt_framer_next(c->framer, &in, &left, &frame)) == SB_MQTT_FRAME_READY) {
            sb_mqtt_error_t error;
            sb_mqtt_packet_t *p = sb_mqtt_decode_from_server(frame.data, frame.length, opt.version, &error);
            if (!p)
                bench_die("connection %u: bad packet from the server: %s", c->id, error.detail);
            on_packet(c, p, now);
            sb_mqtt_packet_destroy(&p);
        }
        if (status != SB_MQTT_FRAME_NEED_MORE)
            bench_die("connection %u: malformed framing from the server", c->id);
        if ((size_t)n < sizeof buf)
            break;
    }
    if (c->out.length > c->out_off)
        flush_out(c);
}

static void on_event(conn_t *c, uint32_t events)
{
    if (c->state == C_CONNECTING) {
        if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
            on_connected(c);
        return;
    }
    if (events & (EPOLLIN | EPOLLERR | EPOLLHUP))
        on_readable(c);
    if (events & EPOLLOUT)
        flush_out(c);
}

/* --------------------------------------------------------------- main */

/* One round of epoll; false when it timed out without events. */
static bool poll_once(int timeout_ms, bool *stdin_closed)
{
    struct epoll_event evs[256];
    int n = epoll_wait(ep, evs, 256, timeout_ms);
    if (n < 0) {
        if (errno == EINTR)
            return false;
        bench_die("epoll_wait: %s", strerror(errno));
    }
    for (int i = 0; i < n; i++) {
        if (evs[i].data.ptr == NULL) {
            char b[256];
            ssize_t r = read(STDIN_FILENO, b, sizeof b);
            if (r <= 0 && stdin_closed)
                *stdin_closed = true;
            continue;
        }
        on_event(evs[i].data.ptr, evs[i].events);
    }
    return n > 0;
}

static void check_progress(const char *phase)
{
    if (bench_now_ns() - t_progress > PROGRESS_TIMEOUT_NS) {
        fprintf(stderr,
                "sb-mqtt-bench: timeout: no progress for 10 s while %s (%lu/%lu connections ready, "
                "%" PRIu64 " published, %lu/%lu subscribers served)\n",
                phase, n_ready, n_conns, published, subscribers_served, opt.idle ? 0 : opt.subscribers);
        exit(2);
    }
}

static void connect_all(void)
{
    conns = calloc(n_conns, sizeof *conns);
    if (!conns)
        bench_die("out of memory");
    for (unsigned long i = 0; i < n_conns; i++) {
        conns[i].id = (unsigned)i;
        conns[i].fd = -1;
    }
    conns[0].publisher = !opt.idle;
    t_progress = bench_now_ns();
    open_more();
    while (n_ready < n_conns) {
        poll_once(250, NULL);
        check_progress("connecting");
    }
}

static int run_idle(void)
{
    printf("connected=%lu\n", n_conns);
    fflush(stdout);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, STDIN_FILENO, &ev) < 0)
        bench_die("cannot watch stdin: %s", strerror(errno));
    bool closed = false;
    uint64_t t_end = bench_now_ns() + IDLE_HOLD_NS;
    while (!closed && bench_now_ns() < t_end)
        poll_once(1000, &closed);
    return 0;
}

static int run_flow(void)
{
    conn_t *pub = &conns[0];
    uint64_t now = bench_now_ns();
    uint64_t t_warm_end = now + opt.warmup * 1000000000ull, t_measure = 0, t_end = 0;
    t_progress = t_last_delivery = now;
    for (;;) {
        pump(pub);
        poll_once(50, NULL);
        now = bench_now_ns();
        break_stall(now);
        if (!measuring && now >= t_warm_end && subscribers_served == opt.subscribers) {
            measuring = true;
            t_measure = now;
            t_end = now + opt.seconds * 1000000000ull;
        }
        if (measuring && now >= t_end)
            break;
        check_progress(measuring ? "measuring" : subscribers_served < opt.subscribers
                                                     ? "waiting for every subscriber's first message"
                                                     : "warming up");
    }
    double secs = (double)(now - t_measure) / 1e9;
    double rate = (double)delivered / secs;
    double p50 = (double)bench_hist_quantile(&latency, 0.50) / 1e3;
    double p99 = (double)bench_hist_quantile(&latency, 0.99) / 1e3;
    fprintf(stderr,
            "sb-mqtt-bench: %s:%s qos %u, 1 -> %lu subscribers, window %lu, payload %zu: %" PRIu64
            " published and %" PRIu64 " delivered in %.3f s = %.0f deliveries/s; latency us: min %.1f"
            " mean %.1f p50 %.1f p90 %.1f p99 %.1f p99.9 %.1f max %.1f; lost %" PRIu64
            ", stalls %" PRIu64 ", foreign %" PRIu64 "\n",
            opt.host, opt.port, opt.qos, opt.subscribers, opt.window, opt.payload, measured_published,
            delivered, secs, rate, latency.count ? (double)latency.min / 1e3 : 0.0,
            bench_hist_mean(&latency) / 1e3, p50, (double)bench_hist_quantile(&latency, 0.90) / 1e3,
            p99, (double)bench_hist_quantile(&latency, 0.999) / 1e3, (double)latency.max / 1e3, lost,
            stalls, foreign);
    printf("subscribers=%lu qos=%u seconds=%.3f published=%" PRIu64 " delivered=%" PRIu64
           " rate=%.0f p50_us=%.1f p99_us=%.1f lost=%" PRIu64 "\n",
           opt.subscribers, opt.qos, secs, measured_published, delivered, rate, p50, p99, lost);
    return 0;
}

int main(int argc, char **argv)
{
    parse_args(argc, argv);
    n_conns = opt.idle ? opt.idle : opt.subscribers + 1;
    bench_raise_nofile(n_conns + 16);
    bench_hist_init(&latency);

    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    int gai = getaddrinfo(opt.host, opt.port, &hints, &server);
    if (gai)
        bench_die("cannot resolve %s:%s: %s", opt.host, opt.port, gai_strerror(gai));
    ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0)
        bench_die("epoll_create1: %s", strerror(errno));

    connect_all();
    int rc = opt.idle ? run_idle() : run_flow();
    for (unsigned long i = 0; i < n_conns; i++) {
        close(conns[i].fd);
        sb_mqtt_framer_destroy(&conns[i].framer);
        sb_mqtt_buffer_release(&conns[i].out);
    }
    freeaddrinfo(server);
    return rc;
}
