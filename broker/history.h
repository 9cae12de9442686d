/* history.h — the broker's recent history of numeric topics: for each topic
 * whose payloads are numbers, the last `points` values with the wall-clock
 * time they were published, so a dashboard's chart is full the moment it
 * opens (`history TOPIC [N]`).
 *
 * Memory only (a restart starts empty: the points are minutes of readings,
 * not records). Bounded: at most `max_topics` topics of `points` points each,
 * 16 bytes a point; a new topic beyond the bound is refused and counted. A
 * payload that is not one finite number (as strtod reads it, nothing after
 * it) is not a point; a topic keeps its points when one is not. */
#ifndef SB_HISTORY_H
#define SB_HISTORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    size_t points;             /* kept per topic; 0: no history at all */
    size_t max_topics;         /* topics with a history at once */
} sb_history_settings_t;

typedef struct {
    int64_t time_ms;           /* wall clock, when the broker got it */
    double value;
} sb_history_point_t;

typedef struct {
    size_t topics;             /* topics with a history */
    uint64_t recorded;         /* points recorded */
    uint64_t refused;          /* points of new topics beyond max_topics */
} sb_history_counters_t;

typedef struct sb_history sb_history_t;

sb_history_t *sb_history_new(const sb_history_settings_t *settings);
void sb_history_destroy(sb_history_t **self_p);

/* Whether `payload` is a number the history keeps (into `value`). */
bool sb_history_parse(const char *payload, double *value);

/* Records `payload` on `topic` at `now_ms` when it is a number; false when
 * it is not, or the topic is new and beyond the bound. */
bool sb_history_record(sb_history_t *self, const char *topic, const char *payload,
                       int64_t now_ms);

/* The last `max` points of `topic` (fewer when it has fewer), oldest first,
 * into `points`; returns how many. */
size_t sb_history_get(const sb_history_t *self, const char *topic, sb_history_point_t *points,
                      size_t max);

/* The points kept per topic (settings.points): the most sb_history_get gives. */
size_t sb_history_points_per_topic(const sb_history_t *self);

sb_history_counters_t sb_history_counters(const sb_history_t *self);

#endif
