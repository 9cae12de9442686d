/* echo_memory.h — what a bridge sent to an MQTT 3.1.1 broker on a `both`
 * rule, remembered for a short while. 3.1.1 has no No Local: the broker
 * sends the bridge's own publishes back on its subscription, and the
 * bridge recognises each by its topic and payload and drops it once.
 * A message someone else sends with the same topic and payload in that
 * window is indistinguishable and counts as the echo (one of the two
 * identical messages comes through). Entries go after `ttl_ms` or when
 * the memory is full (the oldest first). No sockets: unit tested. */
#ifndef SB_ECHO_MEMORY_H
#define SB_ECHO_MEMORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct sb_echo_memory sb_echo_memory_t;

sb_echo_memory_t *sb_echo_memory_new(size_t capacity, int64_t ttl_ms);
void sb_echo_memory_destroy(sb_echo_memory_t **self_p);

/* Remembers one message sent at `now_ms`. */
void sb_echo_memory_add(sb_echo_memory_t *self, const char *topic, const void *payload,
                        size_t length, int64_t now_ms);

/* True (and forgets it) when this message is one the bridge sent. */
bool sb_echo_memory_take(sb_echo_memory_t *self, const char *topic, const void *payload,
                         size_t length, int64_t now_ms);

#endif
