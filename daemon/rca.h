/* rca: GET /api/v1/rca, the root-cause figures of a window and of the one before it
 * (API.md, "Closing the loop", "Figures"), computed by the store (sql/functions/62_rca.sql). */
#pragma once

#include "api.h"

struct buf;

/* The handler (api.h's api_handler), routed by daemon/routes.c. */
api_handler rca_figures;

/* /metrics' doraloop_incidents_by_dimension{service,dimension} (the last 30 days) appended
 * to out. Returns 0, -ENOMEM, or -EIO with err filled. */
int rca_metrics(const struct api *api, struct buf *out, struct error *err)
        __attribute__((warn_unused_result));
