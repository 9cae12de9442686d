/* broker_commands.h — the broker's own commands (service `$broker`):
 * `stats broker`, `clients`, `client ID`, `tell ID TEXT`, and the
 * `retained`, `topics` and `history` queries a gateway makes for `sub`,
 * `topics` and `history`.
 * They are answered in the broker's loop, never queued: each reads what
 * the broker already holds (its directory, retained values, counters). */
#ifndef SB_BROKER_COMMANDS_H
#define SB_BROKER_COMMANDS_H

#include <czmq.h>

#include "directory.h"
#include "dispatch.h"
#include "envelope.h"
#include "history.h"
#include "retained.h"

/* The broker's counters outside the routing core (dispatch.h has those). */
typedef struct {
    uint64_t malformed, published, events_sent, messages, undeliverable;
} sb_broker_counters_t;

/* What the commands read and where they answer. */
typedef struct {
    sb_outbox_t *frontend;
    const sb_dispatch_t *dispatch;
    const sb_directory_t *directory;
    sb_retained_t *retained;
    const sb_history_t *history;
    sb_broker_counters_t *counters;
} sb_broker_state_t;

/* Answers `request` (for SB_BROKER_SERVICE) to `gateway`. */
void sb_broker_commands_run(const sb_broker_state_t *broker, zframe_t *gateway,
                            const sb_envelope_t *request);

#endif
