/* bridge_rules.h — how a bridge's topic rules (common/bridge_config.h) turn
 * a topic on one side into the topic on the other: a rule takes a topic
 * when PREFIX + PATTERN matches it on its side and its direction allows,
 * and the topic keeps what follows the prefix (Mosquitto's bridge rule).
 * The first rule that takes a topic wins, so a message goes once. No
 * sockets: unit tested. */
#ifndef SB_BRIDGE_RULES_H
#define SB_BRIDGE_RULES_H

#include <stdbool.h>
#include <stddef.h>

#include "bridge_config.h"

/* The filter a rule subscribes on the hub (`local`) or on the remote. */
void sb_bridge_rule_filter(const sb_bridge_rule_t *rule, bool local, char *out, size_t size);

/* A remote topic that came in: the rule that takes it and the local topic
 * in `out`, or NULL. */
const sb_bridge_rule_t *sb_bridge_rules_inbound(const sb_bridge_config_t *config,
                                                const char *remote, char *out, size_t size);

/* A local topic: the rule that sends it out and the remote topic, or NULL. */
const sb_bridge_rule_t *sb_bridge_rules_outbound(const sb_bridge_config_t *config,
                                                 const char *local, char *out, size_t size);

#endif
