/* store: everything doraloop keeps in PostgreSQL, over libpq. */
#include "store.h"

#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "delivery.h"
#include "error.h"
#include "migrations.h"
#include "source.h"

/* Any constant will do; it only has to be the same in every doraloop process. */
#define MIGRATION_LOCK_KEY "7250817342"

struct store {
        PGconn *conn;
        bool prepared;
};

static const char insert_raw_sql[] =
        "INSERT INTO events_raw (source, delivery_id, event, headers, body, received_at) "
        "VALUES ($1, $2, $3, $4, $5, to_timestamp($6::bigint / 1000000.0)) "
        "ON CONFLICT (source, delivery_id) DO NOTHING RETURNING id";

/* Library code never logs: PostgreSQL's notices (e.g. "already exists, skipping") go nowhere. */
static void ignore_notice(void *arg, const char *message) {
        (void) arg;
        (void) message;
}

static int pg_error(struct error *err, PGconn *conn, const char *what) {
        const char *m = PQerrorMessage(conn);
        size_t n = strlen(m);

        while (n && (m[n - 1] == '\n' || m[n - 1] == ' '))
                n--;
        return error_set(err, EIO, "unavailable", NULL, "%s: %.*s", what, (int) n, m);
}

int store_open(const char *conninfo, struct store **ret_store, struct error *err) {
        struct store *s = calloc(1, sizeof(*s));

        if (!s)
                return -ENOMEM;
        s->conn = PQconnectdb(conninfo);
        if (!s->conn || PQstatus(s->conn) != CONNECTION_OK) {
                int r = s->conn ? pg_error(err, s->conn, "Cannot connect to PostgreSQL")
                                : error_set(err, ENOMEM, "unavailable", NULL, "Out of memory");
                store_close(s);
                return r;
        }
        PQsetNoticeProcessor(s->conn, ignore_notice, NULL);
        if (PQsetClientEncoding(s->conn, "UTF8") != 0) {
                int r = pg_error(err, s->conn, "Cannot set client encoding");
                store_close(s);
                return r;
        }
        *ret_store = s;
        return 0;
}

struct store *store_close(struct store *s) {
        if (!s)
                return NULL;
        PQfinish(s->conn);
        free(s);
        return NULL;
}

bool store_connected(const struct store *s) {
        return s && PQstatus(s->conn) == CONNECTION_OK;
}

/* Runs one statement whose rows, if any, do not matter. */
static int exec_command(struct store *s, const char *sql, struct error *err) {
        PGresult *res = PQexec(s->conn, sql);
        int r = 0;

        if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK)
                r = pg_error(err, s->conn, sql);
        PQclear(res);
        return r;
}

int store_ping(struct store *s, struct error *err) {
        PGresult *res = PQexec(s->conn, "SELECT 1");
        int r = PQresultStatus(res) == PGRES_TUPLES_OK ? 0 : pg_error(err, s->conn, "Ping");

        PQclear(res);
        return r;
}

/* Applies one migration unless it is recorded; returns 1 if applied, 0 if not, or -EIO. */
static int migrate_one(struct store *s, const struct migration *m, struct error *err) {
        const char *params[1] = { m->version };
        PGresult *res = NULL;
        int r;

        r = exec_command(s, "BEGIN", err);
        if (r < 0)
                return r;
        r = exec_command(s, "SELECT pg_advisory_xact_lock(" MIGRATION_LOCK_KEY ")", err);
        if (r < 0)
                goto out;
        r = exec_command(s, "CREATE TABLE IF NOT EXISTS schema_migrations ("
                            "version text PRIMARY KEY, "
                            "applied_at timestamptz NOT NULL DEFAULT now())", err);
        if (r < 0)
                goto out;
        res = PQexecParams(s->conn, "SELECT 1 FROM schema_migrations WHERE version = $1",
                           1, NULL, params, NULL, NULL, 0);
        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
                r = pg_error(err, s->conn, "Reading schema_migrations");
                goto out;
        }
        if (PQntuples(res) > 0) {
                r = exec_command(s, "COMMIT", err);
                goto out;
        }
        PQclear(res);
        res = NULL;
        r = exec_command(s, m->sql, err);
        if (r < 0)
                goto out;
        res = PQexecParams(s->conn, "INSERT INTO schema_migrations (version) VALUES ($1)",
                           1, NULL, params, NULL, NULL, 0);
        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
                r = pg_error(err, s->conn, "Recording a migration");
                goto out;
        }
        r = exec_command(s, "COMMIT", err);
        if (r == 0)
                r = 1;
out:
        PQclear(res);
        if (r < 0)
                (void) exec_command(s, "ROLLBACK", NULL);
        return r;
}

int store_migrate(struct store *s, struct error *err) {
        int applied = 0;

        for (const struct migration *m = migrations; m->version; m++) {
                int r = migrate_one(s, m, err);

                if (r < 0)
                        return r;
                applied += r;
        }
        return applied;
}

static int prepare(struct store *s, struct error *err) {
        PGresult *res;
        int r = 0;

        if (s->prepared)
                return 0;
        res = PQprepare(s->conn, "insert_raw", insert_raw_sql, 6, NULL);
        if (PQresultStatus(res) != PGRES_COMMAND_OK)
                r = pg_error(err, s->conn, "Preparing insert_raw");
        PQclear(res);
        s->prepared = r == 0;
        return r;
}

/* Reads the results of one pipelined statement up to its terminating NULL. Returns the
 * number of rows it returned, or -EIO. */
static int pipeline_result(struct store *s, ExecStatusType want, struct error *err) {
        PGresult *res;
        int r = -EIO, rows = 0;
        bool seen = false;

        while ((res = PQgetResult(s->conn))) {
                if (!seen && PQresultStatus(res) == want) {
                        rows = PQntuples(res);
                        r = 0;
                } else if (!seen) {
                        r = pg_error(err, s->conn, "Storing deliveries");
                }
                seen = true;
                PQclear(res);
        }
        return r < 0 ? r : rows;
}

/* All statements go out in one pipeline: one round trip for the whole batch, and the
 * transaction is what makes the batch durable at once (one fsync). */
int store_save_batch(struct store *s, struct delivery *const *ds, size_t n, struct error *err) {
        PGresult *res;
        int r;

        r = prepare(s, err);
        if (r < 0)
                return r;
        if (PQenterPipelineMode(s->conn) != 1)
                return pg_error(err, s->conn, "Entering pipeline mode");
        r = -EIO;
        if (!PQsendQueryParams(s->conn, "BEGIN", 0, NULL, NULL, NULL, NULL, 0))
                goto send_failed;
        for (size_t i = 0; i < n; i++) {
                const struct delivery *d = ds[i];
                char received[24];
                const char *params[6] = {
                        d->source->name, d->delivery_id, d->event, d->headers, d->body, received,
                };

                snprintf(received, sizeof(received), "%" PRId64, d->received_us);
                if (!PQsendQueryPrepared(s->conn, "insert_raw", 6, params, NULL, NULL, 0))
                        goto send_failed;
        }
        if (!PQsendQueryParams(s->conn, "COMMIT", 0, NULL, NULL, NULL, NULL, 0) ||
            !PQpipelineSync(s->conn))
                goto send_failed;

        r = pipeline_result(s, PGRES_COMMAND_OK, err);
        for (size_t i = 0; i < n; i++) {
                int rows = pipeline_result(s, PGRES_TUPLES_OK, r < 0 ? NULL : err);

                if (rows < 0 && r >= 0)
                        r = rows;
                ds[i]->duplicate = rows == 0;
        }
        {
                int c = pipeline_result(s, PGRES_COMMAND_OK, r < 0 ? NULL : err);
                if (c < 0 && r >= 0)
                        r = c;
        }
        res = PQgetResult(s->conn);
        if (PQresultStatus(res) != PGRES_PIPELINE_SYNC && r >= 0)
                r = pg_error(err, s->conn, "Storing deliveries");
        PQclear(res);
        if (PQexitPipelineMode(s->conn) != 1 && r >= 0)
                r = pg_error(err, s->conn, "Leaving pipeline mode");
        return r < 0 ? r : 0;

send_failed:
        r = pg_error(err, s->conn, "Sending deliveries");
        /* The connection is in an unknown state; the caller reconnects. */
        PQreset(s->conn);
        s->prepared = false;
        return r;
}

int store_list_deliveries(struct store *s, const struct delivery_filter *f,
                          int (*row)(void *ctx, const struct delivery_row *r), void *ctx,
                          struct error *err) {
        static const char sql[] =
                "SELECT id, source, delivery_id, event, "
                "to_char(received_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), "
                "status, error FROM events_raw "
                "WHERE ($1::text IS NULL OR source = $1) AND ($2::text IS NULL OR status = $2) "
                "AND ($3::bigint IS NULL OR id < $3) ORDER BY id DESC LIMIT $4";
        char before[24], limit[24];
        const char *params[4] = { f->source, f->status, NULL, limit };
        PGresult *res;
        int r, n;

        if (f->before_id > 0) {
                snprintf(before, sizeof(before), "%" PRId64, f->before_id);
                params[2] = before;
        }
        snprintf(limit, sizeof(limit), "%d", f->limit);
        res = PQexecParams(s->conn, sql, 4, NULL, params, NULL, NULL, 0);
        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
                r = pg_error(err, s->conn, "Listing deliveries");
                PQclear(res);
                return r;
        }
        n = PQntuples(res);
        for (int i = 0; i < n; i++) {
                struct delivery_row dr = {
                        .id = strtoll(PQgetvalue(res, i, 0), NULL, 10),
                        .source = PQgetvalue(res, i, 1),
                        .delivery_id = PQgetvalue(res, i, 2),
                        .event = PQgetvalue(res, i, 3),
                        .received_at = PQgetvalue(res, i, 4),
                        .status = PQgetvalue(res, i, 5),
                        .error = PQgetisnull(res, i, 6) ? NULL : PQgetvalue(res, i, 6),
                };

                r = row(ctx, &dr);
                if (r < 0) {
                        PQclear(res);
                        return r;
                }
        }
        PQclear(res);
        return n;
}
