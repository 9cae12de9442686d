/* auth_delay.h — how long the answer to a failed `auth` waits, by the
 * address it came from: nothing for the first few failures, then a delay
 * that doubles up to a ceiling. A success does not start over (else one
 * known token, used after every few guesses, would keep the delay at 0):
 * the failures are forgotten only after a while without any. An IPv6
 * address counts by its /64, which one host usually has whole; IPv4 by
 * the address. The table of addresses is bounded: when it is full, the
 * address whose last failure is oldest is forgotten. */
#ifndef SB_AUTH_DELAY_H
#define SB_AUTH_DELAY_H

#include <stddef.h>
#include <stdint.h>

#define SB_AUTH_FREE_FAILURES   3       /* answered at once */
#define SB_AUTH_DELAY_FIRST_MS  250
#define SB_AUTH_DELAY_MAX_MS    8000
/* An address with no failure for this long starts over. */
#define SB_AUTH_FORGET_MS       (15 * 60 * 1000)

typedef struct sb_auth_delay sb_auth_delay_t;

sb_auth_delay_t *sb_auth_delay_new(size_t max_addresses);
void sb_auth_delay_destroy(sb_auth_delay_t **self_p);

/* One more failure from `address` (a host, without the port) at `now_ms`:
 * how many milliseconds its answer waits. */
uint32_t sb_auth_delay_failed(sb_auth_delay_t *self, const char *address, int64_t now_ms);

/* How long the delay of the address's last failure still runs at `now_ms`
 * (0: none): credentials that cannot be answered later (an HTTP upgrade)
 * are not tried before then. */
uint32_t sb_auth_delay_remaining(const sb_auth_delay_t *self, const char *address, int64_t now_ms);

#endif
