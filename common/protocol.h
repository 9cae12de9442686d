/* protocol.h — names the line protocol (§3.1, docs/protocol.md) shares
 * between processes: the commands the stock worker pool serves, so a
 * gateway can list them in `help` without asking a worker. */
#ifndef SB_PROTOCOL_H
#define SB_PROTOCOL_H

#define SB_WORKER_COMMANDS "echo hello sleep time"

#endif
