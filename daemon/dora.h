/* dora: the DORA read API (GET /api/v1/dora, /dora/series, /services, /deployments[/{id}],
 * /incidents) and GET /metrics. Figures come from an in-memory mirror of the daily rollups
 * (lib/cube.c), brought up to date with one small query per request burst, so a query costs
 * O(days in the window) and never scans events except those of its two edge days. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

struct api;
struct api_request;

/* Tells the read side that this process committed a delivery, so the next answer reads the
 * rollups again. Call it after COMMIT, before acknowledging. Lock-free, thread-safe. */
void dora_data_changed(void);

/* Whether path is one of the endpoints dora_handle() answers. */
bool dora_path(const char *path);

/* Answers a GET on a dora_path(); authorization is the caller's. Returns the HTTP status and
 * sets *ret_body to a JSON document the caller owns (NULL only on OOM). Thread-safe. */
int dora_handle(const struct api *api, const struct api_request *req, json_t **ret_body);

/* GET /metrics (checks api_token itself). Returns the HTTP status with either *ret_metrics
 * (the answer, to read with dora_metrics_read() and free with dora_metrics_free(); the
 * caller owns it) or *ret_error (a JSON error the caller owns). The figures are summed
 * here; the text is made as it is read, so its size is never held in memory. Thread-safe. */
struct dora_metrics;
int dora_metrics(const struct api *api, const struct api_request *req,
                 struct dora_metrics **ret_metrics, json_t **ret_error);

/* Writes the next at most max bytes of the Prometheus text into buf. Returns how many;
 * 0 at the end. Not thread-safe on one answer (one reader at a time). */
size_t dora_metrics_read(struct dora_metrics *m, char *buf, size_t max);

/* NULL-safe; returns NULL. */
struct dora_metrics *dora_metrics_free(struct dora_metrics *m);
