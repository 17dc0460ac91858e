/* store_review: reading the review's agenda. */
#include "store_review.h"

#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "store.h"

int store_review(struct store *s, const char *service, int64_t from_us, int64_t to_us,
                 const char *envs, char **ret_json, struct error *err) {
        char from[24], to[24];
        const char *params[4] = { service, from, to, envs };
        PGresult *res;
        int r;

        snprintf(from, sizeof(from), "%" PRId64, from_us);
        snprintf(to, sizeof(to), "%" PRId64, to_us);
        *ret_json = NULL;
        res = PQexecParams(store_pgconn(s),
                           "SELECT dl_review($1, $2::bigint, $3::bigint, "
                           "string_to_array($4, ','))",
                           4, NULL, params, NULL, NULL, 0);
        if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
                r = store_error(s, "Reading the review's agenda", err);
                PQclear(res);
                return r;
        }
        *ret_json = strdup(PQgetvalue(res, 0, 0));
        PQclear(res);
        if (!*ret_json)
                return error_set(err, ENOMEM, "unavailable", NULL, "Out of memory");
        return 0;
}
