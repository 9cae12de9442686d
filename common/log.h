/* log.h — one logfmt line per event on stderr, with a level.
 *
 *   ts=2026-11-22T13:56:05.123Z level=info proc=sb-broker msg="provider ready" service=default
 *
 * The key=value part is printf-formatted by the caller; values that come
 * from outside (names, client text) go through sb_log_quote so a space or
 * quote in them cannot forge another field. */
#ifndef SB_LOG_H
#define SB_LOG_H

#include <stdbool.h>

typedef enum { SB_LOG_DEBUG, SB_LOG_INFO, SB_LOG_WARN, SB_LOG_ERROR } sb_log_level_t;

#define SB_LOG_QUOTE_MAX 256

/* Sets the process name shown as proc=... and the lowest level printed. */
void sb_log_init(const char *process_name, sb_log_level_t level);

/* Parses "debug", "info", "warn" or "error"; false if it is none of them. */
bool sb_log_level_parse(const char *text, sb_log_level_t *level_out);

bool sb_log_enabled(sb_log_level_t level);

/* Logs `msg` (quoted) followed by the printf-formatted `fields`, which may be NULL. */
void sb_log(sb_log_level_t level, const char *msg, const char *fields, ...)
    __attribute__((format(printf, 3, 4)));

#define sb_log_debug(...) sb_log(SB_LOG_DEBUG, __VA_ARGS__)
#define sb_log_info(...)  sb_log(SB_LOG_INFO, __VA_ARGS__)
#define sb_log_warn(...)  sb_log(SB_LOG_WARN, __VA_ARGS__)
#define sb_log_error(...) sb_log(SB_LOG_ERROR, __VA_ARGS__)

/* Writes `text` into buf as one logfmt value: bare when it is a plain token,
 * otherwise double-quoted with escapes, cut to fit. Returns buf. */
const char *sb_log_quote(char buf[SB_LOG_QUOTE_MAX], const char *text);

#endif
