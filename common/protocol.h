/* protocol.h — names the line protocol (§3.1, docs/protocol.md) shares
 * between processes: the commands the stock worker pool serves, so a
 * gateway can list them in `help` without asking a worker. */
#ifndef SB_PROTOCOL_H
#define SB_PROTOCOL_H

#define SB_WORKER_COMMANDS "echo hello sleep time"

/* Commands that may run twice without harm: when the worker running one
 * dies, the broker gives it to another (unless `[command] retry` says no). */
#define SB_RETRY_SAFE_COMMANDS "echo hello time"

/* The service name the broker answers itself (`stats broker`). */
#define SB_BROKER_SERVICE "$broker"

/* How many times a retry-safe request is given to another worker. */
#define SB_MAX_RETRIES 2

#endif
