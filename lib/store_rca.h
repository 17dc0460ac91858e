/* store_rca: reading the root-cause figures (sql/functions/62_rca.sql's dl_rca_fast) as JSON
 * text. A struct store is one connection: one thread at a time. */
#pragma once

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
