/* support: support load, GET /api/v1/support (API.md, "Figures"): support requests and
 * observations of one window, from the store's daily support rollup and the window's rows,
 * divided by the DORA deployment count of the mirror (daemon/mirror.h). */
#pragma once

#include "api.h"

/* The handler (api.h's api_handler), routed by daemon/routes.c. */
api_handler support_figures;    /* GET /api/v1/support */
