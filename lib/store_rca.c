/* store_rca: reading the root-cause figures. */
#include "store_rca.h"

#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "store.h"

int store_rca(struct store *s, const char *service, int64_t from_us, int64_t to_us,
              char **ret_window, char **ret_previous, struct error *err) {
        static const char sql[] =
                "SELECT dl_rca_fast($1, $2::bigint, $3::bigint), "
                "dl_rca_fast($1, $4::bigint, $2::bigint)";
        char from[24], to[24], before[24];
        const char *params[4] = { service, from, to, before };
        PGresult *res;
        int r = 0;

        snprintf(from, sizeof(from), "%" PRId64, from_us);
        snprintf(to, sizeof(to), "%" PRId64, to_us);
        snprintf(before, sizeof(before), "%" PRId64, from_us - (to_us - from_us));
        *ret_window = *ret_previous = NULL;
        res = PQexecParams(store_pgconn(s), sql, 4, NULL, params, NULL, NULL, 0);
        if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
                r = store_error(s, "Reading the root-cause figures", err);
                PQclear(res);
                return r;
        }
        *ret_window = strdup(PQgetvalue(res, 0, 0));
        *ret_previous = strdup(PQgetvalue(res, 0, 1));
        PQclear(res);
        if (!*ret_window || !*ret_previous) {
                free(*ret_window), free(*ret_previous);
                *ret_window = *ret_previous = NULL;
                return error_set(err, ENOMEM, "unavailable", NULL, "Out of memory");
        }
        return 0;
}

int store_rca_by_dimension(struct store *s, int64_t from_us, int64_t to_us,
                           store_rca_count_fn *fn, void *ctx, struct error *err) {
        char from[24], to[24];
        const char *params[2] = { from, to };
        PGresult *res;
        int r = 0;

        snprintf(from, sizeof(from), "%" PRId64, from_us);
        snprintf(to, sizeof(to), "%" PRId64, to_us);
        res = PQexecParams(store_pgconn(s), "SELECT * FROM dl_rca_by_dimension($1, $2)", 2,
                           NULL, params, NULL, NULL, 0);
        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
                r = store_error(s, "Reading the incidents by dimension", err);
                PQclear(res);
                return r;
        }
        for (int i = 0; i < PQntuples(res) && r == 0; i++)
                r = fn(ctx, PQgetvalue(res, i, 0), PQgetvalue(res, i, 1),
                       strtoll(PQgetvalue(res, i, 2), NULL, 10));
        PQclear(res);
        return r;
}

int store_rca_reference(struct store *s, const char *service, int64_t from_us, int64_t to_us,
                        char **ret_json, struct error *err) {
        char from[24], to[24];
        const char *params[3] = { service, from, to };
        PGresult *res;

        snprintf(from, sizeof(from), "%" PRId64, from_us);
        snprintf(to, sizeof(to), "%" PRId64, to_us);
        *ret_json = NULL;
        res = PQexecParams(store_pgconn(s), "SELECT dl_rca($1, $2::bigint, $3::bigint)", 3,
                           NULL, params, NULL, NULL, 0);
        if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
                int r = store_error(s, "Reading the root-cause reference", err);

                PQclear(res);
                return r;
        }
        *ret_json = strdup(PQgetvalue(res, 0, 0));
        PQclear(res);
        return *ret_json ? 0 : error_set(err, ENOMEM, "unavailable", NULL, "Out of memory");
}
