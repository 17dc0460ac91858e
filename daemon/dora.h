/* dora: the DORA read API (GET /api/v1/dora, /dora/series, /services, /deployments[/{id}],
 * /incidents) and GET /metrics. Figures are summed from the API context's mirror of the daily
 * rollups (daemon/mirror.h). */
#pragma once

#include <stddef.h>

#include "api.h"

struct error;

/* The DORA read API's handlers (api.h's api_handler), routed by daemon/routes.c. */
api_handler dora_figures;       /* GET /api/v1/dora */
api_handler dora_series;        /* GET /api/v1/dora/series?bucket=day|week */
api_handler dora_services;      /* GET /api/v1/services */
api_handler dora_deployments;   /* GET /api/v1/deployments */
api_handler dora_incidents;     /* GET /api/v1/incidents */
api_handler dora_deployment;    /* GET /api/v1/deployments/{id}: req->param is the id */

/* GET /metrics. Returns 0 with *ret_metrics (the answer, to read with dora_metrics_read()
 * and free with dora_metrics_free(); the caller owns it), or a negative errno with err
 * filled. The figures are summed here; the text is made as it is read, so its size is never
 * held in memory. Thread-safe. */
struct dora_metrics;
int dora_metrics(const struct api *api, const struct api_request *req,
                 struct dora_metrics **ret_metrics, struct error *err);

/* Writes the next at most max bytes of the Prometheus text into buf. Returns how many;
 * 0 at the end. Not thread-safe on one answer (one reader at a time). */
size_t dora_metrics_read(struct dora_metrics *m, char *buf, size_t max);

/* NULL-safe; returns NULL. */
struct dora_metrics *dora_metrics_free(struct dora_metrics *m);
