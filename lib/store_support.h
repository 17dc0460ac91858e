/* store_support: the read queries behind support load (GET /api/v1/support and the
 * observation list), over sql/functions/61_support.sql. Same connection rules as store.h:
 * one thread at a time per struct store. */
#pragma once

#include <stdint.h>

#include "store.h"

struct error;
struct store;

/* One window's support figures (API.md, "Figures"); counts are weighed by count. */
struct store_support_figures {
        int64_t opened, resolved, open_now, customers, linked;
        double median_seconds;          /* NAN when nothing was resolved in the window */
        int64_t kinds[4];               /* support, feedback, usage, ux (support = opened) */
};

/* The observation kinds in the order of store_support_figures.kinds. */
extern const char *const store_support_kinds[4];

/* What a figures read is scoped to: service and feature NULL for all. */
struct store_support_scope {
        int64_t from_us, to_us;
        const char *service, *feature;
};

/* Reads the figures of scope into *ret, and calls feature() with each named feature's
 * row (feature, opened, customers; most opened first). Returns 0, -EIO or feature()'s
 * error. */
int store_support_figures(struct store *s, const struct store_support_scope *scope,
                          struct store_support_figures *ret, store_row_fn *feature, void *ctx,
                          struct error *err) __attribute__((warn_unused_result));

/* Calls row() with each observation matching the filters (text parameters, NULL for
 * none): $1 service, $2 feature, $3 kind, $4 since (us), $5 before id (the cursor), $6
 * limit; newest id first. Returns the number of rows, -EIO or row()'s error. */
int store_support_observations(struct store *s, const char *const *params, store_row_fn *row,
                               void *ctx, struct error *err) __attribute__((warn_unused_result));

/* Calls row() with (service, opened) for every service with support requests: those opened
 * in [from_us, to_us). Returns the number of rows, -EIO or row()'s error. */
int store_support_opened(struct store *s, int64_t from_us, int64_t to_us, store_row_fn *row,
                         void *ctx, struct error *err) __attribute__((warn_unused_result));

struct sup_obs;

/* Where store_support_since() hands what it read. */
struct store_obs_sink {
        void *ctx;
        /* The observations were truncated (or never read): forget them, start epoch. */
        void (*reset)(void *ctx, int64_t epoch);
        /* One observation's state, borrowed for the call. 0 or a negative errno that stops. */
        int (*row)(void *ctx, const struct sup_obs *o);
};

/* Reads the observations written by transactions at or after xmin, in epoch `epoch`
 * (everything when epoch is 0 or has changed, after sink->reset()), and the snapshot's xmin
 * into *ret_xmin (sql/022_mirrors.sql). Returns 0, -EIO or the sink's error. */
int store_support_since(struct store *s, int64_t epoch, uint64_t xmin,
                        const struct store_obs_sink *sink, uint64_t *ret_xmin,
                        struct error *err) __attribute__((warn_unused_result));
