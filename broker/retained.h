/* retained.h — the broker's retained values: for each topic the last
 * payload published on it with `retain` (MQTT's retained message), given to
 * every new subscription before the live events.
 *
 * Lookups are served from memory. Changes are also written to SQLite, in
 * batches: they collect (a topic changed twice is written once) and go in
 * one transaction when the broker's loop calls sb_retained_flush, which it
 * does when sb_retained_flush_due says so (every flush_ms, or sooner when
 * flush_changes are pending). A flood of retained publishes therefore costs
 * one fsync per batch, not one per publish. Bounded in count and bytes: a
 * new topic beyond a bound is refused and counted; replacing or clearing a
 * topic already held is always possible within the byte bound.
 *
 * A value keeps its publisher's MQTT 5 properties (the envelope's `mqtt`,
 * opaque here) and, when the publisher set a Message Expiry Interval, ends
 * with it (MQTT 5.0 §3.3.2.3.3): an expired value is never given out and is
 * dropped, from memory and the file, by the next lookup or load. */
#ifndef SB_RETAINED_H
#define SB_RETAINED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    const char *path;          /* SQLite file; NULL: memory only (`off`) */
    size_t max_count;          /* topics held at once */
    size_t max_bytes;          /* topic, payload and property bytes of all values together */
    long flush_ms;             /* longest a change waits to be written */
    size_t flush_changes;      /* this many pending changes are written at once */
} sb_retained_settings_t;

typedef enum {
    SB_RETAINED_STORED,        /* set or replaced */
    SB_RETAINED_CLEARED,       /* an empty payload removed it (or there was none) */
    SB_RETAINED_REFUSED,       /* beyond --retained-max or --retained-max-bytes */
} sb_retained_result_t;

typedef struct {
    size_t count;              /* topics held */
    size_t bytes;              /* their topic, payload and property bytes */
    uint64_t refused;          /* values refused by the bounds */
    uint64_t expired;          /* values dropped because their Message Expiry passed */
    uint64_t writes;           /* changes written to the file */
    uint64_t batches;          /* transactions that wrote them */
    uint64_t write_errors;     /* batches that failed (kept, tried again) */
    size_t pending;            /* changes not written yet */
} sb_retained_counters_t;

typedef struct sb_retained sb_retained_t;

/* Opens (creating it) and loads the file; NULL with `error` filled when it
 * cannot be opened or read. */
sb_retained_t *sb_retained_new(const sb_retained_settings_t *settings, char *error,
                               size_t error_size);
/* Writes what is pending, then closes. */
void sb_retained_destroy(sb_retained_t **self_p);

typedef struct {
    const char *payload;
    int qos;
    const char *mqtt;          /* the publisher's MQTT 5 properties; NULL: none */
    uint32_t expiry_s;         /* put: the Message Expiry Interval (0: none);
                                * each: the seconds left of it, rounded up (0: none) */
} sb_retained_value_t;

/* Sets `topic` to `value` (an empty payload clears it), at `now_ms` (wall clock). */
sb_retained_result_t sb_retained_put(sb_retained_t *self, const char *topic,
                                     const sb_retained_value_t *value, int64_t now_ms);

/* Calls `fn` for each value whose topic matches `filter`, in topic order,
 * at `now_ms` (wall clock): expired values are dropped instead. */
typedef void (sb_retained_fn)(void *arg, const char *topic, const sb_retained_value_t *value);
size_t sb_retained_each(sb_retained_t *self, const char *filter, int64_t now_ms,
                        sb_retained_fn *fn, void *arg);

/* When the pending changes are due to be written (monotonic ms), or -1 when
 * none are pending. */
int64_t sb_retained_flush_due(const sb_retained_t *self);

/* Writes every pending change in one transaction; false when that failed
 * (the changes stay pending and are tried again a flush interval later). */
bool sb_retained_flush(sb_retained_t *self);

sb_retained_counters_t sb_retained_counters(const sb_retained_t *self);

#endif
