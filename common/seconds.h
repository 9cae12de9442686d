/* seconds.h — the one reading of a duration written in seconds: SECONDS
 * settings (flags, environment, config file), `[command] timeout`, the
 * `[device]` intervals and the worker's `sleep SECONDS`. Each caller keeps
 * its own range and its own error message; what a number of seconds looks
 * like is decided here only. */
#ifndef SB_SECONDS_H
#define SB_SECONDS_H

#include <stdbool.h>

/* Longest text read as seconds. */
#define SB_SECONDS_MAX_LENGTH 16

/* Plain decimal seconds: "2", "1.5", ".25", "3." — digits with at most one
 * decimal point and at least one digit, at most SB_SECONDS_MAX_LENGTH
 * characters. No sign, spaces, exponent, hex, "inf" or "nan": strtod alone
 * would take those. Its value in *seconds_out, or false. */
bool sb_seconds_parse(const char *text, double *seconds_out);

/* `seconds` (0 or more) in milliseconds, rounded to the nearest. */
long sb_seconds_to_ms(double seconds);

/* Seconds from `min` to `max` (a config key's range) in *ms_out, or false. */
bool sb_seconds_parse_ms(const char *text, double min, double max, long *ms_out);

#endif
