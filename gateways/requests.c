/* requests.c — a gateway's requests to the broker: deadlines, the hold
 * while the broker is away, one resend after it went (see requests.h).
 *
 * Each request waits in `table` by id until it is answered; one held for
 * the broker is also in `held`, oldest first. A request keeps its encoded
 * envelope only while it may still be sent (held, or sent once and safe to
 * send again). Deadlines are never removed from the heap: an expired one
 * whose request is gone, or not due yet, is skipped. */
#include "requests.h"

#include <czmq.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "deadlines.h"
#include "envelope_io.h"
#include "id_map.h"
#include "log.h"
#include "protocol.h"

/* After its deadline the broker answers ERR timeout itself; the gateway
 * waits this much longer for that answer before it gives its own. */
#define DEADLINE_MARGIN_MS 1000

/* A send refused by a link that is up (its pipe not attached yet, or full)
 * is tried again this soon. */
#define FLUSH_RETRY_MS 10

typedef struct {
    uint64_t id;
    sb_request_owner_t owner;
    int64_t deadline_ms;          /* ERR timeout then; 0 for a publish */
    int64_t wait_ends_ms;         /* while held: ERR unavailable then */
    bool publish;                 /* answered OK once sent */
    bool retry;                   /* may be sent to a second broker */
    bool waited;                  /* was held: its broker deadline is what is left */
    int sends;
    uint8_t *payload;             /* the encoded envelope, while it may be sent */
    size_t size;
    void *held_handle;            /* in `held` while held, else NULL */
} entry_t;

struct sb_requests {
    sb_requests_settings_t settings;
    sb_broker_link_t *link;       /* NULL once detached */
    const sb_requests_events_t *events;
    void *arg;
    zhashx_t *table;              /* id -> entry_t: everything not answered yet */
    zlistx_t *held;               /* entry_t: waiting for the link, oldest first */
    sb_deadlines_t *deadlines;    /* deadlines and ends of waits, by id */
    uv_timer_t *timer;            /* heap: freed by its close callback */
    int64_t timer_due_ms;         /* when it fires; 0 while stopped */
    bool flush_again;             /* a flush stopped on a refused send */
    uint64_t next_id;
    sb_requests_counters_t counters;
};

static void on_timer(uv_timer_t *timer);

sb_requests_t *sb_requests_new(uv_loop_t *loop, sb_broker_link_t *link,
                               const sb_requests_settings_t *settings,
                               const sb_requests_events_t *events, void *arg)
{
    sb_requests_t *self = calloc(1, sizeof *self);
    self->settings = *settings;
    self->link = link;
    self->events = events;
    self->arg = arg;
    self->table = sb_id_map_new();
    self->held = zlistx_new();
    self->deadlines = sb_deadlines_new();
    self->next_id = 1;
    self->timer = calloc(1, sizeof *self->timer);
    uv_timer_init(loop, self->timer);
    self->timer->data = self;
    uv_unref((uv_handle_t *) self->timer);   /* deadlines never keep a stopping gateway alive */
    return self;
}

static void entry_free(entry_t *entry)
{
    free(entry->payload);
    free(entry);
}

static void free_handle(uv_handle_t *handle)
{
    free(handle);
}

void sb_requests_destroy(sb_requests_t **self_p)
{
    sb_requests_t *self = *self_p;
    if (!self)
        return;
    for (entry_t *entry = zhashx_first(self->table); entry; entry = zhashx_next(self->table))
        entry_free(entry);
    zhashx_destroy(&self->table);
    zlistx_destroy(&self->held);
    sb_deadlines_destroy(&self->deadlines);
    uv_timer_stop(self->timer);
    uv_close((uv_handle_t *) self->timer, free_handle);
    free(self);
    *self_p = NULL;
}

void sb_requests_detach(sb_requests_t *self)
{
    self->link = NULL;
}

/* ---------------------------------------------------------------- the timer */

static void arm(sb_requests_t *self)
{
    int64_t now = zclock_mono(), due = 0;
    sb_deadline_t next;
    if (sb_deadlines_peek(self->deadlines, &next))
        due = next.at_ms;
    if (self->flush_again && (!due || now + FLUSH_RETRY_MS < due))
        due = now + FLUSH_RETRY_MS;
    if (!due || (self->timer_due_ms && self->timer_due_ms <= due))
        return;   /* nothing to wait for, or the timer fires sooner anyway */
    self->timer_due_ms = due;
    uv_timer_start(self->timer, on_timer, (uint64_t) (due > now ? due - now : 0), 0);
}

static void add_deadline(sb_requests_t *self, int64_t at_ms, uint64_t id)
{
    if (!sb_deadlines_add(self->deadlines, at_ms, id))
        sb_log_error("out of memory for a request deadline", "id=%" PRIu64, id);
    arm(self);
}

/* Expired entries are skipped lazily; when they outnumber the live ones
 * the heap is rebuilt, so it follows the requests in flight. */
static void compact_deadlines(sb_requests_t *self)
{
    if (sb_deadlines_size(self->deadlines) < 2 * zhashx_size(self->table) + 1024)
        return;
    sb_deadlines_clear(self->deadlines);
    for (entry_t *entry = zhashx_first(self->table); entry; entry = zhashx_next(self->table)) {
        if (entry->deadline_ms)
            sb_deadlines_add(self->deadlines, entry->deadline_ms, entry->id);
        if (entry->held_handle)
            sb_deadlines_add(self->deadlines, entry->wait_ends_ms, entry->id);
    }
}

/* ---------------------------------------------------------------- answering */

/* Ends `entry` with an answer from the gateway itself. */
static void finish(sb_requests_t *self, entry_t *entry, const char *status, const char *text)
{
    if (entry->held_handle)
        zlistx_delete(self->held, entry->held_handle);
    zhashx_delete(self->table, sb_id_map_key(entry->id));
    sb_request_owner_t owner = entry->owner;
    entry_free(entry);
    self->events->answer(self->arg, &owner, status, text);
}

static void refuse(sb_requests_t *self, entry_t *entry, const char *text)
{
    self->counters.unavailable++;
    finish(self, entry, "ERR unavailable", text);
}

/* ---------------------------------------------------------------- sending */

/* The broker's deadline starts when it gets a request: one that waited
 * for it is given only the time it has left, so the broker still answers
 * (ERR timeout) before the gateway has to. */
static void give_time_left(entry_t *entry)
{
    const char *error = NULL;
    sb_envelope_t *env = sb_envelope_decode(entry->payload, entry->size, &error);
    if (!env)
        return;
    int64_t left = entry->deadline_ms - DEADLINE_MARGIN_MS - zclock_mono();
    env->timeout_ms = left < 1 ? 1 : (uint32_t) left;
    size_t size;
    uint8_t *payload = sb_envelope_encode(env, &size);
    sb_envelope_destroy(&env);
    if (!payload)
        return;
    free(entry->payload);
    entry->payload = payload;
    entry->size = size;
}

static bool transmit(sb_requests_t *self, entry_t *entry)
{
    if (entry->waited && !entry->publish)
        give_time_left(entry);
    if (!self->link || sb_broker_link_send_encoded(self->link, entry->payload, entry->size) < 0)
        return false;
    entry->sends++;
    if (entry->sends > 1)
        self->counters.resent++;
    if (!entry->publish && (!entry->retry || entry->sends > 1)) {
        free(entry->payload);   /* it will not be sent again */
        entry->payload = NULL;
    }
    return true;
}

/* Whether the broker may get something new now, behind what is held. */
static bool can_send_now(const sb_requests_t *self)
{
    return self->link && sb_broker_link_is_up(self->link) && zlistx_size(self->held) == 0;
}

/* Keeps `entry` for the broker, at the end of the line or (a resend) at
 * the front; false when it may not wait. */
static bool hold(sb_requests_t *self, entry_t *entry, bool in_front)
{
    if (self->settings.broker_wait_ms == 0 || !self->link
        || zlistx_size(self->held) >= self->settings.broker_wait_max
        || sb_broker_link_is_refused(self->link))
        return false;
    entry->wait_ends_ms = zclock_mono() + self->settings.broker_wait_ms;
    if (entry->deadline_ms && entry->wait_ends_ms > entry->deadline_ms)
        entry->wait_ends_ms = entry->deadline_ms;
    entry->held_handle = in_front ? zlistx_add_start(self->held, entry)
                                  : zlistx_add_end(self->held, entry);
    entry->waited = true;
    self->counters.held_total++;
    add_deadline(self, entry->wait_ends_ms, entry->id);
    return true;
}

static int64_t deadline_of(const sb_requests_t *self, const sb_envelope_t *env)
{
    long timeout = strcmp(env->service, SB_BROKER_SERVICE) == 0 ? self->settings.broker_answer_ms
                   : env->timeout_ms                              ? (long) env->timeout_ms
                                                                  : self->settings.request_timeout_ms;
    if (timeout > self->settings.max_timeout_ms)
        timeout = self->settings.max_timeout_ms;
    return zclock_mono() + timeout + DEADLINE_MARGIN_MS;
}

void sb_requests_submit(sb_requests_t *self, sb_envelope_t *env, const sb_request_owner_t *owner,
                        bool retry)
{
    entry_t *entry = calloc(1, sizeof *entry);
    entry->id = self->next_id++;
    entry->owner = *owner;
    entry->publish = env->type == SB_ENVELOPE_PUBLISH;
    entry->retry = retry && !entry->publish;
    if (!entry->publish) {
        env->id = entry->id;
        entry->deadline_ms = deadline_of(self, env);
    }
    entry->payload = sb_envelope_encode(env, &entry->size);
    if (!entry->payload) {
        self->events->answer(self->arg, owner, "ERR too-long",
                             "the request does not fit in an envelope to the broker");
        entry_free(entry);
        return;
    }
    bool sent = can_send_now(self) && transmit(self, entry);
    if (sent && entry->publish) {
        entry_free(entry);
        self->events->answer(self->arg, owner, "OK", "");
        return;
    }
    zhashx_insert(self->table, sb_id_map_key(entry->id), entry);
    if (entry->deadline_ms)
        add_deadline(self, entry->deadline_ms, entry->id);
    if (!sent && !hold(self, entry, false))
        refuse(self, entry, "the broker cannot be reached right now");
}

bool sb_requests_take(sb_requests_t *self, uint64_t id, sb_request_owner_t *owner)
{
    entry_t *entry = zhashx_lookup(self->table, sb_id_map_key(id));
    if (!entry || entry->publish) {
        self->counters.late_replies++;
        return false;
    }
    /* Held to be sent again, yet answered: the broker was hung, not gone. */
    if (entry->held_handle)
        zlistx_delete(self->held, entry->held_handle);
    zhashx_delete(self->table, sb_id_map_key(id));
    *owner = entry->owner;
    entry_free(entry);
    return true;
}

/* Sends what is held, oldest first, while the link takes it. */
static void flush(sb_requests_t *self)
{
    size_t sent = 0;
    self->flush_again = false;
    entry_t *entry;
    while (self->link && sb_broker_link_is_up(self->link) && (entry = zlistx_first(self->held))) {
        if (!transmit(self, entry)) {
            self->flush_again = true;
            arm(self);
            break;
        }
        zlistx_delete(self->held, entry->held_handle);
        entry->held_handle = NULL;
        sent++;
        if (entry->publish)
            finish(self, entry, "OK", "");
    }
    if (sent)
        sb_log_info("sent what was held for the broker", "requests=%zu held=%zu", sent,
                    zlistx_size(self->held));
}

void sb_requests_broker_up(sb_requests_t *self)
{
    flush(self);
}

static int by_id(const void *a, const void *b)
{
    uint64_t x = (*(entry_t *const *) a)->id, y = (*(entry_t *const *) b)->id;
    return x < y ? -1 : x > y;
}

void sb_requests_broker_lost(sb_requests_t *self)
{
    /* A snapshot, oldest first: answering may let clients ask again. */
    size_t count = 0;
    entry_t **sent = malloc((zhashx_size(self->table) + 1) * sizeof *sent);
    for (entry_t *entry = zhashx_first(self->table); entry; entry = zhashx_next(self->table))
        if (!entry->held_handle)
            sent[count++] = entry;
    qsort(sent, count, sizeof *sent, by_id);
    size_t kept = 0, lost = 0;
    /* Newest first to the front of the line, so the oldest goes first. */
    for (size_t i = count; i-- > 0;) {
        entry_t *entry = sent[i];
        if (entry->retry && entry->sends == 1 && hold(self, entry, true))
            kept++;
        else {
            lost++;
            refuse(self, entry, "the broker went away while handling this request");
        }
    }
    free(sent);
    if (lost)
        sb_log_warn("answered requests lost with the broker", "requests=%zu", lost);
    if (kept)
        sb_log_info("requests held to be sent again to the next broker", "requests=%zu", kept);
}

static void on_timer(uv_timer_t *timer)
{
    sb_requests_t *self = timer->data;
    self->timer_due_ms = 0;
    if (self->flush_again)
        flush(self);
    int64_t now = zclock_mono();
    size_t timed_out = 0, gave_up = 0;
    sb_deadline_t due;
    while (sb_deadlines_pop_expired(self->deadlines, now, &due)) {
        entry_t *entry = zhashx_lookup(self->table, sb_id_map_key(due.request_id));
        if (entry && entry->held_handle && entry->wait_ends_ms <= now) {
            gave_up++;
            refuse(self, entry, "the broker could not be reached in time");
        }
        else if (entry && entry->deadline_ms && entry->deadline_ms <= now) {
            timed_out++;
            self->counters.timeouts++;
            finish(self, entry, "ERR timeout", "no answer from the broker in time");
        }
    }
    if (gave_up)
        sb_log_warn("held requests waited too long for the broker", "requests=%zu", gave_up);
    if (timed_out)
        sb_log_warn("requests timed out at the gateway", "requests=%zu", timed_out);
    compact_deadlines(self);
    arm(self);
}

sb_requests_counters_t sb_requests_counters(const sb_requests_t *self)
{
    sb_requests_counters_t counters = self->counters;
    counters.in_flight = zhashx_size(self->table);
    counters.held = zlistx_size(self->held);
    return counters;
}
