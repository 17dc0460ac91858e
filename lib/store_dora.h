/* store_dora: the read queries behind the DORA API: following dl_rollups, the events of a
 * day, and the lists (services, deployments, incidents). Same connection rules as store.h:
 * one thread at a time per struct store. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "store.h"

struct cube_event_in;
struct cube_row;
struct error;
struct store;

struct store_rollup_sink {
        void *ctx;
        /* The rollups were rebuilt (or never read): forget them, start epoch. */
        void (*reset)(void *ctx, int64_t epoch);
        /* One row, borrowed for the call. Returns 0 or a negative errno that stops. */
        int (*row)(void *ctx, const struct cube_row *r);
};

/* Reads the rollup rows written by transactions at or after xmin, in epoch `epoch`; when
 * the epoch has moved on (or epoch is 0) it calls reset() and reads every row instead.
 * Sets *ret_xmin to the snapshot xmin the rows are complete up to. Returns 0, -EIO or the
 * sink's error. */
int store_dora_rollups(struct store *s, int64_t epoch, uint64_t xmin,
                       const struct store_rollup_sink *sink, uint64_t *ret_xmin,
                       struct error *err) __attribute__((warn_unused_result));

/* Calls ev() with every event of dl_events in [from_us, to_us). Returns the number of
 * events, -EIO or ev()'s error. */
int store_dora_events(struct store *s, int64_t from_us, int64_t to_us,
                      int (*ev)(void *ctx, const struct cube_event_in *e), void *ctx,
                      struct error *err) __attribute__((warn_unused_result));

enum store_dora_list {
        STORE_DORA_SERVICES,    /* $1 production environments (array literal) */
        STORE_DORA_DEPLOYMENTS, /* $1 service, $2 envs, $3 since (us), $4 before id, $5 limit */
        STORE_DORA_DEPLOYMENT,  /* $1 id */
        STORE_DORA_INCIDENTS,   /* $1 service, $2 since (us), $3 before id, $4 limit */
        _STORE_DORA_LIST_MAX,
};

/* Runs one fixed list query with text parameters (NULL for SQL NULL) and calls row() for
 * each row (store.h's struct store_row). Returns the number of rows, -EIO or row()'s
 * error. */
int store_dora_list(struct store *s, enum store_dora_list which, const char *const *params,
                    store_row_fn *row, void *ctx, struct error *err)
        __attribute__((warn_unused_result));
