/* changes: the change-control read API: GET /api/v1/changes, /api/v1/changes/{key} and
 * /api/v1/changes/{key}/gate. */
#pragma once

#include "api.h"

/* The handlers (api.h's api_handler), routed by daemon/routes.c; req->param is the key. */
api_handler changes_list;       /* GET /api/v1/changes */
api_handler changes_one;        /* GET /api/v1/changes/{key}, with its history */
api_handler changes_gate;       /* GET /api/v1/changes/{key}/gate?service=&environment= */
