/* device_link.h — the hub's link to one device (§3.3): a TCP connection it
 * dials, a serial port it opens, or a connection the device dialed in on.
 *
 * The link speaks lines. `call` writes a line and is answered with the
 * device's next line, first in first out, each within its timeout; `send`
 * only writes. Nothing is ever queued while the device is away: both are
 * refused at once (not-connected), and calls pending when the link breaks
 * are answered not-connected at once. A dialed or serial link that fails
 * is retried with exponential backoff and jitter, reset once the link has
 * stayed up for `healthy_after`. */
#ifndef SB_DEVICE_LINK_H
#define SB_DEVICE_LINK_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "config.h"

typedef struct sb_device_link sb_device_link_t;

typedef struct {
    /* The link's state changed: "connected", "disconnected", "connecting", "backoff:1.9s"
     * (waiting, a dial-in device's state between links, is not told). */
    void (*on_state)(void *owner, sb_device_link_t *link, const char *state);
    /* A line that answers no call (or answers one that already timed out). */
    void (*on_line)(void *owner, sb_device_link_t *link, const char *line);
    /* A line that answers a call (not a keepalive), before the call's reply; may be NULL. */
    void (*on_answer)(void *owner, sb_device_link_t *link, const char *line);
} sb_device_link_events_t;

/* How a call or send ended: ok with the device's line ("sent" for a send),
 * or an error code and message. */
typedef void (sb_device_reply_fn)(void *arg, bool ok, const char *code, const char *text);

/* `config` must outlive the link. */
sb_device_link_t *sb_device_link_new(uv_loop_t *loop, const sb_device_config_t *config,
                                     size_t max_line, const sb_device_link_events_t *events,
                                     void *owner);
void sb_device_link_destroy(sb_device_link_t **self_p);

const char *sb_device_link_name(const sb_device_link_t *self);

/* Starts dialing or opening (a dial-in device waits for its connection). */
void sb_device_link_start(sb_device_link_t *self);

/* A dial-in device said HELLO on `stream` (the link takes it over, and
 * `pending` bytes it sent after its HELLO line). */
void sb_device_link_attach(sb_device_link_t *self, uv_stream_t *stream, const char *pending,
                           size_t length);

/* Writes `line`; `reply` is called once, perhaps at once. */
void sb_device_link_call(sb_device_link_t *self, const char *line, sb_device_reply_fn *reply,
                         void *arg);
void sb_device_link_send(sb_device_link_t *self, const char *line, sb_device_reply_fn *reply,
                         void *arg);

/* "connected", "connecting", "backoff:3.2s" or "waiting". */
void sb_device_link_state(const sb_device_link_t *self, char *buffer, size_t size);

/* `device NAME`: "name=... state=... kind=... address=... since=... last_seen=... attempts=N pending=N". */
void sb_device_link_describe(const sb_device_link_t *self, char *buffer, size_t size);

/* Closes the link (a stop): pending calls are answered not-connected. */
void sb_device_link_stop(sb_device_link_t *self);

#endif
