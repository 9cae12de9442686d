/* store.h — account balances shared by every worker process on the host.
 *
 * SQLite in WAL mode, opened by each worker on first use (after the fork).
 * Each change is one UPDATE/UPSERT statement that checks and changes the
 * balance together, so concurrent workers can never lose an update or take
 * a balance below zero; a locked database is waited for (busy timeout),
 * never reported as a failure while the wait lasts. */
#ifndef SB_STORE_H
#define SB_STORE_H

#include <stddef.h>
#include <stdint.h>

#define SB_ACCOUNT_MAX_AMOUNT 1000000000L

typedef struct sb_store sb_store_t;

typedef enum {
    SB_STORE_OK,
    SB_STORE_INSUFFICIENT,   /* a withdrawal larger than the balance: nothing changed */
    SB_STORE_FAILED,         /* the database failed; see the log */
} sb_store_status_t;

/* Opens (creating the file, its folder and the table as needed). NULL
 * with a reason in `error` on failure. */
sb_store_t *sb_store_open(const char *path, char *error, size_t error_size);
void sb_store_destroy(sb_store_t **self_p);

/* `delta` > 0 deposits, < 0 withdraws, 0 reads; the balance after. */
sb_store_status_t sb_store_change(sb_store_t *self, const char *account, int64_t delta,
                                  int64_t *balance_out);

#endif
