/* sse.h — Server-Sent Events framing (the WHATWG HTML "event stream"),
 * without sockets: what GET /api/v1/events writes for each hub event. */
#ifndef SB_SSE_H
#define SB_SSE_H

/* The head's Content-Type and the comment sent every keepalive interval. */
#define SB_SSE_CONTENT_TYPE "text/event-stream; charset=utf-8"
#define SB_SSE_KEEPALIVE ": keepalive\n\n"

/* "event: NAME\ndata: LINE\n...\n\n": each line of `data` (LF, CR or CRLF
 * ends one) its own `data:` field, so the reader joins them back with LF.
 * `name` must hold no line break. A heap string. */
char *sb_sse_event(const char *name, const char *data);

#endif
