/* http_sniff.h — tells a line-protocol gateway that a browser is talking
 * to it. A page can fetch("http://127.0.0.1:7000/", {method: "POST",
 * mode: "no-cors", body: "pub ...\n"}): the request line and headers are
 * only unknown commands, but the body lines would run. Like Redis, a
 * gateway closes the connection at the first line that looks like HTTP, so
 * nothing after it (the body) is ever read. */
#ifndef SB_HTTP_SNIFF_H
#define SB_HTTP_SNIFF_H

#include <stdbool.h>
#include <stddef.h>

/* True for an HTTP request line ("METHOD TARGET HTTP/1.0" or "HTTP/1.1",
 * METHOD in capitals) and for a line starting with "Host:" or "Origin:"
 * (any case); `line` holds `length` bytes without its newline. */
bool sb_http_sniff_line(const char *line, size_t length);

#endif
