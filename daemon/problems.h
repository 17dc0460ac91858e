/* problems: /metrics' doraloop_problems_open{service,known_error} (API.md, "Figures"), the
 * open problems of each service split into known errors and the others. The problem lists
 * are in daemon/lists.c. */
#pragma once

#include "api.h"

struct buf;

/* Appends the gauge, HELP and TYPE first, to out: two lines (known_error "false" and
 * "true") for each service with an open problem. Returns 0, -ENOMEM, or -EIO with err
 * filled. Thread-safe. */
int problems_metrics(const struct api *api, struct buf *out, struct error *err)
        __attribute__((warn_unused_result));
