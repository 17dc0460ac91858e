/* deliveries: GET /api/v1/deliveries, the raw deliveries as stored, newest first, to answer
 * "why was my webhook not counted". */
#pragma once

#include "api.h"

/* Filters source and status, paged by limit and cursor. */
api_handler deliveries_list;
