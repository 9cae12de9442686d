/* echo_memory.c — a ring of message hashes with their times (see echo_memory.h). */
#include "echo_memory.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    uint64_t hash;
    int64_t at_ms;
    bool used;
} entry_t;

struct sb_echo_memory {
    entry_t *entries;
    size_t capacity;
    size_t next;          /* the slot written next: the oldest */
    int64_t ttl_ms;
};

/* FNV-1a over the topic, a NUL, and the payload. */
static uint64_t message_hash(const char *topic, const void *payload, size_t length)
{
    uint64_t hash = 1469598103934665603ULL;
    const unsigned char *bytes = (const unsigned char *) topic;
    size_t topic_length = strlen(topic) + 1;
    for (size_t i = 0; i < topic_length; i++)
        hash = (hash ^ bytes[i]) * 1099511628211ULL;
    bytes = payload;
    for (size_t i = 0; i < length; i++)
        hash = (hash ^ bytes[i]) * 1099511628211ULL;
    return hash;
}

sb_echo_memory_t *sb_echo_memory_new(size_t capacity, int64_t ttl_ms)
{
    sb_echo_memory_t *self = calloc(1, sizeof *self);
    self->capacity = capacity ? capacity : 1;
    self->entries = calloc(self->capacity, sizeof *self->entries);
    self->ttl_ms = ttl_ms;
    return self;
}

void sb_echo_memory_destroy(sb_echo_memory_t **self_p)
{
    if (!*self_p)
        return;
    free((*self_p)->entries);
    free(*self_p);
    *self_p = NULL;
}

void sb_echo_memory_add(sb_echo_memory_t *self, const char *topic, const void *payload,
                        size_t length, int64_t now_ms)
{
    self->entries[self->next] = (entry_t) { message_hash(topic, payload, length), now_ms, true };
    self->next = (self->next + 1) % self->capacity;
}

bool sb_echo_memory_take(sb_echo_memory_t *self, const char *topic, const void *payload,
                         size_t length, int64_t now_ms)
{
    uint64_t hash = message_hash(topic, payload, length);
    /* The oldest match first: echoes come back in the order they were sent. */
    for (size_t i = 0; i < self->capacity; i++) {
        entry_t *entry = &self->entries[(self->next + i) % self->capacity];
        if (!entry->used)
            continue;
        if (now_ms - entry->at_ms > self->ttl_ms) {
            entry->used = false;
            continue;
        }
        if (entry->hash == hash) {
            entry->used = false;
            return true;
        }
    }
    return false;
}
