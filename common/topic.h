/* topic.h — MQTT-style topics and filters for pub/sub (§4).
 *
 * A topic is levels separated by '/', such as "home/kitchen/temp". A filter
 * may use '+' for exactly one level and '#', as its last level, for any
 * number of levels (none included): "home/+/temp", "home/#". Topics that
 * start with '$' (system events, "$sys/clients/...") are matched only by
 * filters that name that first level: "#" and "+/..." do not see them. */
#ifndef SB_TOPIC_H
#define SB_TOPIC_H

#include <stdbool.h>

#define SB_TOPIC_MAX 256

/* A topic to publish on: 1..SB_TOPIC_MAX bytes of valid UTF-8, no wildcards,
 * no control bytes (C0, TAB included, and DEL); spaces are allowed. */
bool sb_topic_is_valid(const char *topic);

/* A filter to subscribe with: like a topic, but '+' and '#' may stand as
 * whole levels ('#' only last). */
bool sb_topic_filter_is_valid(const char *filter);

bool sb_topic_matches(const char *filter, const char *topic);

/* Whether some topic matches both filters (`sub #` and `home/#` share
 * home/...; `home/#` and `work/#` share nothing). */
bool sb_topic_filters_overlap(const char *a, const char *b);

#endif
