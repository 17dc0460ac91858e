/* dbpool: a few database connections for the HTTP threads' queries (health, read API), kept
 * apart from the writers' so reads never wait behind a group commit. Thread-safe. */
#pragma once

struct dbpool;
struct error;
struct store;

/* Creates an empty pool keeping at most max idle connections; they open lazily. */
struct dbpool *dbpool_new(const char *conninfo, int max);

/* Closes every idle connection; NULL-safe, returns NULL. All must have been released. */
struct dbpool *dbpool_free(struct dbpool *p);

/* Borrows a connection (opening one if none is idle). Returns 0 or -EIO. */
int dbpool_acquire(struct dbpool *p, struct store **ret_store, struct error *err)
        __attribute__((warn_unused_result));

/* Returns a borrowed connection; a broken one is closed instead of kept. */
void dbpool_release(struct dbpool *p, struct store *s);
