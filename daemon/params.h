/* params: parsing query parameters: the scope every DORA figure and list shares (service,
 * environment, window or from/to, bands), limit and cursor. A refused one is -EBADMSG with
 * err naming it ("name: why"). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../lib/metrics.h"
#include "config.h"

struct api_request;
struct error;

#define PARAMS_ENVS_MAX CONFIG_ENV_LIST_MAX
#define PARAMS_KEY_MAX 255      /* a path's {key} or {id}: longer names nothing stored */

/* A figure's or a list's scope. */
struct params_window {
        const char *service;            /* NULL: all */
        char env_buf[CONFIG_ENV_LIST_MAX_BYTES + 1];
        const char *envs[PARAMS_ENVS_MAX];
        size_t n_envs;
        bool unlinked;                  /* the set holds a production environment */
        char env_label[512];
        int64_t from_us, to_us;
        enum metrics_bands bands;
};

/* service, environment (default: the production environments), window | from/to (default
 * the last 30 days) and bands of req into *p, which holds the lists it points to. */
int params_window(const struct api_request *req, struct params_window *p, struct error *err)
        __attribute__((warn_unused_result));

/* cfg's production_environments as a list in buf (config.c refuses one that would not fit
 * PARAMS_ENVS_MAX items or buf_len). Returns the count. */
size_t params_production(const struct config *cfg, char *buf, size_t buf_len,
                         const char **items);

/* -EBADMSG naming the parameter name and why. */
int params_bad(struct error *err, const char *name, const char *why);

/* -EBADMSG for a time parameter that timefmt_parse() refused with r. */
int params_bad_time(struct error *err, const char *name, int r);

#define PARAMS_LIMIT_DEFAULT 50
#define PARAMS_LIMIT_MAX 500

/* Whether v is a whole number from 1 to max; then *ret holds it. Pure. */
bool params_positive(const char *v, long long max, long long *ret);

/* The request's limit (PARAMS_LIMIT_DEFAULT when absent) into *ret. Returns 0, or -EBADMSG
 * with err naming it ("limit: must be ..."), like every refused parameter. */
int params_limit(const struct api_request *req, int *ret, struct error *err)
        __attribute__((warn_unused_result));

/* The request's numeric cursor (0 when absent) into *ret; -EBADMSG as params_limit(). */
int params_cursor(const struct api_request *req, int64_t *ret, struct error *err)
        __attribute__((warn_unused_result));

/* The path's {..} segment (req->param) into buf (PARAMS_KEY_MAX + 1 bytes). Returns 0, or
 * -ENOENT (404 "No such <what>") when it is longer than PARAMS_KEY_MAX. */
int params_key(const struct api_request *req, char *buf, const char *what, struct error *err)
        __attribute__((warn_unused_result));
