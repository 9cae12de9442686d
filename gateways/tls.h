/* tls.h — TLS for a gateway's listener, on OpenSSL 3 with memory BIOs:
 * no sockets here, only bytes, so any connection code (libuv or a test)
 * drives it and stays protocol-agnostic.
 *
 * A context is one listener's certificate and key, with TLS 1.2 as the
 * lowest version, OpenSSL's default ciphers, and no compression or
 * renegotiation. sb_tls_context_reload rereads both files (on SIGHUP): new
 * sessions use the new ones, sessions already open keep theirs, and files
 * that do not load are logged and the old ones kept.
 *
 * A session is one connection's TLS state. The connection code
 *   1. hands every byte read from the socket to sb_tls_session_feed,
 *   2. takes the plaintext out with sb_tls_session_read (until it returns 0),
 *   3. gives plaintext to send to sb_tls_session_write (once ready), and
 *   4. sends what sb_tls_session_take_output gives it, after each of the
 *      above (the handshake answers the peer from within feed).
 * A session that fails (a bad or refused handshake, garbage, a broken
 * record) or times out logs why, counts in its context, and stays failed:
 * close the connection after sending its output (an alert, if any). A
 * session must not outlive its context.
 *
 *     sb_tls_session_t *tls = sb_tls_session_new(context, "192.0.2.7:51000");
 *     ...  // for each read from the socket:
 *     sb_tls_session_feed(tls, bytes, count);
 *     size_t n;
 *     while ((n = sb_tls_session_read(tls, text, sizeof text)) > 0)
 *         handle(text, n);                     // the protocol, unchanged
 *     sb_tls_session_write(tls, reply, length);   // false until READY
 *     char *out = sb_tls_session_take_output(tls, &length);   // heap, or NULL
 *     send(out, length), free(out);
 *     switch (sb_tls_session_state(tls)) {
 *     case SB_TLS_FAILED: close the connection; break;
 *     case SB_TLS_CLOSED: the peer has finished, as at EOF; break;
 *     default: break;                          // HANDSHAKE: wait for bytes
 *     }
 *
 * In the gateways, client_output.c encrypts a client's output through its
 * session (sb_client_output_t.tls) and sends the session's own bytes, so a
 * connection calls feed and read, and flushes its output as usual.
 */
#ifndef SB_TLS_H
#define SB_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct sb_tls_context sb_tls_context_t;
typedef struct sb_tls_session sb_tls_session_t;

/* A context's counters: what its sessions came to. */
typedef struct {
    uint64_t handshakes;   /* completed */
    uint64_t failed;       /* refused, broken or garbage */
    uint64_t timeouts;     /* not completed in time */
} sb_tls_counters_t;

/* Loads the PEM certificate (chain) and key; NULL (after logging why) when
 * either does not load or they do not match. */
sb_tls_context_t *sb_tls_context_new(const char *cert_file, const char *key_file);
void sb_tls_context_destroy(sb_tls_context_t **self_p);

/* Rereads the files; false (after logging why) keeps the old ones. */
bool sb_tls_context_reload(sb_tls_context_t *self);

const sb_tls_counters_t *sb_tls_context_counters(const sb_tls_context_t *self);

typedef enum {
    SB_TLS_HANDSHAKE,   /* the handshake is going on */
    SB_TLS_READY,       /* plaintext flows both ways */
    SB_TLS_FAILED,      /* logged and counted; close the connection */
    SB_TLS_CLOSED,      /* the peer closed TLS (close_notify) */
} sb_tls_state_t;

/* A server session with the context's current certificate; `peer` names
 * the client in log lines ("IP:PORT"). */
sb_tls_session_t *sb_tls_session_new(sb_tls_context_t *context, const char *peer);
void sb_tls_session_destroy(sb_tls_session_t **self_p);

sb_tls_state_t sb_tls_session_state(const sb_tls_session_t *self);

/* Takes bytes read from the peer; the state after them. */
sb_tls_state_t sb_tls_session_feed(sb_tls_session_t *self, const void *data, size_t length);

/* Plaintext from the peer, up to `size` bytes; 0 when no complete record
 * is waiting (feed more). Call it until it returns 0: what is not read
 * stays in the session. */
size_t sb_tls_session_read(sb_tls_session_t *self, void *buffer, size_t size);

/* Encrypts plaintext for the peer; false unless READY or CLOSED (nothing is taken). */
bool sb_tls_session_write(sb_tls_session_t *self, const void *data, size_t length);

/* Starts an orderly close (close_notify); the bytes come out in take_output. */
void sb_tls_session_close(sb_tls_session_t *self);

/* The handshake did not complete in time: logged, counted, FAILED. */
void sb_tls_session_expire(sb_tls_session_t *self);

/* Bytes to send to the peer (a heap buffer to free()), or NULL with
 * *length 0 when there are none. */
char *sb_tls_session_take_output(sb_tls_session_t *self, size_t *length);

/* True when take_output has bytes for the peer. */
bool sb_tls_session_has_output(const sb_tls_session_t *self);

/* The negotiated protocol version ("TLSv1.3"), or "" before READY. */
const char *sb_tls_session_version(const sb_tls_session_t *self);

#endif
