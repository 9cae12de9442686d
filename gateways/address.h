/* address.h — the HOST:PORT a gateway listens on ("127.0.0.1:7000",
 * "[::1]:7000", "0.0.0.0:7000") and the addresses of its clients. */
#ifndef SB_ADDRESS_H
#define SB_ADDRESS_H

#include <netinet/in.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <uv.h>

/* Fills `out`; false with a reason in `error` when the text is not an
 * IPv4 or bracketed IPv6 address followed by a port. */
bool sb_address_parse(const char *text, struct sockaddr_storage *out, char *error,
                      size_t error_size);

/* Initialises `listener` (its data set to `data`), binds it to `address`
 * (with SO_REUSEPORT when `reuse_port`: several processes may listen on
 * it) and listens; false after logging why. */
bool sb_address_listen(uv_loop_t *loop, uv_tcp_t *listener, void *data, const char *address,
                       bool reuse_port, uv_connection_cb on_connection);

/* A connected client's address as "IP:PORT" or "[IPv6]:PORT". */
void sb_address_of_peer(const uv_tcp_t *client, char *buffer, size_t size);

/* The host of "HOST:PORT" or "[IPv6]:PORT" (brackets dropped), into `host`. */
void sb_address_host(const char *address, char *host, size_t size);

/* Whether a listen address is on loopback (127.0.0.0/8, ::1, localhost). */
bool sb_address_is_loopback(const char *text);

#endif
