/* api: the JSON endpoints other than webhook intake: /healthz, /readyz and /api/v1/... .
 * It sees requests through struct api_request, never the HTTP library. */
#pragma once

#include <jansson.h>
#include <stdbool.h>

struct config;
struct dbpool;
struct replay;
struct writer;

struct api {
        struct dbpool *pool;
        struct writer *writer;
        struct replay *replay;          /* the /api/v1/replay job (daemon/replay.h) */
};

struct api_request {
        const struct config *cfg;               /* the config this request started under */
        const char *method;
        const char *path;                       /* e.g. "/api/v1/deliveries" */
        const char *authorization;              /* the Authorization header, or NULL */
        const char *(*arg)(void *ctx, const char *name); /* a query argument, or NULL */
        void *ctx;
};

/* Runs fn with a pooled database connection; a pooled connection that died with a
 * database restart gets one fresh retry. Returns fn's result, or -EIO. Thread-safe. */
struct error;
struct store;
int api_with_store(const struct api *api, int (*fn)(struct store *, void *, struct error *),
                   void *ctx, struct error *err) __attribute__((warn_unused_result));

/* Whether v is a whole number from 1 to max; then *ret holds it. For query parameters. */
bool api_parse_positive(const char *v, long long max, long long *ret);

/* Answers req: returns the HTTP status and sets *ret_body to a JSON document the caller owns
 * (NULL only on OOM). Thread-safe. */
int api_handle(const struct api *api, const struct api_request *req, json_t **ret_body);
