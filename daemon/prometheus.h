/* prometheus: GET /metrics, the Prometheus text exposition: the DORA gauges of every
 * (service, environment) over the last 30 days, summed from the API context's mirror
 * (daemon/mirror.h), then the daemon's own counters and latencies. */
#pragma once

#include <stddef.h>

#include "api.h"

struct error;
struct prometheus;

/* GET /metrics (routes.h's route_metrics_handler). Returns 0 with *ret_metrics (the answer,
 * to read with prometheus_read() and free with prometheus_free(); the caller owns it), or a
 * negative errno with err filled. The figures are summed here; the text is made as it is
 * read, so its size is never held in memory. Thread-safe. */
int prometheus_metrics(const struct api *api, const struct api_request *req,
                       struct prometheus **ret_metrics, struct error *err)
        __attribute__((warn_unused_result));

/* Writes the next at most max bytes of the text into buf. Returns how many; 0 at the end.
 * Not thread-safe on one answer (one reader at a time). */
size_t prometheus_read(struct prometheus *m, char *buf, size_t max);

/* NULL-safe; returns NULL. */
struct prometheus *prometheus_free(struct prometheus *m);
