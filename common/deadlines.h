/* deadlines.h — when each request must be answered by (the broker's and
 * every gateway's).
 * A min-heap of (deadline, request id). Answered requests are not removed:
 * its owner skips an expired entry whose request is gone, which keeps
 * every operation O(log n) without back-pointers into the heap. */
#ifndef SB_DEADLINES_H
#define SB_DEADLINES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    int64_t at_ms;
    uint64_t request_id;
} sb_deadline_t;

typedef struct sb_deadlines sb_deadlines_t;

sb_deadlines_t *sb_deadlines_new(void);
void sb_deadlines_destroy(sb_deadlines_t **self_p);
bool sb_deadlines_add(sb_deadlines_t *self, int64_t at_ms, uint64_t request_id);

/* The earliest deadline, without removing it; false when there is none. */
bool sb_deadlines_peek(const sb_deadlines_t *self, sb_deadline_t *out);

/* Removes and returns the earliest deadline if it is at or before `now_ms`. */
bool sb_deadlines_pop_expired(sb_deadlines_t *self, int64_t now_ms, sb_deadline_t *out);

size_t sb_deadlines_size(const sb_deadlines_t *self);

/* Forgets every deadline (before re-adding the live ones). */
void sb_deadlines_clear(sb_deadlines_t *self);

#endif
