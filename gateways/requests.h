/* requests.h — a gateway's requests to the broker, from the moment a
 * client asks until it has its answer, whatever happens to the broker.
 *
 * Every request gets a gateway deadline (its command's timeout, else the
 * gateway's --request-timeout, capped by --max-timeout, plus a margin) and
 * is answered ERR timeout then at the latest; a reply that comes later is
 * dropped and counted. While the broker link is not up, requests and
 * publishes are held (at most --broker-wait-max, each at most --broker-wait
 * and never past its deadline) and sent in arrival order when it comes up;
 * only then is the answer ERR unavailable. When the broker goes away, a
 * request in flight that is safe to run twice is held and sent once more to
 * the next broker; the others are answered ERR unavailable at once.
 *
 * One libuv timer serves every deadline (a min-heap, common/deadlines.h):
 * no timer handle per request. */
#ifndef SB_REQUESTS_H
#define SB_REQUESTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "broker_link.h"
#include "envelope.h"

/* Who is waiting for an answer; the router's own words, kept as given. */
typedef struct {
    uint64_t serial;          /* the client that asked */
    void *slot;               /* where its reply goes */
    int style;                /* how the router writes the reply */
    int64_t started_us;       /* when it asked */
} sb_request_owner_t;

typedef struct {
    long broker_wait_ms;      /* longest hold while the broker is away; 0: none */
    size_t broker_wait_max;   /* requests held at once */
    long request_timeout_ms;  /* deadline of a request whose command sets none */
    long max_timeout_ms;      /* longest deadline */
    long broker_answer_ms;    /* deadline of what the broker answers itself (stats broker, ...) */
} sb_requests_settings_t;

typedef struct {
    /* The gateway answers `owner` itself: status "OK" (a publish was sent)
     * or "ERR timeout" / "ERR unavailable", with a message. */
    void (*answer)(void *arg, const sb_request_owner_t *owner, const char *status,
                   const char *text);
} sb_requests_events_t;

typedef struct {
    uint64_t timeouts;        /* answered ERR timeout by the gateway */
    uint64_t late_replies;    /* replies for requests no longer waiting (dropped) */
    uint64_t held_total;      /* requests and publishes held for the broker */
    uint64_t resent;          /* sent again to a new broker after the old one went */
    uint64_t unavailable;     /* answered ERR unavailable */
    size_t in_flight;         /* waiting for a reply, held or sent */
    size_t held;              /* waiting for the broker link */
} sb_requests_counters_t;

typedef struct sb_requests sb_requests_t;

sb_requests_t *sb_requests_new(uv_loop_t *loop, sb_broker_link_t *link,
                               const sb_requests_settings_t *settings,
                               const sb_requests_events_t *events, void *arg);
/* Forgets every request without answering (the clients are gone). */
void sb_requests_destroy(sb_requests_t **self_p);

/* The link is about to close: nothing more is sent. */
void sb_requests_detach(sb_requests_t *self);

/* Sends a REQUEST or PUBLISH (its id is set here), or holds it for the
 * broker, or answers ERR unavailable. A publish is answered OK once sent;
 * a request waits for sb_requests_take. `retry`: safe to send again. */
void sb_requests_submit(sb_requests_t *self, sb_envelope_t *env, const sb_request_owner_t *owner,
                        bool retry);

/* The owner of request `id`, which a reply answers (it leaves the table);
 * false for a reply nobody waits for any more (counted). */
bool sb_requests_take(sb_requests_t *self, uint64_t id, sb_request_owner_t *owner);

/* The broker went away: retry-safe requests sent once are held again. */
void sb_requests_broker_lost(sb_requests_t *self);

/* The broker link is up (after the presence resync): held ones go now. */
void sb_requests_broker_up(sb_requests_t *self);

sb_requests_counters_t sb_requests_counters(const sb_requests_t *self);

#endif
