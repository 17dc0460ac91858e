/* params: parsing the query parameters every list shares: a whole number, limit, cursor. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

struct api_request;
struct error;

#define PARAMS_LIMIT_DEFAULT 50
#define PARAMS_LIMIT_MAX 500

/* Whether v is a whole number from 1 to max; then *ret holds it. Pure. */
bool params_positive(const char *v, long long max, long long *ret);

/* The request's limit (PARAMS_LIMIT_DEFAULT when absent) into *ret. Returns 0, or -EBADMSG
 * with err naming it ("limit: must be ..."), like every refused parameter. */
int params_limit(const struct api_request *req, int *ret, struct error *err)
        __attribute__((warn_unused_result));

/* The request's numeric cursor (0 when absent) into *ret; -EBADMSG as params_limit(). */
int params_cursor(const struct api_request *req, int64_t *ret, struct error *err) __attribute__((warn_unused_result));
