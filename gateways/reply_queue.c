/* reply_queue.c — when each of a client's replies may be written (see reply_queue.h). */
#include "reply_queue.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmdline.h"

struct sb_reply_slot {
    sb_reply_slot_t *prev, *next;   /* in request order */
    bool ordered;
    char *tag;
    void *request;
    char *reply;                    /* formatted, once answered */
    bool close_after;
};

void sb_reply_queue_init(sb_reply_queue_t *self, void (*free_request)(void *))
{
    *self = (sb_reply_queue_t) { .free_request = free_request };
}

sb_reply_slot_t *sb_reply_queue_open(sb_reply_queue_t *self, bool ordered, const char *tag,
                                     void *request)
{
    sb_reply_slot_t *slot = calloc(1, sizeof *slot);
    slot->ordered = ordered;
    slot->tag = tag ? strdup(tag) : NULL;
    slot->request = request;
    slot->prev = self->last;
    if (self->last)
        self->last->next = slot;
    else
        self->first = slot;
    self->last = slot;
    self->open++;
    return slot;
}

void sb_reply_queue_answer(sb_reply_slot_t *slot, char *reply, bool close_after)
{
    free(slot->reply);
    slot->reply = reply;
    slot->close_after = close_after;
}

/* Unordered slots go as soon as they are answered; an ordered one only when
 * no ordered slot before it is still waiting. */
sb_reply_slot_t *sb_reply_queue_next_ready(const sb_reply_queue_t *self)
{
    bool held = false;   /* an earlier ordered slot is unanswered */
    for (sb_reply_slot_t *slot = self->first; slot; slot = slot->next) {
        if (slot->reply && !(slot->ordered && held))
            return slot;
        held = held || (slot->ordered && !slot->reply);
    }
    return NULL;
}

static void free_slot(const sb_reply_queue_t *self, sb_reply_slot_t *slot)
{
    if (self->free_request && slot->request)
        self->free_request(slot->request);
    free(slot->tag);
    free(slot->reply);
    free(slot);
}

void sb_reply_queue_remove(sb_reply_queue_t *self, sb_reply_slot_t *slot)
{
    if (slot->prev)
        slot->prev->next = slot->next;
    else
        self->first = slot->next;
    if (slot->next)
        slot->next->prev = slot->prev;
    else
        self->last = slot->prev;
    self->open--;
    free_slot(self, slot);
}

void sb_reply_queue_clear(sb_reply_queue_t *self)
{
    while (self->first) {
        sb_reply_slot_t *slot = self->first;
        self->first = slot->next;
        free_slot(self, slot);
    }
    self->last = NULL;
    self->open = 0;
}

const char *sb_reply_slot_tag(const sb_reply_slot_t *slot)
{
    return slot->tag;
}

void *sb_reply_slot_request(const sb_reply_slot_t *slot)
{
    return slot->request;
}

const char *sb_reply_slot_reply(const sb_reply_slot_t *slot)
{
    return slot->reply;
}

bool sb_reply_slot_close_after(const sb_reply_slot_t *slot)
{
    return slot->close_after;
}

char *sb_reply_format_line(const char *tag, const char *status, const char *text)
{
    size_t length = (tag ? strlen(tag) + 2 : 0) + (status ? strlen(status) : 0) + strlen(text) + 2;
    char *line = malloc(length);
    int used = snprintf(line, length, "%s%s%s%s%s", tag ? "@" : "", tag ? tag : "",
                        tag ? " " : "", status ? status : "", status && *text ? " " : "");
    char *out = line + used;
    for (const char *c = text; *c; c++)
        *out++ = (*c == '\n' || *c == '\r') ? ' ' : *c;
    *out = '\0';
    return line;
}

char *sb_reply_format_async(const char *kind, const char *word, const char *text)
{
    size_t size = strlen(kind) + 2 * strlen(word) + 5;   /* sb_cmdline_append_word's worst case */
    char *status = malloc(size);
    snprintf(status, size, "%s", kind);
    sb_cmdline_append_word(status, size, word);
    char *line = sb_reply_format_line(NULL, status, text);
    free(status);
    return line;
}
