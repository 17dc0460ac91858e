/* store_standby: pg_is_in_recovery() and the replay lag, over libpq. */
#include "store_standby.h"

#include <errno.h>
#include <libpq-fe.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "store.h"

/* Caught up (received = replayed, nothing in flight) is 0 whatever the age of the last
 * transaction: an idle primary sends nothing to replay. */
#define LAG_SQL                                                                          \
        "SELECT pg_is_in_recovery(), CASE WHEN NOT pg_is_in_recovery() THEN 0 "          \
        "WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0 "              \
        "ELSE coalesce(greatest(extract(epoch FROM now() - "                              \
        "pg_last_xact_replay_timestamp()), 0), 0) END::float8"

int store_standby_lag(struct store *s, bool *ret_standby, double *ret_lag_s,
                      struct error *err) {
        PGconn *conn = store_pgconn(s);
        PGresult *res = PQexec(conn, LAG_SQL);
        int r = 0;

        if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
                const char *m = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);

                r = error_set(err, EIO, "unavailable", NULL, "Replica lag: %s",
                              m ? m : PQerrorMessage(conn));
        } else {
                *ret_standby = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
                *ret_lag_s = strtod(PQgetvalue(res, 0, 1), NULL);
        }
        PQclear(res);
        return r;
}
