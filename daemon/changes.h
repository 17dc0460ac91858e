/* changes: the change-control read API: GET /api/v1/changes, /api/v1/changes/{key} and
 * /api/v1/changes/{key}/gate. */
#pragma once

#include <jansson.h>
#include <stdbool.h>

struct api;
struct api_request;

/* Whether path is one changes_handle() answers. */
bool changes_path(const char *path);

/* Answers a GET on a changes_path(); authorization is the caller's. Returns the HTTP status
 * and sets *ret_body (the caller's; NULL only on OOM). Thread-safe. */
int changes_handle(const struct api *api, const struct api_request *req, json_t **ret_body);
