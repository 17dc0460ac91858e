/* insights_api: the read side of insights (API.md, "Insights"): GET /api/v1/insights, the
 * ranked list (the stored insights of insight_window, kept by daemon/insights.c, or another
 * window computed on demand), GET /api/v1/insights/{id} with its decision history, and
 * /metrics' doraloop_insights{status}. */
#pragma once

#include "api.h"

struct buf;

/* The handlers (api.h's api_handler), routed by daemon/routes.c. */
api_handler insights_list;      /* GET /api/v1/insights?service=&status=&rule=&window= */
api_handler insights_one;       /* GET /api/v1/insights/{id+}: req->param is the id */

/* Appends the gauge doraloop_insights{status} (the insights that hold, per status) to out,
 * HELP and TYPE first. Returns 0, -ENOMEM, or -EIO with err filled. Thread-safe. */
int insights_metrics(const struct api *api, struct buf *out, struct error *err)
        __attribute__((warn_unused_result));
