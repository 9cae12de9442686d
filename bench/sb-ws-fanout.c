/*
 * sb-ws-fanout — WebSocket fan-out load generator for bench/ws_fanout.sh.
 *
 * Opens S subscriber connections to a WebSocket endpoint, subscribes each to
 * one topic, then one publisher connection sends a burst of E events of B
 * bytes (or E events at --rate per second), and counts what reaches every
 * subscriber: deliveries per second (first publish to last delivery), the
 * publish → delivery latency (each payload carries its send time; one
 * process, one clock) and what never came.
 *
 * Two dialects, so that the hub and Mosquitto's websockets listener are
 * measured by the same client:
 *   --mode hub   switchboard's JSON (§3.2): {"cmd":"sub"} / {"cmd":"pub"},
 *                events {"event":TOPIC,"data":"..."}; the publisher's OKs
 *                are counted.
 *   --mode mqtt  MQTT 3.1.1 over WebSocket (subprotocol "mqtt"), QoS 0.
 *
 *   stdout: mode=M subscribers=S events=E delivered=D lost=L oks=K seconds=T
 *           rate=R first_ms=F p50_ms=X p99_ms=Y max_ms=Z
 *
 * Single thread, epoll, non-blocking sockets. Exit status: 0 every event
 * reached every subscriber, 1 error, 2 no progress for 10 s (lost events).
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

#define TOPIC "bench/fanout"
#define MARK "sbf:"
#define READ_CHUNK (1 << 20)
#define MAX_HANDSHAKING 256     /* connections opened at once */
#define STALL_NS 10000000000ULL

typedef enum { HUB, MQTT } mode_t_;

typedef enum {
    ST_CONNECTING,   /* TCP connect, then the upgrade request */
    ST_UPGRADING,    /* waiting for 101 */
    ST_JOINING,      /* hub: welcome, then the sub reply; mqtt: CONNACK, then SUBACK */
    ST_READY,
} state_t;

typedef struct {
    int fd;
    unsigned id;
    bool publisher;
    state_t state;
    bool watching_out;
    uint8_t *out;                 /* bytes not yet written */
    size_t out_length, out_offset;
    uint8_t *partial;             /* a WebSocket frame not complete yet */
    size_t partial_length;
    uint8_t *mqtt;                /* MQTT bytes of the frames, a packet not complete yet */
    size_t mqtt_length;
    unsigned step;                /* within ST_JOINING: 0 first answer awaited, 1 second */
    unsigned long received;       /* events */
} conn_t;

static struct {
    mode_t_ mode;
    const char *host, *port;
    unsigned long subscribers, events, size, rate;
    int ep;
    struct addrinfo *server;
    conn_t *conns;                /* subscribers, then the publisher */
    unsigned long opened, ready, handshaking;
    uint64_t delivered, oks;
    unsigned long published;
    uint64_t t_first_publish, t_first_delivery, t_last_delivery, t_progress;
    bench_hist_t latency;
    uint8_t chunk[READ_CHUNK];
} g;

/* ---------------------------------------------------------------- output */

static void queue(conn_t *c, const void *data, size_t length)
{
    c->out = bench_xrealloc(c->out, c->out_length + length);
    memcpy(c->out + c->out_length, data, length);
    c->out_length += length;
}

static void flush(conn_t *c)
{
    if (c->out_offset < c->out_length && bench_send(c->fd, c->out, c->out_length, &c->out_offset, c->id)) {
        c->out_length = c->out_offset = 0;
    }
    bench_watch(g.ep, c->fd, c, &c->watching_out, c->out_offset < c->out_length);
}

/* One masked client frame (RFC 6455 §5.3; the key need not be secret here). */
static void queue_frame(conn_t *c, uint8_t opcode, const void *payload, size_t length)
{
    uint8_t header[14] = { (uint8_t) (0x80 | opcode) };
    size_t used = 2;
    if (length < 126)
        header[1] = (uint8_t) (0x80 | length);
    else if (length < 65536) {
        header[1] = 0x80 | 126;
        header[2] = (uint8_t) (length >> 8);
        header[3] = (uint8_t) length;
        used = 4;
    }
    else
        bench_die("frame too long");
    static const uint8_t key[4] = { 0x12, 0x34, 0x56, 0x78 };
    memcpy(header + used, key, 4);
    queue(c, header, used + 4);
    uint8_t *masked = malloc(length + 1);
    for (size_t i = 0; i < length; i++)
        masked[i] = ((const uint8_t *) payload)[i] ^ key[i % 4];
    queue(c, masked, length);
    free(masked);
}

static void queue_upgrade(conn_t *c)
{
    char request[512];
    int length = snprintf(request, sizeof request,
                          "GET /%s HTTP/1.1\r\nHost: %s:%s\r\nUpgrade: websocket\r\n"
                          "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                          "Sec-WebSocket-Version: 13\r\n%s\r\n",
                          g.mode == MQTT ? "mqtt" : "", g.host, g.port,
                          g.mode == MQTT ? "Sec-WebSocket-Protocol: mqtt\r\n" : "");
    queue(c, request, (size_t) length);
}

static size_t mqtt_remaining(uint8_t *out, size_t value)
{
    size_t used = 0;
    do {
        out[used] = (uint8_t) (value % 128);
        value /= 128;
        out[used] |= value ? 0x80 : 0;
        used++;
    } while (value);
    return used;
}

/* An MQTT packet: fixed header byte, remaining length, `body`. */
static void queue_mqtt(conn_t *c, uint8_t type, const uint8_t *body, size_t length)
{
    uint8_t packet[512];
    packet[0] = type;
    size_t used = 1 + mqtt_remaining(packet + 1, length);
    if (used + length > sizeof packet)
        bench_die("MQTT packet too long");
    memcpy(packet + used, body, length);
    queue_frame(c, 0x2, packet, used + length);
}

static void queue_connect(conn_t *c)
{
    char client_id[32];
    int id_length = snprintf(client_id, sizeof client_id, "sbf-%u", c->id);
    uint8_t body[64] = { 0, 4, 'M', 'Q', 'T', 'T', 4, 0x02 /* clean session */, 0, 60,
                         0, (uint8_t) id_length };
    memcpy(body + 12, client_id, (size_t) id_length);
    queue_mqtt(c, 0x10, body, 12 + (size_t) id_length);
}

static void queue_subscribe(conn_t *c)
{
    if (g.mode == HUB) {
        static const char sub[] = "{\"id\":1,\"cmd\":\"sub\",\"args\":[\"" TOPIC "\"]}";
        queue_frame(c, 0x1, sub, sizeof sub - 1);
        return;
    }
    uint8_t body[64] = { 0, 1, 0, (uint8_t) (sizeof TOPIC - 1) };
    memcpy(body + 4, TOPIC, sizeof TOPIC - 1);
    body[4 + sizeof TOPIC - 1] = 0;   /* QoS 0 */
    queue_mqtt(c, 0x82, body, 5 + sizeof TOPIC - 1);
}

static void queue_event(conn_t *c, unsigned long seq)
{
    char payload[4096];
    int head = snprintf(payload, sizeof payload, MARK "%06lu:%020" PRIu64 ":", seq, bench_now_ns());
    size_t size = g.size > (size_t) head ? g.size : (size_t) head;
    memset(payload + head, 'x', size - (size_t) head);
    if (g.mode == HUB) {
        char request[4400];
        int length = snprintf(request, sizeof request,
                              "{\"id\":%lu,\"cmd\":\"pub\",\"args\":[\"" TOPIC "\",\"%.*s\"]}",
                              seq + 2, (int) size, payload);
        queue_frame(c, 0x1, request, (size_t) length);
        return;
    }
    uint8_t body[4200] = { 0, (uint8_t) (sizeof TOPIC - 1) };
    memcpy(body + 2, TOPIC, sizeof TOPIC - 1);
    memcpy(body + 2 + sizeof TOPIC - 1, payload, size);
    uint8_t packet[4300];
    packet[0] = 0x30;
    size_t used = 1 + mqtt_remaining(packet + 1, 2 + sizeof TOPIC - 1 + size);
    memcpy(packet + used, body, 2 + sizeof TOPIC - 1 + size);
    queue_frame(c, 0x2, packet, used + 2 + sizeof TOPIC - 1 + size);
}

/* ---------------------------------------------------------------- input */

static void on_ready(conn_t *c)
{
    c->state = ST_READY;
    g.handshaking--;
    if (!c->publisher)
        g.ready++;
}

/* An event's payload found in a message: latency and count. */
static void on_event(conn_t *c, const uint8_t *data, size_t length)
{
    const uint8_t *mark = memmem(data, length, MARK, sizeof MARK - 1);
    if (!mark || mark + 4 + 6 + 1 + 20 > data + length)
        return;
    uint64_t now = bench_now_ns();
    uint64_t sent = strtoull((const char *) mark + 4 + 7, NULL, 10);
    bench_hist_add(&g.latency, now > sent ? now - sent : 0);
    c->received++;
    g.delivered++;
    if (!g.t_first_delivery)
        g.t_first_delivery = now;
    g.t_last_delivery = now;
}

static void on_hub_text(conn_t *c, const uint8_t *data, size_t length)
{
    if (c->state == ST_READY && !c->publisher) {
        on_event(c, data, length);
        return;
    }
    if (c->state == ST_READY) {   /* the publisher: replies to its pubs */
        if (memmem(data, length, "\"ok\":true", 9))
            g.oks++;
        return;
    }
    if (c->step == 0 && memmem(data, length, "$welcome", 8)) {
        c->step = 1;
        if (c->publisher)
            on_ready(c);
        else
            queue_subscribe(c);
    }
    else if (c->step == 1 && memmem(data, length, "\"id\":1", 6)) {
        if (!memmem(data, length, "\"ok\":true", 9))
            bench_die("sub refused: %.*s", (int) length, data);
        on_ready(c);
    }
}

/* Complete MQTT packets in c->mqtt. */
static void on_mqtt_bytes(conn_t *c)
{
    size_t at = 0;
    while (at + 2 <= c->mqtt_length) {
        size_t remaining = 0, shift = 0, used = 1;
        uint8_t byte;
        do {
            if (at + used >= c->mqtt_length)
                goto incomplete;
            byte = c->mqtt[at + used++];
            remaining |= (size_t) (byte & 0x7f) << shift;
            shift += 7;
        } while (byte & 0x80);
        if (at + used + remaining > c->mqtt_length)
            break;
        uint8_t type = c->mqtt[at] >> 4;
        const uint8_t *body = c->mqtt + at + used;
        if (type == 3)   /* PUBLISH, QoS 0: topic, then payload */
            on_event(c, body, remaining);
        else if (type == 2) {   /* CONNACK */
            if (c->publisher)
                on_ready(c);
            else
                queue_subscribe(c);
        }
        else if (type == 9)     /* SUBACK */
            on_ready(c);
        at += used + remaining;
    }
incomplete:
    memmove(c->mqtt, c->mqtt + at, c->mqtt_length - at);
    c->mqtt_length -= at;
}

static void on_message(conn_t *c, uint8_t opcode, const uint8_t *payload, size_t length)
{
    if (opcode == 0x8)
        bench_die("connection %u closed by the server", c->id);
    if (opcode == 0x9) {   /* ping */
        queue_frame(c, 0xA, payload, length);
        return;
    }
    if (g.mode == HUB && opcode == 0x1)
        on_hub_text(c, payload, length);
    else if (g.mode == MQTT && (opcode == 0x2 || opcode == 0x0)) {
        c->mqtt = bench_xrealloc(c->mqtt, c->mqtt_length + length);
        memcpy(c->mqtt + c->mqtt_length, payload, length);
        c->mqtt_length += length;
        on_mqtt_bytes(c);
    }
}

/* Frames in data[0..length); returns how many bytes were whole frames. */
static size_t on_frames(conn_t *c, const uint8_t *data, size_t length)
{
    size_t at = 0;
    while (at + 2 <= length) {
        uint64_t size = data[at + 1] & 0x7f;
        size_t header = 2;
        if (size == 126) {
            if (at + 4 > length)
                break;
            size = (uint64_t) data[at + 2] << 8 | data[at + 3];
            header = 4;
        }
        else if (size == 127) {
            if (at + 10 > length)
                break;
            size = 0;
            for (int i = 0; i < 8; i++)
                size = size << 8 | data[at + 2 + i];
            header = 10;
        }
        if (at + header + size > length)
            break;
        on_message(c, data[at] & 0x0f, data + at + header, (size_t) size);
        at += header + (size_t) size;
    }
    return at;
}

static void on_readable(conn_t *c)
{
    for (;;) {
        memcpy(g.chunk, c->partial, c->partial_length);
        long got = bench_recv(c->fd, g.chunk + c->partial_length, READ_CHUNK - c->partial_length, c->id);
        if (got == 0)
            bench_die("connection %u closed by the server", c->id);
        if (got < 0)
            return;
        size_t length = c->partial_length + (size_t) got, at = 0;
        g.t_progress = bench_now_ns();
        if (c->state == ST_UPGRADING) {
            uint8_t *end = memmem(g.chunk, length, "\r\n\r\n", 4);
            if (!end) {
                c->partial = bench_xrealloc(c->partial, length);
                memcpy(c->partial, g.chunk, length);
                c->partial_length = length;
                continue;
            }
            if (memcmp(g.chunk, "HTTP/1.1 101", 12) != 0)
                bench_die("upgrade refused: %.*s", (int) (end - g.chunk), g.chunk);
            c->state = ST_JOINING;
            at = (size_t) (end + 4 - g.chunk);
            if (g.mode == MQTT)
                queue_connect(c);
        }
        at += on_frames(c, g.chunk + at, length - at);
        c->partial_length = length - at;
        if (c->partial_length) {
            c->partial = bench_xrealloc(c->partial, c->partial_length);
            memcpy(c->partial, g.chunk + at, c->partial_length);
        }
        flush(c);
    }
}

/* ---------------------------------------------------------------- the run */

static void open_connection(unsigned id, bool publisher)
{
    conn_t *c = &g.conns[id];
    *c = (conn_t) { .id = id, .publisher = publisher, .state = ST_CONNECTING };
    c->fd = bench_connect(g.ep, g.server, c);
    c->watching_out = true;
    g.handshaking++;
}

static void on_event_ready(conn_t *c, uint32_t events)
{
    if (c->state == ST_CONNECTING && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
        bench_check_connected(c->fd, g.host, g.port);
        c->state = ST_UPGRADING;
        queue_upgrade(c);
    }
    if (events & (EPOLLIN | EPOLLERR | EPOLLHUP))
        on_readable(c);
    flush(c);
}

static void publish_due(conn_t *publisher)
{
    uint64_t now = bench_now_ns();
    while (g.published < g.events) {
        if (g.rate && g.published * 1000000000ULL / g.rate > now - g.t_first_publish)
            break;
        queue_event(publisher, g.published++);
    }
    flush(publisher);
}

static void usage(const char *program)
{
    fprintf(stderr,
            "usage: %s --port P [--host H] [--mode hub|mqtt] [--subscribers S] [--events E]\n"
            "          [--size B] [--rate R]\n"
            "  --mode M          hub: switchboard's JSON; mqtt: MQTT 3.1.1 over WebSocket (default hub)\n"
            "  --subscribers S   subscriber connections (default 1000)\n"
            "  --events E        events published (default 200)\n"
            "  --size B          bytes of each event's payload (default 100)\n"
            "  --rate R          events per second (default 0: all at once)\n", program);
}

static void parse(int argc, char **argv)
{
    static const struct option options[] = {
        { "host", required_argument, NULL, 'h' },   { "port", required_argument, NULL, 'p' },
        { "mode", required_argument, NULL, 'm' },   { "subscribers", required_argument, NULL, 's' },
        { "events", required_argument, NULL, 'e' }, { "size", required_argument, NULL, 'b' },
        { "rate", required_argument, NULL, 'r' },   { "help", no_argument, NULL, '?' },
        { NULL, 0, NULL, 0 },
    };
    g.host = "127.0.0.1";
    g.subscribers = 1000;
    g.events = 200;
    g.size = 100;
    for (int code; (code = getopt_long(argc, argv, "", options, NULL)) != -1;) {
        switch (code) {
        case 'h': g.host = optarg; break;
        case 'p': g.port = optarg; break;
        case 'm':
            if (strcmp(optarg, "hub") != 0 && strcmp(optarg, "mqtt") != 0)
                bench_die("--mode is hub or mqtt");
            g.mode = strcmp(optarg, "mqtt") == 0 ? MQTT : HUB;
            break;
        case 's': g.subscribers = bench_parse_num("subscribers", optarg, 1, 1000000); break;
        case 'e': g.events = bench_parse_num("events", optarg, 1, 999999); break;
        case 'b': g.size = bench_parse_num("size", optarg, 40, 4000); break;
        case 'r': g.rate = bench_parse_num("rate", optarg, 0, 10000000); break;
        default: usage(argv[0]); exit(code == '?' ? 0 : 1);
        }
    }
    if (!g.port)
        bench_die("--port is required (try --help)");
}

static void report(void)
{
    uint64_t expected = (uint64_t) g.subscribers * g.events;
    double seconds = g.t_last_delivery > g.t_first_publish
                         ? (double) (g.t_last_delivery - g.t_first_publish) / 1e9 : 0;
    double first_ms = g.t_first_delivery ? (double) (g.t_first_delivery - g.t_first_publish) / 1e6 : -1;
    printf("mode=%s subscribers=%lu events=%lu delivered=%" PRIu64 " lost=%" PRIu64
           " oks=%" PRIu64 " seconds=%.3f rate=%.0f first_ms=%.1f p50_ms=%.1f p99_ms=%.1f"
           " max_ms=%.1f\n",
           g.mode == HUB ? "hub" : "mqtt", g.subscribers, g.events, g.delivered,
           expected - g.delivered, g.oks, seconds, seconds > 0 ? (double) g.delivered / seconds : 0,
           first_ms, (double) bench_hist_quantile(&g.latency, 0.50) / 1e6,
           (double) bench_hist_quantile(&g.latency, 0.99) / 1e6, (double) g.latency.max / 1e6);
}

int main(int argc, char **argv)
{
    parse(argc, argv);
    bench_raise_nofile(g.subscribers + 64);
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
    if (getaddrinfo(g.host, g.port, &hints, &g.server) != 0)
        bench_die("cannot resolve %s:%s", g.host, g.port);
    g.ep = epoll_create1(0);
    g.conns = calloc(g.subscribers + 1, sizeof *g.conns);
    bench_hist_init(&g.latency);
    conn_t *publisher = &g.conns[g.subscribers];
    bool publishing = false, publisher_opened = false;
    g.t_progress = bench_now_ns();
    struct epoll_event events[512];
    for (;;) {
        while (g.opened < g.subscribers && g.handshaking < MAX_HANDSHAKING)
            open_connection((unsigned) g.opened++, false);
        if (g.ready == g.subscribers && !publisher_opened) {
            publisher_opened = true;
            fprintf(stderr, "%lu subscribers ready, publishing %lu events\n", g.subscribers, g.events);
            open_connection((unsigned) g.subscribers, true);
        }
        if (!publishing && publisher_opened && publisher->state == ST_READY) {
            publishing = true;
            g.t_first_publish = bench_now_ns();
        }
        if (publishing)
            publish_due(publisher);
        if (publishing && g.delivered == (uint64_t) g.subscribers * g.events
            && (g.mode == MQTT || g.oks == g.events))
            break;
        int ready = epoll_wait(g.ep, events, 512, publishing && g.rate ? 1 : 100);
        if (ready < 0 && errno != EINTR)
            bench_die("epoll_wait: %s", strerror(errno));
        for (int i = 0; i < ready; i++)
            on_event_ready(events[i].data.ptr, events[i].events);
        if (bench_now_ns() - g.t_progress > STALL_NS) {
            fprintf(stderr, "no progress for 10 s: ready=%lu/%lu delivered=%" PRIu64 "\n", g.ready,
                    g.subscribers, g.delivered);
            report();
            return 2;
        }
    }
    report();
    return 0;
}
