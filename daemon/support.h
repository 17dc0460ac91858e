/* support: support load, GET /api/v1/support (API.md, "Figures"): support requests and
 * observations of one window, from the store's daily support rollup and the window's rows,
 * divided by the DORA deployment count of the mirror (daemon/mirror.h); and its /metrics
 * gauge. */
#pragma once

#include <stdint.h>

#include "api.h"

struct buf;

/* The handler (api.h's api_handler), routed by daemon/routes.c. */
api_handler support_figures;    /* GET /api/v1/support */

/* Appends the gauge doraloop_support_requests_opened{service} (support requests opened in
 * the 30 days before now_us) to out, HELP and TYPE first. Returns 0, -ENOMEM, or -EIO with
 * err filled. Thread-safe. */
int support_metrics(const struct api *api, int64_t now_us, struct buf *out, struct error *err)
        __attribute__((warn_unused_result));
