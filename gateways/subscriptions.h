/* subscriptions.h — which of a gateway's clients want which topics.
 *
 * A gateway subscribes at the broker once per distinct filter, however
 * many of its clients use it, so the broker sends it only events someone
 * here wants; add and remove say when the first client took a filter and
 * when the last let it go. */
#ifndef SB_SUBSCRIPTIONS_H
#define SB_SUBSCRIPTIONS_H

#include <stddef.h>
#include <stdint.h>

typedef struct sb_subscriptions sb_subscriptions_t;

typedef enum {
    SB_SUBSCRIBED_FIRST,     /* no other client had this filter: tell the broker */
    SB_SUBSCRIBED,
    SB_ALREADY_SUBSCRIBED,
    SB_TOO_MANY_FILTERS,     /* the client has max_per_client filters already */
} sb_subscribe_result_t;

typedef enum {
    SB_UNSUBSCRIBED_LAST,    /* no client has this filter any more: tell the broker */
    SB_UNSUBSCRIBED,
    SB_NOT_SUBSCRIBED,
} sb_unsubscribe_result_t;

sb_subscriptions_t *sb_subscriptions_new(size_t max_per_client);
void sb_subscriptions_destroy(sb_subscriptions_t **self_p);

sb_subscribe_result_t sb_subscriptions_add(sb_subscriptions_t *self, uint64_t client,
                                           const char *filter);
sb_unsubscribe_result_t sb_subscriptions_remove(sb_subscriptions_t *self, uint64_t client,
                                                const char *filter);

/* Drops every filter of a client that left; `on_unused` gets each filter
 * no client has any more. */
void sb_subscriptions_drop_client(sb_subscriptions_t *self, uint64_t client,
                                  void (*on_unused)(void *arg, const char *filter), void *arg);

/* Calls `fn` once per client with a filter matching `topic`. */
void sb_subscriptions_each_client(sb_subscriptions_t *self, const char *topic,
                                  void (*fn)(void *arg, uint64_t client), void *arg);

/* Calls `fn` for every filter in use (to subscribe again after a broker restart). */
void sb_subscriptions_each_filter(sb_subscriptions_t *self,
                                  void (*fn)(void *arg, const char *filter), void *arg);

#endif
