/* dora: the DORA figures: GET /api/v1/dora (one window) and GET /api/v1/dora/series (day or
 * week buckets), each metric with its band, summed from the API context's mirror of the
 * daily rollups (daemon/mirror.h). */
#pragma once

#include "api.h"

/* The handlers (api.h's api_handler), routed by daemon/routes.c. */
api_handler dora_figures;       /* GET /api/v1/dora */
api_handler dora_series;        /* GET /api/v1/dora/series?bucket=day|week */
