/* store.c — account balances in SQLite (see store.h). */
#include "store.h"

#include <stdbool.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "data_path.h"
#include "log.h"

/* How long a worker waits for another to release the database. */
#define BUSY_TIMEOUT_MS 10000

struct sb_store {
    sqlite3 *db;
    sqlite3_stmt *deposit;
    sqlite3_stmt *withdraw;
    sqlite3_stmt *balance;
};

/* synchronous = FULL: with WAL, NORMAL syncs only at checkpoints, so a
 * deposit already answered OK could vanish on power loss (a Pi on an SD
 * card); FULL syncs the WAL at every commit (docs/performance.md: the cost). */
static const char *s_schema =
    "PRAGMA journal_mode = WAL;"
    "PRAGMA synchronous = FULL;"
    "CREATE TABLE IF NOT EXISTS accounts ("
    "  name TEXT PRIMARY KEY,"
    "  balance INTEGER NOT NULL CHECK (balance >= 0));";

/* Several workers opening a new file together contend for switching it to
 * WAL; SQLite answers BUSY at once there (the busy handler cannot help when
 * waiting could deadlock), so the attempt is repeated for a while. */
static bool apply_schema(sb_store_t *self)
{
    for (int waited_ms = 0; waited_ms < BUSY_TIMEOUT_MS; waited_ms += 20) {
        int result = sqlite3_exec(self->db, s_schema, NULL, NULL, NULL);
        if (result == SQLITE_OK)
            return true;
        if (result != SQLITE_BUSY && result != SQLITE_LOCKED)
            return false;
        struct timespec pause = { 0, 20 * 1000000L };
        nanosleep(&pause, NULL);
    }
    return false;
}

static bool prepare(sb_store_t *self, const char *sql, sqlite3_stmt **statement)
{
    return sqlite3_prepare_v2(self->db, sql, -1, statement, NULL) == SQLITE_OK;
}

/* The value of a PRAGMA as this connection has it, as text. */
static void pragma_value(sb_store_t *self, const char *name, char *out, size_t size)
{
    char sql[64];
    sqlite3_stmt *statement;
    snprintf(sql, sizeof sql, "PRAGMA %s", name);
    snprintf(out, size, "unknown");
    if (!prepare(self, sql, &statement))
        return;
    if (sqlite3_step(statement) == SQLITE_ROW && sqlite3_column_text(statement, 0))
        snprintf(out, size, "%s", (const char *) sqlite3_column_text(statement, 0));
    sqlite3_finalize(statement);
}

/* What the connection really runs with (synchronous is per connection),
 * for the operator and for the test that holds the store to FULL. */
static void log_opened(sb_store_t *self, const char *path)
{
    static const char *const synchronous_names[] = { "off", "normal", "full", "extra" };
    char journal[32], synchronous[32], quoted[SB_LOG_QUOTE_MAX];
    pragma_value(self, "journal_mode", journal, sizeof journal);
    pragma_value(self, "synchronous", synchronous, sizeof synchronous);
    int level = atoi(synchronous);
    sb_log_info("account store opened", "path=%s journal_mode=%s synchronous=%s",
                sb_log_quote(quoted, path), journal,
                level >= 0 && level <= 3 ? synchronous_names[level] : synchronous);
}

sb_store_t *sb_store_open(const char *path, char *error, size_t error_size)
{
    sb_data_path_make_parent(path);
    sb_store_t *self = calloc(1, sizeof *self);
    bool ok = sqlite3_open_v2(path, &self->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL)
              == SQLITE_OK;
    if (ok) {
        sqlite3_busy_timeout(self->db, BUSY_TIMEOUT_MS);
        ok = apply_schema(self)
             && prepare(self, "INSERT INTO accounts (name, balance) VALUES (?1, ?2)"
                              " ON CONFLICT (name) DO UPDATE SET balance = balance + ?2"
                              " RETURNING balance", &self->deposit)
             && prepare(self, "UPDATE accounts SET balance = balance - ?2"
                              " WHERE name = ?1 AND balance >= ?2 RETURNING balance",
                        &self->withdraw)
             && prepare(self, "SELECT balance FROM accounts WHERE name = ?1", &self->balance);
    }
    if (ok)
        log_opened(self, path);
    else {
        snprintf(error, error_size, "%s: %s", path,
                 self->db ? sqlite3_errmsg(self->db) : "cannot open");
        sb_store_destroy(&self);
    }
    return self;
}

void sb_store_destroy(sb_store_t **self_p)
{
    sb_store_t *self = *self_p;
    if (!self)
        return;
    sqlite3_finalize(self->deposit);
    sqlite3_finalize(self->withdraw);
    sqlite3_finalize(self->balance);
    sqlite3_close(self->db);
    free(self);
    *self_p = NULL;
}

/* Runs one statement for `account` and `amount`; the balance it returns,
 * if it returns a row. */
static sb_store_status_t run(sb_store_t *self, sqlite3_stmt *statement, const char *account,
                             int64_t amount, bool *has_row, int64_t *balance)
{
    sqlite3_reset(statement);
    sqlite3_bind_text(statement, 1, account, -1, SQLITE_STATIC);
    sqlite3_bind_int64(statement, 2, amount);
    int step = sqlite3_step(statement);
    *has_row = step == SQLITE_ROW;
    if (*has_row) {
        *balance = sqlite3_column_int64(statement, 0);
        step = sqlite3_step(statement);
    }
    sqlite3_reset(statement);
    if (step != SQLITE_DONE) {
        char quoted[SB_LOG_QUOTE_MAX], reason[SB_LOG_QUOTE_MAX];
        sb_log_error("account store failed", "account=%s error=%s",
                     sb_log_quote(quoted, account), sb_log_quote(reason, sqlite3_errmsg(self->db)));
        return SB_STORE_FAILED;
    }
    return SB_STORE_OK;
}

sb_store_status_t sb_store_change(sb_store_t *self, const char *account, int64_t delta,
                                  int64_t *balance_out)
{
    bool has_row;
    *balance_out = 0;
    if (delta > 0)
        return run(self, self->deposit, account, delta, &has_row, balance_out);
    if (delta == 0)
        return run(self, self->balance, account, 0, &has_row, balance_out);
    sb_store_status_t status = run(self, self->withdraw, account, -delta, &has_row, balance_out);
    if (status != SB_STORE_OK || has_row)
        return status;
    /* Nothing withdrawn: the balance is too small (or the account new). */
    run(self, self->balance, account, 0, &has_row, balance_out);
    return SB_STORE_INSUFFICIENT;
}
