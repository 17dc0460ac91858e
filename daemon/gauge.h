/* gauge: a /metrics gauge whose lines come from the rows of one store query (the problems',
 * insights' and support gauges). It writes the HELP and TYPE text, then a line or two per
 * row; a retried store call starts the lines over. */
#pragma once

#include "../lib/store.h"
#include "api.h"

struct buf;

struct gauge {
        const char *help;       /* its "# HELP ...\n# TYPE ...\n" */
        /* Runs the query, calling row(row_ctx, r) for each row. */
        int (*query)(struct store *s, const void *args, store_row_fn *row, void *row_ctx,
                     struct error *err);
        const void *args;       /* the query's own, e.g. a window */
        /* Appends the row's lines to out. Returns 0 or -ENOMEM. */
        int (*lines)(struct buf *out, const struct store_row *r);
};

/* Appends g to out. Returns 0, -ENOMEM, or -EIO with err filled. Thread-safe. */
int gauge_write(const struct api *api, const struct gauge *g, struct buf *out,
                struct error *err) __attribute__((warn_unused_result));
