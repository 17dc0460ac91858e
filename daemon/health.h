/* health: GET /healthz (the process answers) and GET /readyz (the database answers and the
 * spool is drained), cheap enough to answer on the HTTP thread while reads queue. */
#pragma once

#include <stdbool.h>

#include "api.h"

/* What query_db is, when it is not db. */
struct health_standby {
        bool separate;          /* query_db is set: the reads have their own pool */
        bool standby;           /* it is in recovery (a streaming standby) */
        double lag_s;           /* its replay lag (lib/store_standby.h), when standby */
};

/* Fills *ret (asking query_db only when separate). 0, or -EIO with err filled. */
int health_standby(const struct api *api, struct health_standby *ret, struct error *err)
        __attribute__((warn_unused_result));

/* GET /healthz: {"status":"ok"}. */
api_handler health_alive;

/* GET /readyz: 200 {"status":"ready",..} or -EAGAIN (503) with {"status":"unavailable",
 * "reason":..} in *ret_body; why the database does not answer is told to api_token holders
 * only. */
api_handler health_ready;
