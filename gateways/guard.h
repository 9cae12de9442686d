/* guard.h — the router's door: who each client is (an identity of the
 * access rules, anonymous until `auth` succeeds) and the answer to a
 * failed `auth`, which waits as long as auth_delay.h says. The wait is a
 * libuv timer, never a blocked loop; while it runs, the client's later
 * requests are held here, in order, and run after the answer. */
#ifndef SB_GUARD_H
#define SB_GUARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "access.h"
#include "config.h"

typedef struct sb_reply_slot sb_reply_slot_t;

typedef struct {
    /* Answers a request of client `serial` (it may have gone: look it up). */
    void (*answer)(void *arg, uint64_t serial, sb_reply_slot_t *slot, const char *status,
                   const char *text);
    /* Runs a request that was held behind a delayed answer. */
    void (*run)(void *arg, uint64_t serial, sb_reply_slot_t *slot, size_t argc, char **argv);
} sb_guard_events_t;

typedef struct sb_guard sb_guard_t;

sb_guard_t *sb_guard_new(uv_loop_t *loop, const sb_config_t *config,
                         const sb_guard_events_t *events, void *arg);
/* Closes its timers: run the loop once more to free them. */
void sb_guard_destroy(sb_guard_t **self_p);

const sb_access_t *sb_guard_access(const sb_guard_t *self);

void sb_guard_join(sb_guard_t *self, uint64_t serial, const char *address);
void sb_guard_leave(sb_guard_t *self, uint64_t serial);

/* The client has proved itself some other way (a Bearer header). */
void sb_guard_set_identity(sb_guard_t *self, uint64_t serial, const sb_identity_t *identity);

/* The client's identity; NULL when `serial` is no joined client (a request
 * the gateway makes itself, such as the broker figures for /metrics). */
const sb_identity_t *sb_guard_identity(const sb_guard_t *self, uint64_t serial);

/* Whether the client waits for a delayed answer; then the request is kept
 * (its words copied) and run after that answer. True also once the client
 * has quit: the request is dropped unanswered. */
bool sb_guard_holds(sb_guard_t *self, uint64_t serial, sb_reply_slot_t *slot, size_t argc,
                    char **argv);

/* `auth NAME SECRET`: OK and the token's identity, or ERR unauthorized
 * (the same for an unknown name and a wrong secret), perhaps delayed.
 * While the client's address is in a delay (another connection's failure)
 * the attempt is not tried before the delay is over: it waits like a
 * delayed answer, the client's later requests held behind it. */
void sb_guard_auth(sb_guard_t *self, uint64_t serial, sb_reply_slot_t *slot, const char *name,
                   const char *secret);

/* The client said `quit`: what it asked after that and is still held
 * behind a delayed answer never runs, nor does anything it asks later. */
void sb_guard_quit(sb_guard_t *self, uint64_t serial);

/* Failed `auth` and Bearer attempts so far. */
uint64_t sb_guard_failures(const sb_guard_t *self);

/* Credentials given outside `auth` ("NAME:SECRET" of a Bearer header) by a
 * client at `address` (HOST:PORT), answered at once: the identity, or NULL
 * when they are wrong (counted and added to the address's delay) or, with
 * *waiting set, not tried because the address is still in a delay (an
 * upgrade cannot wait: the gateway answers 429). A success leaves the
 * address's count of failures as it is. */
const sb_identity_t *sb_guard_authenticate_now(sb_guard_t *self, const char *address,
                                               const char *pair, bool *waiting);

#endif
