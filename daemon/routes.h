/* routes: the one route table. Every request is matched here once its headers are in:
 * a path no route has is a 404, a method its path does not take a 405 (with the methods to
 * Allow), a missing or wrong token for the route's auth class (auth.h) a 401; then the
 * route says where its answer is made and by which handler. Adding an endpoint is one line
 * of the table in routes.c and its handler. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "api.h"
#include "auth.h"

struct config;
struct prometheus;
struct error;

enum route_runs {
        RUNS_INTAKE,    /* a webhook: http.c's intake; the source checks its credential */
        RUNS_PAGE,      /* the dashboard page (daemon/dashboard.h), on the HTTP thread */
        RUNS_NOW,       /* a cheap JSON answer on the HTTP thread: it must answer while reads
                         * queue (the health probes) */
        RUNS_READ,      /* a JSON answer made on a read thread (daemon/readpool.h) */
        RUNS_WRITE,     /* the same, from a JSON body read whole first (at most
                         * max_body_bytes; api_request.body) */
        RUNS_METRICS,   /* the Prometheus text: summed on a read thread, streamed */
        RUNS_IMPORT,    /* an NDJSON body fed as it streams (daemon/import.h), on the HTTP
                         * thread, into the writers */
};

/* GET /metrics' handler (daemon/prometheus.h): 0 with *ret_metrics, or a negative
 * errno with err filled. */
typedef int route_metrics_handler(const struct api *api, const struct api_request *req,
                                  struct prometheus **ret_metrics, struct error *err);

struct route {
        const char *method;     /* "GET" (which answers HEAD too) or "POST" */
        const char *pattern;    /* "/api/v1/changes/{key}/gate": {..} is one segment,
                                 * {..+} one or more */
        enum route_auth auth;
        enum route_runs runs;
        api_handler *json;                      /* RUNS_NOW, RUNS_READ, RUNS_WRITE */
        route_metrics_handler *metrics;         /* RUNS_METRICS */
};

/* What routes_decide() found. */
struct route_match {
        const struct route *route;
        size_t param_at, param_len;     /* the {..} segment within the path; len 0: none */
        char allow[32];                 /* after a 405: the Allow header's value */
};

/* Matches method and path (the request's, decoded) and checks authorization (the
 * Authorization header, or NULL) against the route's auth class under cfg. Returns 0 with
 * ret->route set, or -ENOENT (no route has path), -EOPNOTSUPP (ret->allow lists the methods
 * path takes) or -EACCES, with err filled. Pure but for cfg; thread-safe. */
int routes_decide(const char *method, const char *path, const struct config *cfg,
                  const char *authorization, struct route_match *ret, struct error *err)
        __attribute__((warn_unused_result));

/* How an answer's body is sent. */
enum route_form {
        FORM_JSON,              /* *ret_body, dumped */
        FORM_MARKDOWN,          /* the text of the JSON string *ret_body (REPLY_MARKDOWN) */
        FORM_JSON_TEXT,         /* likewise, JSON written by the handler (REPLY_JSON_TEXT) */
};

/* Answers req with m's JSON handler (RUNS_NOW, RUNS_READ, RUNS_WRITE), req->path being the
 * path m was decided on. Returns the HTTP status; *ret_body is a JSON document the caller
 * owns (NULL only on OOM), sent as *ret_form says, and err holds the refusal when the status
 * is not 2xx. Thread-safe. */
unsigned routes_answer(const struct route_match *m, const struct api *api,
                       const struct api_request *req, json_t **ret_body,
                       enum route_form *ret_form, struct error *err);
