/* rca: GET /api/v1/rca, the root-cause figures of a window and of the one before it
 * (API.md, "Closing the loop", "Figures"), computed by the store (sql/functions/60_rca.sql). */
#pragma once

#include "api.h"

/* The handler (api.h's api_handler), routed by daemon/routes.c. */
api_handler rca_figures;
