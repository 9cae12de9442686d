/* bridge_rules.c — topics across a bridge (see bridge_rules.h). */
#include "bridge_rules.h"

#include <stdio.h>
#include <string.h>

#include "topic.h"

void sb_bridge_rule_filter(const sb_bridge_rule_t *rule, bool local, char *out, size_t size)
{
    snprintf(out, size, "%s%s", local ? rule->local_prefix : rule->remote_prefix, rule->pattern);
}

/* `topic` under `from` + pattern becomes `to` + the rest; false when the
 * rule does not take it (its filter does not match, or the topic is the
 * prefix's own level, which a "#" pattern matches too). */
static bool translate(const sb_bridge_rule_t *rule, bool from_local, const char *topic,
                      char *out, size_t size)
{
    const char *from = from_local ? rule->local_prefix : rule->remote_prefix;
    const char *to = from_local ? rule->remote_prefix : rule->local_prefix;
    char filter[1024];
    sb_bridge_rule_filter(rule, from_local, filter, sizeof filter);
    size_t length = strlen(from);
    if (strncmp(topic, from, length) != 0 || !sb_topic_matches(filter, topic))
        return false;
    int written = snprintf(out, size, "%s%s", to, topic + length);
    return written > 0 && (size_t) written < size && sb_topic_is_valid(out);
}

static const sb_bridge_rule_t *first_rule(const sb_bridge_config_t *config, bool from_local,
                                          const char *topic, char *out, size_t size)
{
    sb_bridge_direction_t wanted = from_local ? SB_BRIDGE_OUT : SB_BRIDGE_IN;
    for (size_t i = 0; i < config->rule_count; i++) {
        const sb_bridge_rule_t *rule = &config->rules[i];
        if ((rule->direction & wanted) && translate(rule, from_local, topic, out, size))
            return rule;
    }
    return NULL;
}

const sb_bridge_rule_t *sb_bridge_rules_inbound(const sb_bridge_config_t *config,
                                                const char *remote, char *out, size_t size)
{
    return first_rule(config, false, remote, out, size);
}

const sb_bridge_rule_t *sb_bridge_rules_outbound(const sb_bridge_config_t *config,
                                                 const char *local, char *out, size_t size)
{
    return first_rule(config, true, local, out, size);
}
