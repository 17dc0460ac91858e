/* dora: the DORA figures: GET /api/v1/dora (one window) and GET /api/v1/dora/series (day or
 * week buckets), each metric with its band, summed from the API context's mirror of the
 * daily rollups (daemon/mirror.h). */
#pragma once

#include <stdint.h>

#include "api.h"

/* The handlers (api.h's api_handler), routed by daemon/routes.c. */
api_handler dora_figures;       /* GET /api/v1/dora */
api_handler dora_series;        /* GET /api/v1/dora/series?bucket=day|week */

/* A figure's "window" object: {"from", "to", "days"} (days whole when it is a whole number
 * of days). NULL on OOM. */
json_t *dora_window_json(int64_t from_us, int64_t to_us);
