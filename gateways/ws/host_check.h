/* host_check.h — the DNS-rebinding defence of sb-gateway-ws: does a
 * request's Host header name this gateway?
 *
 * A page on evil.example whose name the attacker re-points at the hub's
 * address sends `Host: evil.example:8080` and the same Origin; `self`
 * compares the two and lets it in, so the page could run commands and read
 * /metrics. Every HTTP request and every upgrade is therefore checked
 * against the names the gateway answers to (refused with 421 Misdirected
 * Request otherwise). */
#ifndef SB_HOST_CHECK_H
#define SB_HOST_CHECK_H

#include <stdbool.h>
#include <stddef.h>

/* The names this gateway answers to, as one comma-separated list:
 * localhost and *.localhost, this machine's host name (and NAME.local), the
 * host of every address in `listen_addresses` (HOST:PORT, NULL-terminated)
 * and the `configured` entries (--allow-host: names, "*.example" for the
 * names under example, "*" for any). free() it. */
char *sb_host_allow_list_new(const char *configured, const char *const *listen_addresses);

/* Whether a Host header value is allowed by `list` (the port is ignored).
 * An IP address is always allowed: a browser sends one only for a page it
 * loaded from that very address, which no DNS trick can produce. NULL (no
 * Host header, which HTTP/1.1 requires) and malformed values never are. */
bool sb_host_allowed(const char *host, const char *list);

/* The host part of "HOST", "HOST:PORT", "[V6]" or "[V6]:PORT", without
 * brackets, into `out`; false when it is malformed or does not fit. */
bool sb_host_split(const char *text, char *out, size_t size);

#endif
