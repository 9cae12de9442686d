/* backoff_settings.c — a link's backoff keys in a config section (see backoff_settings.h). */
#include "backoff_settings.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "seconds.h"

static bool parse_number(const char *text, double min, double max, double *out)
{
    char *end;
    double value = strtod(text, &end);
    if (end == text || *end || !(value >= min && value <= max))
        return false;
    *out = value;
    return true;
}

sb_backoff_key_t sb_backoff_settings_set(sb_backoff_settings_t *self, const char *key,
                                         const char *value, char *reason, size_t size)
{
    bool initial = strcmp(key, "backoff_initial") == 0, most = strcmp(key, "backoff_max") == 0;
    if (initial || most) {
        double max = initial ? 3600 : 86400;
        if (sb_seconds_parse_ms(value, 0.01, max, initial ? &self->initial_ms : &self->max_ms))
            return SB_BACKOFF_KEY_SET;
        snprintf(reason, size, "%s must be seconds from 0.01 to %g, not '%s'", key, max, value);
        return SB_BACKOFF_KEY_BAD;
    }
    bool factor = strcmp(key, "backoff_factor") == 0, jitter = strcmp(key, "backoff_jitter") == 0;
    if (factor || jitter) {
        int min = factor ? 1 : 0, max = factor ? 10 : 1;
        if (parse_number(value, min, max, factor ? &self->factor : &self->jitter))
            return SB_BACKOFF_KEY_SET;
        snprintf(reason, size, "%s must be from %d to %d, not '%s'", key, min, max, value);
        return SB_BACKOFF_KEY_BAD;
    }
    return SB_BACKOFF_KEY_OTHER;
}

bool sb_backoff_settings_are_inverted(const sb_backoff_settings_t *self)
{
    return self->max_ms < self->initial_ms;
}

void sb_backoff_init_from(sb_backoff_t *backoff, const sb_backoff_settings_t *settings,
                          uint64_t seed)
{
    sb_backoff_init(backoff, settings->initial_ms, settings->factor, settings->max_ms,
                    settings->jitter, seed);
}
