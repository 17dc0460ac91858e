/* gate: GET /api/v1/changes/{key}/gate?service=&environment=: may a pipeline deploy under
 * this change request now? {"allowed":..,"reason":..}, decided by lib/changectl.c. */
#pragma once

#include "api.h"

/* The handler (api.h's api_handler), routed by daemon/routes.c; req->param is the key. */
api_handler gate_answer;
