/* curve.h — CURVE encryption and authentication for links between hosts.
 *
 * Each process holds a certificate (a key pair, made by `switchboard
 * keygen`). The broker is the CURVE server on both of its ROUTERs and
 * admits only peers whose public certificates lie in an allowed directory
 * (czmq's zauth); workers and gateways are CURVE clients that know the
 * broker's public certificate. It is configured once per process, from
 * the [curve] settings, and every socket made by sb_socket_new applies it:
 * bound ROUTERs as servers, connecting DEALERs as clients. Without a
 * secret the links are plain, as on one host (ipc://). */
#ifndef SB_CURVE_H
#define SB_CURVE_H

#include <czmq.h>
#include <stdbool.h>

#include "options.h"

/* Reads --curve-secret, --curve-server and --curve-allow; false (after
 * logging why) when a file cannot be read or the settings do not fit the
 * role: a `server` program (the broker) needs an allow directory, a client
 * the broker's public certificate. */
bool sb_curve_setup(const sb_options_t *options, bool server);

/* Applies this process's CURVE role to a new socket (before bind or connect). */
void sb_curve_apply(zsock_t *socket, bool server);

/* A monitor of `socket`'s failed handshakes (a peer with an unknown key,
 * or without CURVE), for sb_curve_log_refusals; NULL when CURVE is off. */
zsock_t *sb_curve_watch_refusals(zsock_t *socket);
/* Logs each refusal the monitor has seen on the socket called `name`. */
void sb_curve_log_refusals(zsock_t *monitor, const char *name);

/* Writes a new key pair: PATH (public) and PATH_secret; 0 on success. */
int sb_curve_keygen(const char *path);

/* Stops the authenticator and forgets the certificates. */
void sb_curve_shutdown(void);

#endif
