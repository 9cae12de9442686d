/* history.c — recent points of numeric topics (see history.h): one ring of
 * points per topic, in a hash by topic. */
#include "history.h"

#include <ctype.h>
#include <czmq.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Longer is not a reading (and strtod need not look at it). */
#define NUMBER_MAX_LENGTH 64

typedef struct {
    size_t next;               /* where the next point goes */
    size_t count;              /* points held, at most settings.points */
    sb_history_point_t points[];
} series_t;

struct sb_history {
    sb_history_settings_t settings;
    zhashx_t *series;          /* topic -> series_t* */
    sb_history_counters_t counters;
};

static void series_free(void **item)
{
    free(*item);
    *item = NULL;
}

sb_history_t *sb_history_new(const sb_history_settings_t *settings)
{
    sb_history_t *self = calloc(1, sizeof *self);
    self->settings = *settings;
    self->series = zhashx_new();
    zhashx_set_destructor(self->series, series_free);
    return self;
}

void sb_history_destroy(sb_history_t **self_p)
{
    sb_history_t *self = *self_p;
    if (!self)
        return;
    zhashx_destroy(&self->series);
    free(self);
    *self_p = NULL;
}

bool sb_history_parse(const char *payload, double *value)
{
    size_t length = strnlen(payload, NUMBER_MAX_LENGTH + 1);
    if (length == 0 || length > NUMBER_MAX_LENGTH || isspace((unsigned char) payload[0]))
        return false;
    char *end = NULL;
    double number = strtod(payload, &end);
    if (end == payload || *end != '\0' || !isfinite(number))
        return false;
    *value = number;
    return true;
}

/* The topic's series, made when there is room for one more. */
static series_t *series_of(sb_history_t *self, const char *topic)
{
    series_t *series = zhashx_lookup(self->series, topic);
    if (series)
        return series;
    if (zhashx_size(self->series) >= self->settings.max_topics) {
        self->counters.refused++;
        return NULL;
    }
    series = calloc(1, sizeof *series + self->settings.points * sizeof series->points[0]);
    zhashx_insert(self->series, topic, series);
    return series;
}

bool sb_history_record(sb_history_t *self, const char *topic, const char *payload,
                       int64_t now_ms)
{
    double value;
    if (self->settings.points == 0 || !sb_history_parse(payload, &value))
        return false;
    series_t *series = series_of(self, topic);
    if (!series)
        return false;
    series->points[series->next] = (sb_history_point_t) { now_ms, value };
    series->next = (series->next + 1) % self->settings.points;
    if (series->count < self->settings.points)
        series->count++;
    self->counters.recorded++;
    return true;
}

size_t sb_history_get(const sb_history_t *self, const char *topic, sb_history_point_t *points,
                      size_t max)
{
    const series_t *series = zhashx_lookup(self->series, topic);
    if (!series)
        return 0;
    size_t count = series->count < max ? series->count : max;
    size_t size = self->settings.points;
    size_t first = (series->next + size - count) % size;
    for (size_t i = 0; i < count; i++)
        points[i] = series->points[(first + i) % size];
    return count;
}

size_t sb_history_points_per_topic(const sb_history_t *self)
{
    return self->settings.points;
}

sb_history_counters_t sb_history_counters(const sb_history_t *self)
{
    sb_history_counters_t counters = self->counters;
    counters.topics = zhashx_size(self->series);
    return counters;
}
