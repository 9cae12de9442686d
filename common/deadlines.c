/* deadlines.c — binary min-heap of request deadlines (see deadlines.h). */
#include "deadlines.h"

#include <stdlib.h>

struct sb_deadlines {
    sb_deadline_t *heap;
    size_t size;
    size_t capacity;
};

sb_deadlines_t *sb_deadlines_new(void)
{
    return calloc(1, sizeof(sb_deadlines_t));
}

void sb_deadlines_destroy(sb_deadlines_t **self_p)
{
    if (!*self_p)
        return;
    free((*self_p)->heap);
    free(*self_p);
    *self_p = NULL;
}

static void swap(sb_deadline_t *a, sb_deadline_t *b)
{
    sb_deadline_t kept = *a;
    *a = *b;
    *b = kept;
}

bool sb_deadlines_add(sb_deadlines_t *self, int64_t at_ms, uint64_t request_id)
{
    if (self->size == self->capacity) {
        size_t capacity = self->capacity ? self->capacity * 2 : 256;
        sb_deadline_t *grown = realloc(self->heap, capacity * sizeof *grown);
        if (!grown)
            return false;
        self->heap = grown;
        self->capacity = capacity;
    }
    size_t at = self->size++;
    self->heap[at] = (sb_deadline_t) { at_ms, request_id };
    while (at > 0 && self->heap[(at - 1) / 2].at_ms > self->heap[at].at_ms) {
        swap(&self->heap[(at - 1) / 2], &self->heap[at]);
        at = (at - 1) / 2;
    }
    return true;
}

bool sb_deadlines_peek(const sb_deadlines_t *self, sb_deadline_t *out)
{
    if (self->size == 0)
        return false;
    *out = self->heap[0];
    return true;
}

static void sift_down(sb_deadlines_t *self, size_t at)
{
    for (;;) {
        size_t smallest = at, left = 2 * at + 1, right = left + 1;
        if (left < self->size && self->heap[left].at_ms < self->heap[smallest].at_ms)
            smallest = left;
        if (right < self->size && self->heap[right].at_ms < self->heap[smallest].at_ms)
            smallest = right;
        if (smallest == at)
            return;
        swap(&self->heap[at], &self->heap[smallest]);
        at = smallest;
    }
}

bool sb_deadlines_pop_expired(sb_deadlines_t *self, int64_t now_ms, sb_deadline_t *out)
{
    if (self->size == 0 || self->heap[0].at_ms > now_ms)
        return false;
    *out = self->heap[0];
    self->heap[0] = self->heap[--self->size];
    sift_down(self, 0);
    return true;
}

size_t sb_deadlines_size(const sb_deadlines_t *self)
{
    return self->size;
}

void sb_deadlines_clear(sb_deadlines_t *self)
{
    self->size = 0;
}
