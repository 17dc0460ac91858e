/* store: everything doraloop keeps in PostgreSQL, over libpq. A struct store is one
 * connection: use it from one thread at a time. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct delivery;
struct error;
struct store;

/* Connects with a libpq conninfo string or URI. Returns 0 and a store the caller frees with
 * store_close(), or -EIO (err says why). */
int store_open(const char *conninfo, struct store **ret_store, struct error *err)
        __attribute__((warn_unused_result));

/* Closes the connection; NULL-safe, returns NULL. */
struct store *store_close(struct store *s);

/* For the other store modules: s's last libpq error as one line (libpq's span several) in
 * err, code unavailable, after what ("Reading a change request"). Returns -EIO. */
int store_error(struct store *s, const char *what, struct error *err);

/* The libpq connection, for the other store modules (store_dora.c) only. Borrowed. */
struct pg_conn *store_pgconn(struct store *s);

/* Whether the connection is still up (it does not probe the server). */
bool store_connected(const struct store *s);

/* The channel every batch and replay chunk NOTIFYs at COMMIT: rows changed. */
#define STORE_NOTIFY_CHANNEL "doraloop_rows"

/* SQLSTATEs that made a statement fail as -EAGAIN (tried again by the caller), counted by
 * kind since the process started: 40001 and its class, 40P01, a race on a unique key. */
struct store_retries {
        uint64_t serialization, deadlock, unique;
};

/* A snapshot of the counts. Thread-safe. */
void store_retries(struct store_retries *ret);

/* Runs SELECT 1. Returns 0 or -EIO. */
int store_ping(struct store *s, struct error *err) __attribute__((warn_unused_result));

/* Brings the database to the compiled-in schema in one transaction, under an advisory lock
 * so concurrent daemons are safe: the migrations not yet recorded in schema_migrations (an
 * applied one whose file changed is refused, naming it), then the code of sql/functions/
 * when its text changed. Returns the number of migrations applied, or -EIO. */
int store_migrate(struct store *s, struct error *err) __attribute__((warn_unused_result));

/* Writes the settings the database's own functions read (dl_settings): n names and values.
 * Returns 0 or -EIO. */
int store_configure(struct store *s, const char *const *names, const char *const *values,
                    size_t n, struct error *err) __attribute__((warn_unused_result));

/* Settings the derived links depend on. */
struct store_model {
        const char *production_environments;    /* comma-separated */
        long incident_link_window_hours;
};

/* Stores n deliveries in one transaction (idempotent on source + delivery id), sets each
 * one's duplicate flag and applies the rows of those it stored: a duplicate's rows are
 * never applied, so a redelivery changes nothing, whatever its body. Returns 0 once COMMIT
 * succeeded; else nothing is stored and it returns -EBADMSG (PostgreSQL refused a row for
 * its content: a data exception, a constraint, a value too long for an index), -EAGAIN (a
 * deadlock or serialization failure: the same call may pass) or -EIO (anything else: a
 * timeout, the connection, the server; the deliveries are fine and must wait). Does not
 * call done() or touch result. */
int store_save_batch(struct store *s, const struct store_model *m, struct delivery *const *ds,
                     size_t n, struct error *err) __attribute__((warn_unused_result));

/* How a replay goes (store_replay): its chunk sizes and what it tells its caller. */
struct store_replay_hooks {
        size_t chunk_deliveries;        /* deliveries per transaction at most */
        size_t chunk_first;             /* in the first one (0: chunk_deliveries) */
        size_t chunk_bytes;             /* their bodies' bytes at most (a larger one alone) */
        /* Re-derives d->events, d->status and d->error from d->body. Returns 0 or -ENOMEM. */
        int (*normalize)(struct delivery *d, void *ctx);
        /* Once the tables are empty: how many deliveries the replay covers. May be NULL. */
        void (*started)(void *ctx, int64_t total);
        /* After each committed chunk of `chunk` deliveries, with the deliveries done so far:
         * returns how many the next chunk may hold (at most chunk_deliveries), or 0 to stop
         * the replay there. May be NULL (chunks stay at chunk_deliveries). */
        size_t (*progress)(void *ctx, int64_t done, size_t chunk);
        /* A delivery PostgreSQL refused to apply (or of a source this version lacks), with
         * why; the replay marks it error in events_raw and goes on. Borrowed strings. May
         * be NULL. */
        void (*skipped)(void *ctx, const char *delivery_id, const char *why);
        void *ctx;
};

/* Empties the normalized tables (one short transaction that waits 1 s at most at a time
 * for its lock), then re-applies, in arrival order, every delivery stored by then, each
 * re-derived by h->normalize, in chunks of its own transaction that take the writers'
 * locks: live deliveries keep being stored meanwhile (they apply themselves), and readers
 * see the tables fill up again. A delivery PostgreSQL refuses is skipped (h->skipped), never
 * a reason to stop. Returns the number of deliveries gone through, -ECANCELED when
 * h->progress said stop, -ENOMEM, or -EIO (the connection failed). Blocks for as long as
 * the history takes; call it on a connection of its own. */
int store_replay(struct store *s, const struct store_model *m,
                 const struct store_replay_hooks *h, struct error *err)
        __attribute__((warn_unused_result));

/* Takes the session-level advisory lock that holds one replay at a time across every
 * daemon on the database, naming the connection after job (application_name). Returns 1
 * when taken (it lasts until the connection closes), 0 when another session holds it (then
 * ret_holder, if given, gets that session's job name, or "" when unknown), or -EIO. */
int store_replay_lock(struct store *s, const char *job, char *ret_holder, size_t holder_len,
                      struct error *err) __attribute__((warn_unused_result));

struct delivery_filter {
        const char *source;     /* or NULL for any */
        const char *status;     /* or NULL for any */
        int64_t before_id;      /* only ids below this, or 0 */
        int limit;
};

/* One row of a list query, the store's one row type: column names, values (NULL for SQL
 * NULL) and how each column reads, one STORE_KIND_* letter per column in kinds. Borrowed
 * for the call it is given to. */
struct store_row {
        int n;
        const char *const *names;
        const char *const *values;
        const char *kinds;
};

enum store_kind {
        STORE_KIND_STRING = 's',
        STORE_KIND_NUMBER = 'n',
        STORE_KIND_BOOL = 'b',          /* "t" or "f" */
        STORE_KIND_JSON = 'j',          /* JSON text SQL built: an aggregate, an array */
};

/* Called with each row; returns 0 or a negative errno that stops the walk. */
typedef int store_row_fn(void *ctx, const struct store_row *r);

/* For the other store modules: runs sql with n text parameters (NULL for SQL NULL) and
 * calls row() for each row, its columns read by kinds (one letter per column; a count that
 * differs is -EIO) and named by names, or the query's own names when NULL. Returns the
 * number of rows, -EIO (err says why, after what) or row()'s error. */
int store_rows(struct store *s, const char *sql, int n, const char *const *params,
               const char *kinds, const char *const *names, store_row_fn *row, void *ctx,
               const char *what, struct error *err) __attribute__((warn_unused_result));

/* For the store modules that keep a mirror in step (store_rca.c, store_support.c): runs
 * sql, whose one parameter is the xmin to read from ($1::text::xid8) and whose first row is
 * always there, its columns 0 and 1 the stored epoch and the snapshot's xmin. It reads from
 * xmin, or from the start when epoch is not the stored one (nothing loaded yet, or a
 * TRUNCATE since), calling reset(ctx, stored epoch) then. Hands the result to the caller to
 * PQclear() and the xmin to read from next to *ret_xmin. 0 or -EIO (err says why, after
 * what). */
struct pg_result;
int store_read_since(struct store *s, const char *sql, int64_t epoch, uint64_t xmin,
                     void (*reset)(void *ctx, int64_t epoch), void *ctx, const char *what,
                     struct pg_result **ret, uint64_t *ret_xmin, struct error *err)
        __attribute__((warn_unused_result));

/* Calls row() for each stored delivery matching f, newest first: id, source, delivery_id,
 * event, received_at, status, error (NULL when none). Returns the number of rows, -EIO, or
 * row()'s negative return. */
int store_list_deliveries(struct store *s, const struct delivery_filter *f, store_row_fn *row,
                          void *ctx, struct error *err) __attribute__((warn_unused_result));

/* ------------------------------------------------------------------ raw retention */

/* The monthly partitions of events_raw (sql/functions/60_raw_partitions.sql), each call one
 * short transaction of its own that waits at most 2 s for a lock (a drop needs events_raw
 * alone for an instant). Both do nothing when another daemon holds the upkeep's advisory
 * lock: it is doing the same work. */

/* Creates the partitions of now_us's month and the `ahead` months after it, and of every
 * month whose rows wait in the default partition. Returns how many it created, 0 when
 * there was nothing to do (or another daemon is at it), or -EIO. */
int store_raw_partitions(struct store *s, int64_t now_us, int ahead, struct error *err)
        __attribute__((warn_unused_result));

/* Drops the oldest month of events_raw that ends at or before cutoff_us, with its delivery
 * ids (a redelivery of one of them is then new). Returns 1 with ret_month ("YYYY-MM") and
 * ret_rows (the deliveries it held), 0 when no month is due (or another daemon is at it),
 * or -EIO. */
int store_raw_drop_oldest(struct store *s, int64_t cutoff_us, char *ret_month,
                          size_t month_len, int64_t *ret_rows, struct error *err)
        __attribute__((warn_unused_result));
