/* fixture: loading tests/fixtures/<source>/<case>.json with its .headers, for unit tests. */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "hook.h"

#define FIXTURE_MAX_HEADERS 32

struct fixture {
        char *body;
        size_t len;
        struct hook_header headers[FIXTURE_MAX_HEADERS];
        char *lines[FIXTURE_MAX_HEADERS];
        size_t n_headers;
};

/* Reads a whole file; a malloc'd NUL-terminated buffer, or NULL. */
char *fixture_slurp(const char *path, size_t *ret_len);

/* Loads dir/<name> (a .json file) and its .headers. Returns 0 or -ENOENT. */
int fixture_load(const char *dir, const char *name, struct fixture *fx);

void fixture_add_header(struct fixture *fx, const char *name, const char *value);

void fixture_unload(struct fixture *fx);

/* Calls fn for every <case>.json of every source directory below fixtures, in order;
 * returns how many. */
int fixture_walk(const char *fixtures, void (*fn)(const char *source, const char *dir,
                                                  const char *name, void *ctx), void *ctx);

struct delivery;
struct store;

/* The libpq conninfo of the empty database a store test owns: argv[2], else the
 * DORALOOP_TEST_DB variable (tests/test_unit.py passes one per binary); NULL when neither. */
const char *fixture_db(int argc, char **argv);

/* A store on conninfo, brought to the compiled-in schema with the production environment
 * "production" configured; NULL (and a line on stderr) when it cannot. */
struct store *fixture_store(const char *conninfo);

/* A generic delivery of body (API.md's own JSON: its "type" is the event), received at
 * received_us and normalized as the HTTP handler would; NULL on OOM. */
struct delivery *fixture_generic(const char *delivery_id, const char *body, int64_t received_us);

/* For a store test's main(): fixture_store() on fixture_db()'s database. Without a database
 * it says so on stderr and exits 2. NULL when the store cannot be had. */
struct store *fixture_open(int argc, char **argv, const char *test);

/* Stores fixture_generic(delivery_id, body, received_us) as the daemon would (production
 * "production", a 24 h incident window); 0, or a negative errno with a line on stderr. */
int fixture_save(struct store *s, const char *delivery_id, const char *body,
                 int64_t received_us);

/* fixture_save() of bodies[0, n), as deliveries "<prefix>-<i>"; 0 or the first failure. */
int fixture_save_all(struct store *s, const char *prefix, const char *const *bodies, size_t n,
                     int64_t received_us);

/* A psql session on conninfo, fed SQL as it is sent (its output discarded): what a store
 * test holds locks with, as tests/conftest.py's TableLock does. NULL when psql cannot run.
 * Closing ends the session (and so its transaction, its locks) and waits for it. */
FILE *fixture_psql_open(const char *conninfo);
int fixture_psql_send(FILE *session, const char *sql);
int fixture_psql_close(FILE *session);

/* The first line psql prints for sql (one value, e.g. a count) on conninfo, into out.
 * Returns 0, or -1 when psql fails. */
int fixture_psql_value(const char *conninfo, const char *sql, char *out, size_t n);
