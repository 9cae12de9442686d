/* option_spec.c — the settings every program has, and the reading of a
 * setting's value from any source (see option_spec.h). */
#include "option_spec.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "seconds.h"

/* Settings every program has, ahead of its own. */
const sb_option_spec_t sb_common_specs[] = {
    { "config", SB_OPTION_TEXT, NULL, NULL, 0, 0, "FILE",
      "INI config file (see README, Configuration)" },
    { "log-level", SB_OPTION_TEXT, "log.level", "info", 0, 0, "LEVEL",
      "debug, info, warn or error" },
    { "curve-secret", SB_OPTION_TEXT, "curve.secret", NULL, 0, 0, "FILE",
      "this process's CURVE certificate (from `switchboard keygen`); links are plain without" },
    { "curve-server", SB_OPTION_TEXT, "curve.server", NULL, 0, 0, "FILE",
      "the broker's public CURVE certificate (workers and gateways)" },
    { "curve-allow", SB_OPTION_TEXT, "curve.allow", NULL, 0, 0, "DIR",
      "public certificates of the peers the broker admits (the broker)" },
};
#define COMMON_COUNT (sizeof sb_common_specs / sizeof sb_common_specs[0])
const size_t sb_common_spec_count = COMMON_COUNT;

/* Seconds into milliseconds; the bound keeps the product within a long. */
static bool parse_seconds(const char *text, long *ms_out)
{
    double seconds;
    if (!sb_seconds_parse(text, &seconds) || seconds > 1e9)
        return false;
    *ms_out = sb_seconds_to_ms(seconds);
    return true;
}

/* Checks `text` against the spec and stores it; false with `reason` filled when it does not fit. */
bool sb_option_parse(const sb_option_spec_t *spec, const char *text, long *number_out,
                     char *reason, size_t reason_size)
{
    long number = 0;
    if (*text == '\0') {
        snprintf(reason, reason_size, "must not be empty");
        return false;
    }
    if (spec->kind == SB_OPTION_INT) {
        char *end;
        errno = 0;
        number = strtol(text, &end, 10);
        if (errno || end == text || *end || number < spec->min || number > spec->max) {
            snprintf(reason, reason_size, "must be a whole number from %ld to %ld, not '%s'",
                     spec->min, spec->max, text);
            return false;
        }
    }
    if (spec->kind == SB_OPTION_SECONDS
        && (!parse_seconds(text, &number) || number < spec->min || number > spec->max)) {
        snprintf(reason, reason_size, "must be seconds from %g to %g, not '%s'",
                 spec->min / 1000.0, spec->max / 1000.0, text);
        return false;
    }
    *number_out = number;
    return true;
}
