/* params: the shared query parameters of the lists, parsed once here. */
#include "params.h"

#include <errno.h>
#include <stdlib.h>

#include "../lib/error.h"
#include "api.h"

bool params_positive(const char *v, long long max, long long *ret) {
        char *end;
        long long n;

        if (!v || !*v)
                return false;
        errno = 0;
        n = strtoll(v, &end, 10);
        if (errno || *end || n < 1 || n > max)
                return false;
        *ret = n;
        return true;
}

int params_limit(const struct api_request *req, int *ret, struct error *err) {
        const char *v = req->arg(req->ctx, "limit");
        long long n = PARAMS_LIMIT_DEFAULT;

        if (v && !params_positive(v, PARAMS_LIMIT_MAX, &n))
                return error_set(err, EBADMSG, "invalid_parameter", "limit",
                                 "limit: must be a whole number from 1 to %d", PARAMS_LIMIT_MAX);
        *ret = (int) n;
        return 0;
}

int params_cursor(const struct api_request *req, int64_t *ret, struct error *err) {
        const char *v = req->arg(req->ctx, "cursor");
        long long n = 0;

        if (v && !params_positive(v, INT64_MAX, &n))
                return error_set(err, EBADMSG, "invalid_parameter", "cursor",
                                 "cursor: is not one this API gave out");
        *ret = n;
        return 0;
}
