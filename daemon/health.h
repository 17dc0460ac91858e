/* health: GET /healthz (the process answers) and GET /readyz (the database answers and the
 * spool is drained), cheap enough to answer on the HTTP thread while reads queue. */
#pragma once

#include "api.h"

/* GET /healthz: {"status":"ok"}. */
api_handler health_alive;

/* GET /readyz: 200 {"status":"ready",..} or -EAGAIN (503) with {"status":"unavailable",
 * "reason":..} in *ret_body; why the database does not answer is told to api_token holders
 * only. */
api_handler health_ready;
