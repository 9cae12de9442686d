/* worker.c — the loop of one forked worker (see worker.h).
 *
 * The master forks before any ZeroMQ context exists; each worker makes its
 * own here. czmq would install a SIGINT/SIGTERM handler of its own on first
 * use, so it is told not to, and the worker installs one that only sets a
 * flag: a stop request never interrupts a command half-way.
 *
 * The worker announces a credit (--prefetch): the broker may hand it
 * that many requests at once. It runs each as it arrives: a built-in at
 * once, a job (`sleep`, an external program) started and then waited on
 * by the loop, so the fast commands behind a job are not held back by it.
 * The broker gives it one job at a time; it copes with more.
 *
 * The worker heartbeats the broker every interval, busy or not, and makes
 * its link anew when the broker has been silent for `liveness` intervals
 * or does not know it: after a broker restart it registers again by itself.
 *
 * Watchdog: a kernel timer (setitimer) is armed for the nearest deadline
 * of what the worker runs, plus a margin. A command stuck past it, even in
 * a loop that never returns to this code, gets SIGALRM, whose default
 * action ends the worker; the master replaces it. The broker has answered
 * ERR timeout by then. */
#include "worker.h"

#include <czmq.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <sys/time.h>

#include "envelope_io.h"
#include "log.h"

/* A job in hand: the request it answers and when that is due. */
typedef struct {
    sb_job_t *job;
    uint64_t request_id;
    int64_t deadline_ms;
} running_t;

typedef struct {
    const sb_worker_settings_t *settings;
    sb_command_context_t commands;   /* this worker's: it owns the store it opens */
    zsock_t *link;
    sb_outbox_t *outbox;             /* replies and heartbeats, flushed each pass */
    sb_inbox_t *inbox;
    running_t *running;              /* jobs in hand: `credit` places */
    size_t running_count;
    zmq_pollitem_t *poll_items;      /* the link, then each job's fds */
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

/* Armed for the nearest deadline among the jobs in hand, or disarmed. */
static void watch_jobs(const worker_t *self)
{
    int64_t nearest = INT64_MAX;
    for (size_t i = 0; i < self->running_count; i++)
        if (self->running[i].deadline_ms < nearest)
            nearest = self->running[i].deadline_ms;
    if (nearest == INT64_MAX) {
        set_watchdog(0);
        return;
    }
    int64_t left = nearest - zclock_mono();
    set_watchdog((long) (left > 0 ? left : 1) + WATCHDOG_MARGIN_MS);
}

static void cancel_jobs(worker_t *self)
{
    for (size_t i = 0; i < self->running_count; i++)
        sb_job_cancel(&self->running[i].job);
    self->running_count = 0;
    set_watchdog(0);
}

static void send_envelope(worker_t *self, const sb_envelope_t *env)
{
    if (sb_outbox_add(self->outbox, NULL, env) < 0)
        sb_log_warn("cannot send to broker", "type=%s error=\"%s\"",
                    sb_envelope_type_name(env->type), zmq_strerror(errno));
}

static void broker_heard(worker_t *self)
{
    const sb_worker_settings_t *settings = self->settings;
    self->broker_expires_ms = zclock_mono()
                              + settings->heartbeat_interval_ms * settings->heartbeat_liveness;
}

static void unlink_broker(worker_t *self)
{
    sb_outbox_destroy(&self->outbox);
    sb_inbox_destroy(&self->inbox);
    zsock_destroy(&self->link);
}

/* (Re)makes the link and registers; false if the socket cannot be made.
 * READY means idle: a command still running belongs to a broker that is
 * gone (or has given up on this worker) and is abandoned. */
static bool connect_and_register(worker_t *self)
{
    if (self->running_count) {
        sb_log_warn("abandoning the commands in hand", "service=%s jobs=%zu",
                    self->settings->service, self->running_count);
        cancel_jobs(self);
    }
    unlink_broker(self);
    self->link = sb_socket_new(ZMQ_DEALER, self->settings->broker, SB_SOCKET_CONNECT);
    if (!self->link) {
        sb_log_error("cannot connect to broker", "broker=%s error=\"%s\"",
                     self->settings->broker, zmq_strerror(errno));
        return false;
    }
    self->outbox = sb_outbox_new(self->link, NULL, NULL);
    self->inbox = sb_inbox_new(self->link, false);
    sb_envelope_t ready = { .type = SB_ENVELOPE_READY,
                            .service = (char *) self->settings->service,
                            .credit = (uint32_t) self->settings->prefetch };
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

static void refuse_request(worker_t *self, uint64_t request_id)
{
    /* More than the credit it announced: the broker's mistake, answered. */
    self->result = (sb_command_result_t) { .ok = false, .code = "busy" };
    snprintf(self->result.text, sizeof self->result.text, "worker is busy");
    send_result(self, request_id);
}

/* Runs a built-in to its end, or starts a job and keeps it in hand. */
static void start_request(worker_t *self, const sb_envelope_t *request)
{
    if (self->running_count == (size_t) self->settings->prefetch) {
        refuse_request(self, request->id);
        return;
    }
    int64_t deadline = zclock_mono() + (request->timeout_ms ? request->timeout_ms : 3600 * 1000);
    if (request->timeout_ms)
        set_watchdog((long) request->timeout_ms + WATCHDOG_MARGIN_MS);
    sb_job_t *job = sb_command_start(&self->commands, request, &self->result);
    if (job)
        self->running[self->running_count++] = (running_t) { job, request->id, deadline };
    else
        send_result(self, request->id);
    watch_jobs(self);
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
        sb_recv_status_t status = sb_inbox_next(self->inbox, NULL, &env, &error);
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
    if (sb_inbox_has_more(self->inbox))
        return 0;
    int64_t wake = self->next_heartbeat_ms;
    for (size_t i = 0; i < self->running_count; i++)
        if (sb_job_due_ms(self->running[i].job) < wake)
            wake = sb_job_due_ms(self->running[i].job);
    int64_t left = wake - zclock_mono();
    return left > 0 ? (long) left : 0;
}

/* Answers the jobs that are done; the others keep their places in order. */
static void finish_jobs(worker_t *self, int64_t now)
{
    size_t kept = 0;
    for (size_t i = 0; i < self->running_count; i++) {
        running_t running = self->running[i];
        if (sb_job_finish(&running.job, now, &self->result))
            send_result(self, running.request_id);
        else
            self->running[kept++] = running;
    }
    if (kept != self->running_count) {
        self->running_count = kept;
        watch_jobs(self);
    }
}

/* Heartbeats, finished jobs and broker silence: what time (or a job's output) brings. */
static bool tick(worker_t *self)
{
    int64_t now = zclock_mono();
    finish_jobs(self, now);
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

/* The link and every job's pipes; returns how many items. */
static int poll_items_fill(worker_t *self)
{
    zmq_pollitem_t *items = self->poll_items;
    items[0] = (zmq_pollitem_t) { zsock_resolve(self->link), 0, ZMQ_POLLIN, 0 };
    int count = 1;
    for (size_t i = 0; i < self->running_count; i++) {
        int fds[2];
        size_t fd_count = sb_job_fds(self->running[i].job, fds);
        for (size_t f = 0; f < fd_count; f++)
            items[count++] = (zmq_pollitem_t) { NULL, fds[f], ZMQ_POLLIN, 0 };
    }
    return count;
}

int sb_worker_run(const sb_worker_settings_t *settings)
{
    zsys_handler_set(NULL);
    zsys_init();
    install_stop_handler();
    worker_t self = { .settings = settings, .commands = settings->commands };
    size_t credit = (size_t) settings->prefetch;
    self.running = calloc(credit, sizeof *self.running);
    self.poll_items = calloc(1 + 2 * credit, sizeof *self.poll_items);
    bool linked = connect_and_register(&self);
    /* A stop waits for the jobs in hand: their clients get their answers.
     * What arrives meanwhile is run too (the broker gives no second job),
     * and nothing is read after the leave, which the broker sees after the
     * last reply: what it sent since goes back to its queue. */
    while (linked && (!(s_stop_requested || recycle_due(&self)) || self.running_count)) {
        int count = poll_items_fill(&self);
        if (zmq_poll(self.poll_items, count, poll_timeout_ms(&self)) < 0 && errno != EINTR)
            break;
        if (!drain(&self) || !tick(&self))
            linked = connect_and_register(&self);
        if (linked)
            sb_outbox_flush(self.outbox);
    }
    if (self.link) {
        sb_envelope_t leave = { .type = SB_ENVELOPE_DISCONNECT };
        send_envelope(&self, &leave);
        sb_outbox_flush(self.outbox);
        zsock_set_linger(self.link, 200);   /* let the goodbye reach the broker */
        unlink_broker(&self);
    }
    cancel_jobs(&self);
    free(self.running);
    free(self.poll_items);
    sb_store_destroy(&self.commands.store);
    zsys_shutdown();
    /* A worker that could not even make its socket failed: the master's
     * crash-loop brake must see that, not a clean exit. */
    return linked || s_stop_requested || recycle_due(&self) ? 0 : 1;
}
