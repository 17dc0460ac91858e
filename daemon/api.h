/* api: the context every JSON handler answers in (struct api, owned by main), the request
 * as handlers see it (never the HTTP library's), the handler's type, and the one retry
 * around a pooled database connection. The routes that call handlers are daemon/routes.c. */
#pragma once

#include <jansson.h>
#include <stddef.h>

struct config;
struct dbpool;
struct error;
struct mirror;
struct notify;
struct replay;
struct store;
struct writer;

struct api {
        struct dbpool *pool;            /* query_db: the reads and the mirror */
        struct dbpool *primary;         /* db: the gate; pool itself when query_db is empty */
        struct notify *notify;          /* other daemons' NOTIFYs (daemon/notify.h), or NULL */
        struct writer *writer;
        struct replay *replay;          /* the /api/v1/replay job (daemon/replay.h) */
        struct mirror *mirror;          /* the rollups' mirror (daemon/mirror.h), owned */
};

struct api_request {
        const struct config *cfg;               /* the config this request started under */
        const char *method;
        const char *path;                       /* e.g. "/api/v1/deliveries" */
        const char *authorization;              /* the Authorization header, or NULL */
        const char *(*arg)(void *ctx, const char *name); /* a query argument, or NULL */
        void *ctx;
        const char *param;      /* the path's {...} segment (routes.h), not NUL-ended */
        size_t param_len;       /* 0: the route has none */
        const char *body;       /* RUNS_WRITE: the request's body, NUL-ended; else NULL */
        size_t body_len;
};

/* A JSON endpoint. Returns 0 (200) or REPLY_ACCEPTED (202, daemon/reply.h) with *ret_body
 * set, or a negative errno with err filled (the route answers it through reply_status())
 * and, where the error carries more than err can (a 409's job, /readyz's reason), its own
 * body in *ret_body. The caller owns *ret_body. Thread-safe. */
typedef int api_handler(const struct api *api, const struct api_request *req,
                        json_t **ret_body, struct error *err);

/* Runs fn with a pooled database connection; a pooled connection that died with a
 * database restart gets one fresh retry. Returns fn's result, or -EIO. Thread-safe. */
int api_with_store(const struct api *api, int (*fn)(struct store *, void *, struct error *),
                   void *ctx, struct error *err) __attribute__((warn_unused_result));

/* The same on the primary (db), for what must not answer from a standby's stale rows. */
int api_with_primary(const struct api *api, int (*fn)(struct store *, void *, struct error *),
                     void *ctx, struct error *err) __attribute__((warn_unused_result));
