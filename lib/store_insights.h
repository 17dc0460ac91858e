/* store_insights: the queries behind insights (API.md, "Insights"), over
 * sql/functions/70_insights.sql: the upkeep's claim and recompute, and the reads of GET
 * /api/v1/insights and /metrics. Same connection rules as store.h: one thread at a time per
 * struct store. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "store.h"

struct error;
struct store;

/* The score weights and the window the upkeep keeps insights for (config keys
 * insight_window, insight_support_hours, insight_failure_hours), as SQL literals'
 * text: window_days a whole number of days, the hours decimal numbers. */
struct store_insight_weights {
        long window_days;
        const char *support_hours, *failure_hours;
};

/* Takes up to limit marked services off insight_dirty and calls row() with each (one
 * column: service). Another caller's services are skipped. Returns the number, -EIO or
 * row()'s error. */
int store_insights_claim(struct store *s, int limit, store_row_fn *row, void *ctx,
                         struct error *err) __attribute__((warn_unused_result));

/* Recomputes service's insights over the last w->window_days and writes them (one
 * transaction). Returns the number of insights written, or -EIO. */
int store_insights_refresh(struct store *s, const char *service,
                           const struct store_insight_weights *w, struct error *err)
        __attribute__((warn_unused_result));

/* Marks service for the upkeep again (after a failed recompute). Returns 0 or -EIO. */
int store_insights_mark(struct store *s, const char *service, struct error *err)
        __attribute__((warn_unused_result));

/* Marks every service that may hold an insight (windows slide). Returns how many were
 * marked, or -EIO. */
int store_insights_mark_all(struct store *s, long window_days, struct error *err)
        __attribute__((warn_unused_result));

/* What a list read asks for: filters (NULL for any), the cursor (the last id of the page
 * before, or NULL), a limit, and either the stored window (live false) or [from_us, to_us)
 * computed now with w's weights. */
struct store_insight_query {
        const char *service, *status, *rule, *after;
        int limit;
        bool live;
        int64_t from_us, to_us;
        const struct store_insight_weights *weights;
};

/* Calls row() with each item (columns id, item: the API item as JSON), highest score
 * first. Returns the number of rows, -EIO or row()'s error. */
int store_insights_list(struct store *s, const struct store_insight_query *q,
                        store_row_fn *row, void *ctx, struct error *err)
        __attribute__((warn_unused_result));

/* Calls row() with insight id's item and its decisions (one column: item, JSON), when it
 * exists. Returns 1, 0 (unknown), -EIO or row()'s error. */
int store_insight_get(struct store *s, const char *id, store_row_fn *row, void *ctx,
                      struct error *err) __attribute__((warn_unused_result));

/* Records decision ("accept" or "dismiss") on insight id with reason and actor, in one
 * transaction that also queues an accepted version in the outbox (dl_insight_decide in
 * sql/functions/72_decisions.sql; a write: call it on the primary). Calls row() once with
 * (outcome, item): outcome "decided", "unchanged", "conflict" or "unknown", item the
 * insight with its history as JSON (NULL when unknown). Returns 1, -EIO or row()'s error. */
int store_insight_decide(struct store *s, const char *id, const char *decision,
                         const char *reason, const char *actor, store_row_fn *row, void *ctx,
                         struct error *err) __attribute__((warn_unused_result));

/* Calls row() with (status, count) of the insights that hold, for each of the four
 * statuses. Returns the number of rows, -EIO or row()'s error. */
int store_insights_by_status(struct store *s, store_row_fn *row, void *ctx,
                             struct error *err) __attribute__((warn_unused_result));
