/* utf8.h — UTF-8 validation for WebSocket text (RFC 6455 §8.1: a text
 * message or close reason that is not valid UTF-8 fails the connection)
 * and for pub/sub topics, which the gateways and the broker both check. */
#ifndef SB_UTF8_H
#define SB_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* True when `data` is well-formed UTF-8 (RFC 3629: no overlong forms, no
 * surrogates, nothing above U+10FFFF). */
bool sb_utf8_is_valid(const char *data, size_t length);

/* A copy of `text` (NUL-terminated) with every malformed sequence replaced
 * by U+FFFD, for text that must go out as valid UTF-8. */
char *sb_utf8_repair(const char *text);

#endif
