/* store_rca: reading the root-cause figures (sql/functions/62_rca.sql's dl_rca_fast) as JSON
 * text. A struct store is one connection: one thread at a time. */
#pragma once

#include <stddef.h>
#include <stdint.h>

struct error;
struct store;

/* The figures of [from_us, to_us) and of the window of the same length before it, for
 * service (NULL: all), as two malloc'd JSON texts the caller frees. Returns 0 or -EIO. */
int store_rca(struct store *s, const char *service, int64_t from_us, int64_t to_us,
              char **ret_window, char **ret_previous, struct error *err)
        __attribute__((warn_unused_result));

/* The same figures of [from_us, to_us) the plain way, from the rows (dl_rca, the reference
 * the tests and bench hold the rollups to), as malloc'd JSON text. Returns 0 or -EIO. */
int store_rca_reference(struct store *s, const char *service, int64_t from_us, int64_t to_us,
                        char **ret_json, struct error *err) __attribute__((warn_unused_result));

/* Called once per (service, dimension) by store_rca_by_dimension(). */
typedef int store_rca_count_fn(void *ctx, const char *service, const char *dimension,
                               int64_t incidents);

/* The incidents opened in [from_us, to_us) of each dimension, for every service that has
 * any (all four dimensions, zeros too), ordered by service then dimension. Returns 0, the
 * first non-zero of fn, or -EIO. */
int store_rca_by_dimension(struct store *s, int64_t from_us, int64_t to_us,
                           store_rca_count_fn *fn, void *ctx, struct error *err)
        __attribute__((warn_unused_result));

struct rca_row;
struct rca_fact;

/* Where store_rca_since() hands what it read. */
struct store_rca_sink {
        void *ctx;
        /* rca_daily was truncated (or never read): forget it, start epoch. */
        void (*reset)(void *ctx, int64_t epoch);
        /* The rows of one (service, day) that changed, n 0 when it holds none now; borrowed
         * for the call. 0 or a negative errno that stops. */
        int (*day)(void *ctx, const char *service, int32_t day, const struct rca_row *rows,
                   size_t n);
};

/* Reads the (service, day)s of rca_daily changed by transactions at or after xmin, in epoch
 * `epoch` (every day when epoch is 0 or has changed, after sink->reset()), and the
 * snapshot's xmin into *ret_xmin (sql/022_mirrors.sql). Returns 0, -EIO, -ENOMEM or the
 * sink's error. */
int store_rca_since(struct store *s, int64_t epoch, uint64_t xmin,
                    const struct store_rca_sink *sink, uint64_t *ret_xmin, struct error *err)
        __attribute__((warn_unused_result));

/* Calls fn with each row of dl_rca_incident_factors over the UTC day `day` (every
 * service). Returns 0, -EIO or fn's error. */
int store_rca_day_facts(struct store *s, int32_t day,
                        int (*fn)(void *ctx, const struct rca_fact *f), void *ctx,
                        struct error *err) __attribute__((warn_unused_result));
