/* reply_queue.h — the replies a gateway's client is waiting for, in the
 * order they must be written.
 *
 * Every request gets a slot. Ordered slots (untagged lines) are written in
 * the order their requests arrived; unordered ones (tagged lines, JSON
 * requests with an id) as soon as they are answered, holding nothing up.
 * The gateway formats each reply; this queue only decides when it may go. */
#ifndef SB_REPLY_QUEUE_H
#define SB_REPLY_QUEUE_H

#include <stdbool.h>
#include <stddef.h>

/* A place for one reply (declared for the router in router.h too). */
typedef struct sb_reply_slot sb_reply_slot_t;

typedef struct {
    sb_reply_slot_t *first, *last;
    size_t open;                       /* slots not yet written */
    void (*free_request)(void *);      /* frees what a slot keeps of its request */
} sb_reply_queue_t;

/* `free_request` (may be NULL) frees each slot's `request` with the slot. */
void sb_reply_queue_init(sb_reply_queue_t *self, void (*free_request)(void *));

/* A slot at the end; `tag` (copied) and `request` (owned) may be NULL. */
sb_reply_slot_t *sb_reply_queue_open(sb_reply_queue_t *self, bool ordered, const char *tag,
                                     void *request);

/* Stores the formatted reply (owned); `close_after`: the client's last reply. */
void sb_reply_queue_answer(sb_reply_slot_t *slot, char *reply, bool close_after);

/* The next slot whose reply may be written now, or NULL. Write it, then
 * sb_reply_queue_remove it. */
sb_reply_slot_t *sb_reply_queue_next_ready(const sb_reply_queue_t *self);

void sb_reply_queue_remove(sb_reply_queue_t *self, sb_reply_slot_t *slot);

/* Frees every slot (the client has gone). */
void sb_reply_queue_clear(sb_reply_queue_t *self);

const char *sb_reply_slot_tag(const sb_reply_slot_t *slot);
void *sb_reply_slot_request(const sb_reply_slot_t *slot);
const char *sb_reply_slot_reply(const sb_reply_slot_t *slot);
bool sb_reply_slot_close_after(const sb_reply_slot_t *slot);

/* A reply in the line protocol's form (§3.1), without the newline:
 * "[@TAG ]STATUS[ TEXT]", or "[@TAG ]TEXT" when `status` is NULL; line
 * breaks in TEXT become spaces so the reply stays one line. */
char *sb_reply_format_line(const char *tag, const char *status, const char *text);

/* An asynchronous line, "KIND WORD TEXT" (EVENT TOPIC PAYLOAD, MSG FROM
 * TEXT): WORD quoted as a request's word would be when it must be
 * (`EVENT "zigbee2mqtt/Living Room" on`), so a client splits it with the
 * line protocol's parser; line breaks in TEXT become spaces. */
char *sb_reply_format_async(const char *kind, const char *word, const char *text);

#endif
