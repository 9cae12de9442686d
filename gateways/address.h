/* address.h — parses the HOST:PORT a gateway listens on ("127.0.0.1:7000",
 * "[::1]:7000", "0.0.0.0:7000"). */
#ifndef SB_ADDRESS_H
#define SB_ADDRESS_H

#include <netinet/in.h>
#include <stdbool.h>
#include <sys/socket.h>

/* Fills `out`; false with a reason in `error` when the text is not an
 * IPv4 or bracketed IPv6 address followed by a port. */
bool sb_address_parse(const char *text, struct sockaddr_storage *out, char *error,
                      size_t error_size);

#endif
