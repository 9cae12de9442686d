/* device_link.c — one device's line link (see device_link.h).
 *
 * Pending calls stay in order in `calls`, including those that timed out:
 * a device that answers late still answers in order, so its late line is
 * matched to the expired call (and published, not lost) instead of being
 * handed to the next caller. A keepalive is a call of the link's own; its
 * timeout means the link is dead. */
#include "device_link.h"

#include <czmq.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "address.h"
#include "backoff.h"
#include "log.h"

#define EXPIRED_KEPT_FACTOR 4   /* expired calls kept for alignment, per max_pending */

typedef enum { LINK_WAITING, LINK_CONNECTING, LINK_CONNECTED, LINK_BACKOFF, LINK_STOPPED } link_state_t;

typedef struct call {
    struct call *next;
    bool keepalive;                  /* the link's own: its answer is dropped */
    bool expired;                    /* answered ERR timeout; its line is still due */
    int64_t deadline_ms;
    sb_device_reply_fn *reply;
    void *arg;
} call_t;

typedef struct {
    uv_write_t request;
    sb_device_reply_fn *reply;       /* a send's answer, once written */
    void *arg;
    char data[];
} write_t;

struct sb_device_link {
    const sb_device_config_t *config;
    const sb_device_link_events_t *events;
    void *owner;
    uv_loop_t *loop;
    link_state_t state;
    uv_stream_t *stream;             /* heap: a uv_tcp_t or uv_pipe_t, closed on its own */
    uv_connect_t connect;
    uv_getaddrinfo_t *resolving;     /* a name lookup in progress (it owns itself) */
    uv_timer_t retry_timer;          /* the backoff wait, or the connect timeout */
    uv_timer_t call_timer;           /* the earliest deadline of a pending call */
    uv_timer_t keepalive_timer;
    uv_timer_t healthy_timer;        /* up this long: the backoff starts over */
    sb_backoff_t backoff;
    int64_t retry_at_ms;
    call_t *calls, *last_call;
    size_t live_calls, expired_calls;
    size_t live_keepalives;          /* among live_calls: they take no max_pending place */
    char *input;
    size_t input_length, max_line;
    bool skipping_long_line;
    char address[96];
    uint64_t attempts;
    time_t since, last_seen;         /* since: the current state began */
};

static void disconnect(sb_device_link_t *self, const char *why);
static void start_reading(sb_device_link_t *self);

static int64_t now_ms(void)
{
    return zclock_mono();
}

/* Every state but waiting is published ("disconnected" is, as it happens). */
static void set_state(sb_device_link_t *self, link_state_t state)
{
    if (state != self->state)
        self->since = time(NULL);
    self->state = state;
    char text[48];
    sb_device_link_state(self, text, sizeof text);
    if (state != LINK_STOPPED && state != LINK_WAITING)
        self->events->on_state(self->owner, self, text);
}

/* ---------------------------------------------------------------- calls */

static void answer(call_t *call, bool ok, const char *code, const char *text)
{
    if (call->reply)
        call->reply(call->arg, ok, code, text);
    call->reply = NULL;
}

static call_t *pop_call(sb_device_link_t *self)
{
    call_t *call = self->calls;
    self->calls = call->next;
    if (!self->calls)
        self->last_call = NULL;
    if (call->expired)
        self->expired_calls--;
    else
        self->live_calls--;
    if (call->keepalive && !call->expired)
        self->live_keepalives--;
    return call;
}

static void on_call_timer(uv_timer_t *timer);

static void arm_call_timer(sb_device_link_t *self)
{
    int64_t earliest = INT64_MAX;
    for (call_t *call = self->calls; call; call = call->next)
        if (!call->expired && call->deadline_ms < earliest)
            earliest = call->deadline_ms;
    if (earliest == INT64_MAX) {
        uv_timer_stop(&self->call_timer);
        return;
    }
    int64_t left = earliest - now_ms();
    uv_timer_start(&self->call_timer, on_call_timer, left > 0 ? (uint64_t) left : 0, 0);
}

/* A call's time is up: answered now; it stays in line for its late answer. */
static void expire_calls(sb_device_link_t *self)
{
    int64_t now = now_ms();
    for (call_t *call = self->calls; call; call = call->next) {
        if (call->expired || call->deadline_ms > now)
            continue;
        if (call->keepalive) {
            disconnect(self, "no answer to the keepalive");
            return;
        }
        call->expired = true;
        self->live_calls--;
        self->expired_calls++;
        answer(call, false, "timeout", "the device did not answer in time");
    }
    /* A device that never answers must not grow the line forever. */
    while (self->calls && self->calls->expired
           && self->expired_calls > (size_t) self->config->max_pending * EXPIRED_KEPT_FACTOR)
        free(pop_call(self));
    arm_call_timer(self);
}

static void on_call_timer(uv_timer_t *timer)
{
    expire_calls(timer->data);
}

static void answer_all_not_connected(sb_device_link_t *self)
{
    while (self->calls) {
        call_t *call = pop_call(self);
        answer(call, false, "not-connected", "the link to the device broke");
        free(call);
    }
    uv_timer_stop(&self->call_timer);
}

/* ---------------------------------------------------------------- writing */

static void on_written(uv_write_t *request, int status)
{
    write_t *write = (write_t *) request;
    if (write->reply) {
        if (status == 0)
            write->reply(write->arg, true, NULL, "sent");
        else
            write->reply(write->arg, false, "not-connected", "the line could not be written");
    }
    free(write);
}

/* Writes `line` and a newline; a send's `reply` is called once it is written. */
static bool write_line(sb_device_link_t *self, const char *line, sb_device_reply_fn *reply,
                       void *arg)
{
    size_t length = strlen(line);
    write_t *write = malloc(sizeof *write + length + 1);
    write->reply = reply;
    write->arg = arg;
    memcpy(write->data, line, length);
    write->data[length] = '\n';
    uv_buf_t buffer = uv_buf_init(write->data, (unsigned) length + 1);
    if (uv_write(&write->request, self->stream, &buffer, 1, on_written) != 0) {
        free(write);
        return false;
    }
    return true;
}

static void enqueue_call(sb_device_link_t *self, bool keepalive, long timeout_ms,
                         sb_device_reply_fn *reply, void *arg)
{
    call_t *call = calloc(1, sizeof *call);
    *call = (call_t) { .keepalive = keepalive, .deadline_ms = now_ms() + timeout_ms,
                       .reply = reply, .arg = arg };
    if (self->last_call)
        self->last_call->next = call;
    else
        self->calls = call;
    self->last_call = call;
    self->live_calls++;
    self->live_keepalives += keepalive;
    arm_call_timer(self);
}

void sb_device_link_call(sb_device_link_t *self, const char *line, sb_device_reply_fn *reply,
                         void *arg)
{
    if (self->state != LINK_CONNECTED) {
        reply(arg, false, "not-connected", "the device is not connected");
        return;
    }
    if (self->live_calls - self->live_keepalives >= (size_t) self->config->max_pending) {
        reply(arg, false, "busy", "too many calls waiting for this device");
        return;
    }
    if (!write_line(self, line, NULL, NULL)) {
        reply(arg, false, "not-connected", "the line could not be written");
        return;
    }
    enqueue_call(self, false, self->config->call_timeout_ms, reply, arg);
}

void sb_device_link_send(sb_device_link_t *self, const char *line, sb_device_reply_fn *reply,
                         void *arg)
{
    if (self->state != LINK_CONNECTED)
        reply(arg, false, "not-connected", "the device is not connected");
    else if (!write_line(self, line, reply, arg))
        reply(arg, false, "not-connected", "the line could not be written");
}

static void on_keepalive_timer(uv_timer_t *timer)
{
    sb_device_link_t *self = timer->data;
    if (self->state == LINK_CONNECTED && write_line(self, self->config->keepalive, NULL, NULL))
        enqueue_call(self, true, self->config->keepalive_interval_ms, NULL, NULL);
}

/* ---------------------------------------------------------------- reading */

static void handle_line(sb_device_link_t *self, const char *line)
{
    self->last_seen = time(NULL);
    call_t *call = self->calls;
    if (!call) {
        self->events->on_line(self->owner, self, line);
        return;
    }
    pop_call(self);
    if (call->expired)
        self->events->on_line(self->owner, self, line);   /* a late answer: published, not lost */
    else if (!call->keepalive) {
        if (self->events->on_answer)
            self->events->on_answer(self->owner, self, line);
        answer(call, true, NULL, line);
    }
    free(call);
    arm_call_timer(self);
}

/* Splits the input into lines ("\n", a "\r" before it dropped); a line
 * longer than max_line is dropped with a warning. */
static void handle_input(sb_device_link_t *self)
{
    size_t start = 0;
    while (self->state == LINK_CONNECTED) {
        char *newline = memchr(self->input + start, '\n', self->input_length - start);
        if (!newline)
            break;
        size_t length = (size_t) (newline - (self->input + start));
        *newline = '\0';
        if (length > 0 && self->input[start + length - 1] == '\r')
            self->input[start + length - 1] = '\0';
        if (self->skipping_long_line)
            self->skipping_long_line = false;
        else
            handle_line(self, self->input + start);
        start += length + 1;
    }
    memmove(self->input, self->input + start, self->input_length - start);
    self->input_length -= start;
    if (self->input_length > self->max_line) {
        sb_log_warn("device line too long, dropped", "device=%s max_line=%zu",
                    self->config->name, self->max_line);
        self->input_length = 0;
        self->skipping_long_line = true;
    }
}

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buffer)
{
    sb_device_link_t *self = handle->data;
    (void) suggested;
    *buffer = uv_buf_init(self->input + self->input_length,
                          (unsigned) (self->max_line + 1 - self->input_length));
}

static void on_read(uv_stream_t *stream, ssize_t count, const uv_buf_t *buffer)
{
    (void) buffer;
    sb_device_link_t *self = stream->data;
    if (count < 0) {
        disconnect(self, count == UV_EOF ? "the device closed the link" : uv_strerror((int) count));
        return;
    }
    self->input_length += (size_t) count;
    handle_input(self);
}

static void start_reading(sb_device_link_t *self)
{
    self->stream->data = self;
    uv_read_start(self->stream, on_alloc, on_read);
}

/* ---------------------------------------------------------------- link up and down */

static void on_healthy(uv_timer_t *timer)
{
    sb_device_link_t *self = timer->data;
    sb_backoff_reset(&self->backoff);
}

static void link_up(sb_device_link_t *self)
{
    uv_timer_stop(&self->retry_timer);
    self->last_seen = time(NULL);
    self->input_length = 0;
    self->skipping_long_line = false;
    sb_log_info("device connected", "device=%s address=%s attempt=%" PRIu64, self->config->name,
                self->address, self->attempts);
    set_state(self, LINK_CONNECTED);
    start_reading(self);
    if (self->config->on_connect)
        write_line(self, self->config->on_connect, NULL, NULL);
    if (self->config->keepalive)
        uv_timer_start(&self->keepalive_timer, on_keepalive_timer,
                       (uint64_t) self->config->keepalive_interval_ms,
                       (uint64_t) self->config->keepalive_interval_ms);
    uv_timer_start(&self->healthy_timer, on_healthy, (uint64_t) self->config->healthy_after_ms, 0);
}

static void free_handle(uv_handle_t *handle)
{
    free(handle);
}

static void close_stream(sb_device_link_t *self)
{
    if (!self->stream)
        return;
    if (!uv_is_closing((uv_handle_t *) self->stream))
        uv_close((uv_handle_t *) self->stream, free_handle);
    self->stream = NULL;
}

/* A lookup still running answers into nothing. */
static void forget_lookup(sb_device_link_t *self)
{
    if (!self->resolving)
        return;
    self->resolving->data = NULL;
    uv_cancel((uv_req_t *) self->resolving);
    self->resolving = NULL;
}

static void attempt(sb_device_link_t *self);

static void on_retry_timer(uv_timer_t *timer)
{
    sb_device_link_t *self = timer->data;
    if (self->state == LINK_BACKOFF)
        attempt(self);
    else if (self->state == LINK_CONNECTING)
        disconnect(self, "connect timed out");
}

static void schedule_retry(sb_device_link_t *self)
{
    long delay = sb_backoff_next_delay(&self->backoff);
    self->retry_at_ms = now_ms() + delay;
    sb_log_info("device backoff", "device=%s delay_ms=%ld attempt=%" PRIu64, self->config->name,
                delay, self->attempts);
    uv_timer_start(&self->retry_timer, on_retry_timer, (uint64_t) delay, 0);
    set_state(self, LINK_BACKOFF);
}

static void disconnect(sb_device_link_t *self, const char *why)
{
    if (self->state == LINK_STOPPED || self->state == LINK_BACKOFF || self->state == LINK_WAITING)
        return;
    bool was_connected = self->state == LINK_CONNECTED;
    char quoted[SB_LOG_QUOTE_MAX];
    sb_log_warn(was_connected ? "device disconnected" : "device connect failed",
                "device=%s reason=%s", self->config->name, sb_log_quote(quoted, why));
    close_stream(self);
    forget_lookup(self);
    uv_timer_stop(&self->keepalive_timer);
    uv_timer_stop(&self->healthy_timer);
    uv_timer_stop(&self->retry_timer);
    self->state = LINK_WAITING;   /* not connected: no more lines are handled */
    answer_all_not_connected(self);
    if (was_connected)
        self->events->on_state(self->owner, self, "disconnected");
    if (self->config->kind == SB_DEVICE_DIAL_IN) {
        self->since = time(NULL);   /* waiting from now: the state was set above, quietly */
        set_state(self, LINK_WAITING);
    }
    else
        schedule_retry(self);
}

static void on_connected(uv_connect_t *request, int status)
{
    sb_device_link_t *self = request->data;
    if (status == UV_ECANCELED || self->state != LINK_CONNECTING)
        return;
    if (status < 0)
        disconnect(self, uv_strerror(status));
    else
        link_up(self);
}

static void connect_to(sb_device_link_t *self, const struct sockaddr *address)
{
    uv_tcp_t *tcp = calloc(1, sizeof *tcp);
    uv_tcp_init(self->loop, tcp);
    self->stream = (uv_stream_t *) tcp;
    self->connect.data = self;
    int result = uv_tcp_connect(&self->connect, tcp, address, on_connected);
    if (result != 0)
        disconnect(self, uv_strerror(result));
}

static void on_resolved(uv_getaddrinfo_t *request, int status, struct addrinfo *found)
{
    sb_device_link_t *self = request->data;   /* NULL: forgotten (a stop, a timeout) */
    if (self && self->resolving == request) {
        self->resolving = NULL;
        if (status < 0 || !found)
            disconnect(self, status < 0 ? uv_strerror(status) : "name not found");
        else if (self->state == LINK_CONNECTING)
            connect_to(self, found->ai_addr);
    }
    free(request);
    uv_freeaddrinfo(found);
}

/* A numeric address is dialed at once; a name (esp32.local) is looked up first. */
static void dial(sb_device_link_t *self)
{
    struct sockaddr_storage address;
    char error[160];
    if (sb_address_parse(self->config->connect, &address, error, sizeof error)) {
        connect_to(self, (struct sockaddr *) &address);
        return;
    }
    char host[256];
    const char *colon = strrchr(self->config->connect, ':');
    snprintf(host, sizeof host, "%.*s", (int) (colon - self->config->connect),
             self->config->connect);
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
    uv_getaddrinfo_t *request = calloc(1, sizeof *request);
    request->data = self;
    self->resolving = request;
    int result = uv_getaddrinfo(self->loop, request, on_resolved, host, colon + 1, &hints);
    if (result != 0) {
        self->resolving = NULL;
        free(request);
        disconnect(self, uv_strerror(result));
    }
}

static speed_t speed_of(long baud)
{
    static const struct { long baud; speed_t speed; } speeds[] = {
        { 1200, B1200 }, { 2400, B2400 }, { 4800, B4800 }, { 9600, B9600 }, { 19200, B19200 },
        { 38400, B38400 }, { 57600, B57600 }, { 115200, B115200 }, { 230400, B230400 },
        { 460800, B460800 }, { 921600, B921600 },
    };
    for (size_t i = 0; i < sizeof speeds / sizeof speeds[0]; i++)
        if (speeds[i].baud == baud)
            return speeds[i].speed;
    return B0;
}

/* Raw 8N1 without flow control at the configured rate (the config admits only rates in speed_of). */
static bool configure_serial(int fd, long baud)
{
    struct termios tty;
    if (tcgetattr(fd, &tty) != 0)
        return false;
    cfmakeraw(&tty);
    tty.c_cflag &= ~(tcflag_t) (CSTOPB | CRTSCTS | PARENB | CSIZE);
    tty.c_cflag |= CS8 | CLOCAL | CREAD;
    tty.c_iflag &= ~(tcflag_t) (IXON | IXOFF | IXANY);
    speed_t speed = speed_of(baud);
    return speed != B0 && cfsetispeed(&tty, speed) == 0 && cfsetospeed(&tty, speed) == 0
           && tcsetattr(fd, TCSANOW, &tty) == 0;
}

static void open_serial(sb_device_link_t *self)
{
    int fd = open(self->config->serial, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        disconnect(self, strerror(errno));
        return;
    }
    if (!configure_serial(fd, self->config->baud)) {
        char reason[160];
        snprintf(reason, sizeof reason, "cannot set the port to %ld baud 8N1: %s",
                 self->config->baud, strerror(errno));
        close(fd);
        disconnect(self, reason);
        return;
    }
    uv_pipe_t *pipe = calloc(1, sizeof *pipe);
    uv_pipe_init(self->loop, pipe, 0);
    self->stream = (uv_stream_t *) pipe;
    if (uv_pipe_open(pipe, fd) != 0) {
        close(fd);
        disconnect(self, "cannot watch the serial port");
        return;
    }
    link_up(self);
}

static void attempt(sb_device_link_t *self)
{
    self->attempts++;
    sb_log_info("device connecting", "device=%s address=%s attempt=%" PRIu64, self->config->name,
                self->address, self->attempts);
    set_state(self, LINK_CONNECTING);
    uv_timer_start(&self->retry_timer, on_retry_timer, (uint64_t) self->config->connect_timeout_ms, 0);
    if (self->config->kind == SB_DEVICE_TCP)
        dial(self);
    else
        open_serial(self);
}

void sb_device_link_start(sb_device_link_t *self)
{
    if (self->config->kind != SB_DEVICE_DIAL_IN)
        attempt(self);
    /* A dial-in device waits (it may have said HELLO already). */
}

void sb_device_link_attach(sb_device_link_t *self, uv_stream_t *stream, const char *pending,
                           size_t length)
{
    if (self->state == LINK_CONNECTED)
        disconnect(self, "the device dialed in again");
    self->attempts++;
    self->stream = stream;
    char peer[80];
    sb_address_of_peer((uv_tcp_t *) stream, peer, sizeof peer);
    snprintf(self->address, sizeof self->address, "%s", peer);
    link_up(self);
    if (length > 0 && length <= self->max_line) {
        memcpy(self->input, pending, length);
        self->input_length = length;
        handle_input(self);
    }
}

void sb_device_link_stop(sb_device_link_t *self)
{
    answer_all_not_connected(self);
    close_stream(self);
    forget_lookup(self);
    self->state = LINK_STOPPED;
    uv_timer_t *timers[] = { &self->retry_timer, &self->call_timer, &self->keepalive_timer,
                             &self->healthy_timer };
    for (size_t i = 0; i < 4; i++)
        uv_close((uv_handle_t *) timers[i], NULL);
}

/* ---------------------------------------------------------------- state */

void sb_device_link_state(const sb_device_link_t *self, char *buffer, size_t size)
{
    switch (self->state) {
    case LINK_CONNECTED: snprintf(buffer, size, "connected"); break;
    case LINK_CONNECTING: snprintf(buffer, size, "connecting"); break;
    case LINK_WAITING: snprintf(buffer, size, "waiting"); break;
    case LINK_STOPPED: snprintf(buffer, size, "stopped"); break;
    case LINK_BACKOFF: {
        int64_t left = self->retry_at_ms - now_ms();
        snprintf(buffer, size, "backoff:%.1fs", (double) (left > 0 ? left : 0) / 1000.0);
        break;
    }
    }
}

static void format_time(time_t when, char *buffer, size_t size)
{
    struct tm utc;
    if (when == 0 || !gmtime_r(&when, &utc))
        snprintf(buffer, size, "never");
    else
        strftime(buffer, size, "%Y-%m-%dT%H:%M:%SZ", &utc);
}

void sb_device_link_describe(const sb_device_link_t *self, char *buffer, size_t size)
{
    static const char *const kinds[] = { "dial-in", "tcp", "serial" };
    char state[48], since[32], seen[32];
    sb_device_link_state(self, state, sizeof state);
    format_time(self->since, since, sizeof since);
    format_time(self->last_seen, seen, sizeof seen);
    snprintf(buffer, size,
             "name=%s state=%s kind=%s address=%s since=%s last_seen=%s attempts=%" PRIu64
             " pending=%zu", self->config->name, state, kinds[self->config->kind],
             self->address[0] ? self->address : "-", since, seen, self->attempts,
             self->live_calls);
}

const char *sb_device_link_name(const sb_device_link_t *self)
{
    return self->config->name;
}

/* ---------------------------------------------------------------- lifecycle */

sb_device_link_t *sb_device_link_new(uv_loop_t *loop, const sb_device_config_t *config,
                                     size_t max_line, const sb_device_link_events_t *events,
                                     void *owner)
{
    sb_device_link_t *self = calloc(1, sizeof *self);
    self->config = config;
    self->events = events;
    self->owner = owner;
    self->loop = loop;
    self->max_line = max_line;
    self->input = malloc(max_line + 1);
    self->state = LINK_WAITING;
    self->since = time(NULL);
    snprintf(self->address, sizeof self->address, "%s",
             config->connect ? config->connect : config->serial ? config->serial : "");
    sb_backoff_init_from(&self->backoff, &config->backoff,
                         (uint64_t) zclock_usecs() ^ (uint64_t) (uintptr_t) self);
    uv_timer_t *timers[] = { &self->retry_timer, &self->call_timer, &self->keepalive_timer,
                             &self->healthy_timer };
    for (size_t i = 0; i < 4; i++) {
        uv_timer_init(loop, timers[i]);
        timers[i]->data = self;
    }
    return self;
}

void sb_device_link_destroy(sb_device_link_t **self_p)
{
    sb_device_link_t *self = *self_p;
    if (!self)
        return;
    while (self->calls)
        free(pop_call(self));
    free(self->input);
    free(self);
    *self_p = NULL;
}
