/* worker.c — the loop of one forked worker (see worker.h).
 *
 * The master forks before any ZeroMQ context exists; each worker makes its
 * own here. czmq would install a SIGINT/SIGTERM handler of its own on first
 * use, so it is told not to, and the worker installs one that only sets a
 * flag: a stop request never interrupts a command half-way.
 *
 * The worker heartbeats the broker every interval, busy or not (a long
 * command is a job the loop waits on, not a blocking call), and makes its
 * link anew when the broker has been silent for `liveness` intervals or
 * does not know it: after a broker restart it registers again by itself.
 *
 * Watchdog: each request arms a kernel timer (setitimer) for its time
 * left plus a margin. A command stuck past it, even in a loop that never
 * returns to this code, gets SIGALRM, whose default action ends the
 * worker; the master replaces it. The broker has answered ERR timeout by
 * then. */
#include "worker.h"

#include <czmq.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <sys/time.h>

#include "envelope_io.h"
#include "log.h"

typedef struct {
    const sb_worker_settings_t *settings;
    sb_command_context_t commands;   /* this worker's: it owns the store it opens */
    zsock_t *link;
    sb_job_t *job;                   /* the command running, if any */
    uint64_t job_request_id;
    long requests_done;
    sb_command_result_t result;      /* big: kept here, not on the stack */
    int64_t next_heartbeat_ms;
    int64_t broker_expires_ms;       /* reconnect if nothing is heard by then */
} worker_t;

static volatile sig_atomic_t s_stop_requested;

static void request_stop(int signo)
{
    (void) signo;
    s_stop_requested = 1;
}

static void install_stop_handler(void)
{
    struct sigaction action = { .sa_handler = request_stop };
    sigemptyset(&action.sa_mask);
    sigaction(SIGTERM, &action, NULL);
    sigaction(SIGINT, &action, NULL);
}

/* Past the broker's deadline by this much, a command is stuck. */
#define WATCHDOG_MARGIN_MS 250

static void set_watchdog(long milliseconds)
{
    struct itimerval timer = {
        .it_value = { .tv_sec = milliseconds / 1000, .tv_usec = (milliseconds % 1000) * 1000 },
    };
    setitimer(ITIMER_REAL, &timer, NULL);
}

static void send_envelope(worker_t *self, const sb_envelope_t *env)
{
    if (sb_envelope_send(self->link, NULL, env) < 0)
        sb_log_warn("cannot send to broker", "type=%s error=\"%s\"",
                    sb_envelope_type_name(env->type), zmq_strerror(errno));
}

static void broker_heard(worker_t *self)
{
    const sb_worker_settings_t *settings = self->settings;
    self->broker_expires_ms = zclock_mono()
                              + settings->heartbeat_interval_ms * settings->heartbeat_liveness;
}

/* (Re)makes the link and registers; false if the socket cannot be made.
 * READY means idle: a command still running belongs to a broker that is
 * gone (or has given up on this worker) and is abandoned. */
static bool connect_and_register(worker_t *self)
{
    if (self->job) {
        sb_log_warn("abandoning the command in hand", "service=%s", self->settings->service);
        sb_job_cancel(&self->job);
        set_watchdog(0);
    }
    zsock_destroy(&self->link);
    self->link = sb_socket_new(ZMQ_DEALER, self->settings->broker, SB_SOCKET_CONNECT);
    if (!self->link) {
        sb_log_error("cannot connect to broker", "broker=%s error=\"%s\"",
                     self->settings->broker, zmq_strerror(errno));
        return false;
    }
    sb_envelope_t ready = { .type = SB_ENVELOPE_READY, .service = (char *) self->settings->service };
    send_envelope(self, &ready);
    broker_heard(self);
    self->next_heartbeat_ms = zclock_mono() + self->settings->heartbeat_interval_ms;
    return true;
}

static void send_result(worker_t *self, uint64_t request_id)
{
    self->requests_done++;
    sb_envelope_t reply = {
        .type = SB_ENVELOPE_REPLY, .id = request_id, .ok = self->result.ok,
        .code = (char *) self->result.code, .text = self->result.text,
    };
    send_envelope(self, &reply);
}

static void start_request(worker_t *self, const sb_envelope_t *request)
{
    if (self->job) {
        /* The broker gives a worker one request at a time; a second is its mistake. */
        self->result = (sb_command_result_t) { .ok = false, .code = "busy" };
        snprintf(self->result.text, sizeof self->result.text, "worker is busy");
        send_result(self, request->id);
        return;
    }
    if (request->timeout_ms)
        set_watchdog((long) request->timeout_ms + WATCHDOG_MARGIN_MS);
    self->job = sb_command_start(&self->commands, request, &self->result);
    if (self->job)
        self->job_request_id = request->id;
    else {
        set_watchdog(0);
        send_result(self, request->id);
    }
}

/* Handles one envelope from the broker; false when the link must be made anew. */
static bool handle(worker_t *self, const sb_envelope_t *env)
{
    broker_heard(self);
    switch (env->type) {
    case SB_ENVELOPE_REQUEST:
        start_request(self, env);
        return true;
    case SB_ENVELOPE_DISCONNECT:
        sb_log_info("broker does not know this worker, registering again", "service=%s",
                    self->settings->service);
        return false;
    case SB_ENVELOPE_HEARTBEAT:
        return true;
    default:
        sb_log_warn("unexpected envelope from broker, dropped", "type=%s",
                    sb_envelope_type_name(env->type));
        return true;
    }
}

/* Reads everything waiting; false when the link must be made anew. */
static bool drain(worker_t *self)
{
    for (;;) {
        sb_envelope_t *env = NULL;
        const char *error = NULL;
        sb_recv_status_t status = sb_envelope_recv(self->link, false, NULL, &env, &error);
        if (status == SB_RECV_NONE)
            return true;
        if (status == SB_RECV_MALFORMED) {
            sb_log_warn("malformed envelope from broker, dropped", "error=\"%s\"", error);
            continue;
        }
        bool keep = handle(self, env);
        sb_envelope_destroy(&env);
        if (!keep)
            return false;
    }
}

static long poll_timeout_ms(const worker_t *self)
{
    int64_t wake = self->next_heartbeat_ms;
    if (self->job && sb_job_due_ms(self->job) < wake)
        wake = sb_job_due_ms(self->job);
    int64_t left = wake - zclock_mono();
    return left > 0 ? (long) left : 0;
}

/* Heartbeats, finished jobs and broker silence: what time (or a job's output) brings. */
static bool tick(worker_t *self)
{
    int64_t now = zclock_mono();
    if (self->job && sb_job_finish(&self->job, now, &self->result)) {
        set_watchdog(0);
        send_result(self, self->job_request_id);
    }
    if (now >= self->next_heartbeat_ms) {
        sb_envelope_t heartbeat = { .type = SB_ENVELOPE_HEARTBEAT };
        send_envelope(self, &heartbeat);
        self->next_heartbeat_ms = now + self->settings->heartbeat_interval_ms;
    }
    if (now >= self->broker_expires_ms) {
        sb_log_warn("broker silent, reconnecting", "service=%s", self->settings->service);
        return false;
    }
    return true;
}

/* --max-requests: the worker leaves (status 0) and the master forks a fresh one. */
static bool recycle_due(const worker_t *self)
{
    return self->settings->max_requests > 0
           && self->requests_done >= self->settings->max_requests;
}

int sb_worker_run(const sb_worker_settings_t *settings)
{
    zsys_handler_set(NULL);
    zsys_init();
    install_stop_handler();
    worker_t self = { .settings = settings, .commands = settings->commands };
    bool linked = connect_and_register(&self);
    /* A stop waits for the command in hand: its client gets its answer. */
    while (linked && (!(s_stop_requested || recycle_due(&self)) || self.job)) {
        zmq_pollitem_t items[3] = { { zsock_resolve(self.link), 0, ZMQ_POLLIN, 0 } };
        int fds[2];
        size_t fd_count = self.job ? sb_job_fds(self.job, fds) : 0;
        for (size_t i = 0; i < fd_count; i++)
            items[1 + i] = (zmq_pollitem_t) { NULL, fds[i], ZMQ_POLLIN, 0 };
        if (zmq_poll(items, 1 + (int) fd_count, poll_timeout_ms(&self)) < 0 && errno != EINTR)
            break;
        if (!drain(&self) || !tick(&self))
            linked = connect_and_register(&self);
    }
    if (self.link) {
        sb_envelope_t leave = { .type = SB_ENVELOPE_DISCONNECT };
        send_envelope(&self, &leave);
        zsock_set_linger(self.link, 200);   /* let the goodbye reach the broker */
        zsock_destroy(&self.link);
    }
    sb_job_cancel(&self.job);
    sb_store_destroy(&self.commands.store);
    zsys_shutdown();
    /* A worker that could not even make its socket failed: the master's
     * crash-loop brake must see that, not a clean exit. */
    return linked || s_stop_requested || recycle_due(&self) ? 0 : 1;
}
