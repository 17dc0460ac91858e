/* store: everything doraloop keeps in PostgreSQL, over libpq. */
#include "store.h"

#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "delivery.h"
#include "event.h"
#include "error.h"
#include "list.h"
#include "migrations.h"
#include "source.h"

/* Any constant will do; it only has to be the same in every doraloop process. */
#define MIGRATION_LOCK_KEY "7250817342"

struct store {
        PGconn *conn;
        bool prepared;
};

/* The condition that lets PostgreSQL prune events_raw's monthly partitions (sql/014) to the
 * one holding a row whose received_at is `us` (microseconds, as read back): the id alone
 * would probe every month. A millisecond either side absorbs the float in dl_time(). */
#define RAW_ROW_MONTH(us) "AND received_at BETWEEN dl_time(" us "::bigint) - interval '1 ms' " \
                          "AND dl_time(" us "::bigint) + interval '1 ms'"

/* Transient failures met by every connection of the process, each one retried by its
 * caller (store_retries()). */
static atomic_uint_fast64_t retries_serialization, retries_deadlock, retries_unique;

/* Prepared once per connection; the writer pipelines them. */
static const struct statement {
        const char *name, *sql;
        int n_params;
} statements[] = {
        /* events_raw is partitioned by month (sql/014_raw_partitions.sql), so the delivery
         * id is claimed in events_raw_ids: a claimed one stores nothing and returns no row. */
        { "insert_raw",
          "WITH claimed AS (INSERT INTO events_raw_ids (source, delivery_id) VALUES ($1, $2) "
          "ON CONFLICT DO NOTHING RETURNING 1) "
          "INSERT INTO events_raw (source, delivery_id, event, headers, body, received_at, "
          "status, error) SELECT $1, $2, $3, $4, $5, to_timestamp($6::bigint / 1000000.0), "
          "$7, $8 FROM claimed RETURNING id", 8 },
        { "lock_service", "SELECT pg_advisory_xact_lock(7250, hashtext($1))", 1 },
        { "lock_change", "SELECT dl_lock_change($1)", 1 },
        /* received_at ($4, as read back) prunes the monthly partitions to the row's own. */
        { "set_raw_status", "UPDATE events_raw SET status = $2, error = $3 WHERE id = $1 "
          RAW_ROW_MONTH("$4"), 4 },
        { "apply_change", "SELECT dl_apply_change($1, $2, $3, $4, $5, $6, $7, $8, $9)", 9 },
        { "apply_deployment", "SELECT dl_apply_deployment($1, $2, $3, $4, $5, $6, $7, $8, $9, "
          "$10, $11, $12, $13, $14, $15)", 15 },
        { "apply_incident", "SELECT dl_apply_incident($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, "
          "$11, $12, $13, $14, $15, $16)", 16 },
        { "apply_change_request", "SELECT dl_apply_change_request($1, $2, $3, $4, $5, $6, $7, "
          "$8, $9, $10, $11, $12)", 12 },
        { "apply_observation", "SELECT dl_apply_observation($1, $2, $3, $4, $5, $6, $7, $8, "
          "$9, $10, $11, $12, $13, $14)", 14 },
        { "apply_factors", "SELECT dl_apply_factors($1, $2, $3, $4, $5, $6, $7, $8, $9)", 9 },
        { "apply_problem", "SELECT dl_apply_problem($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, "
          "$11, $12)", 12 },
};

/* Library code never logs: PostgreSQL's notices (e.g. "already exists, skipping") go nowhere. */
static void ignore_notice(void *arg, const char *message) {
        (void) arg;
        (void) message;
}

/* libpq's messages span lines ("...failed: ...\n\tIs the server running..."); a log line
 * and a JSON message want one. */
static int pg_error(struct error *err, PGconn *conn, const char *what) {
        const char *m = PQerrorMessage(conn);
        char flat[sizeof(err->msg)];
        size_t n = 0;

        for (; *m && n + 1 < sizeof(flat); m++) {
                bool space = *m == '\n' || *m == '\t' || *m == ' ';

                if (space && (n == 0 || flat[n - 1] == ' '))
                        continue;
                flat[n++] = space ? ' ' : *m;
        }
        while (n && flat[n - 1] == ' ')
                n--;
        flat[n] = '\0';
        return error_set(err, EIO, "unavailable", NULL, "%s: %s", what, flat);
}

int store_error(struct store *s, const char *what, struct error *err) {
        return pg_error(err, s->conn, what);
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

struct pg_conn *store_pgconn(struct store *s) {
        return s->conn;
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

/* Runs one statement whose rows, if any, do not matter, with text parameters. */
static int exec_params(struct store *s, const char *sql, int n, const char *const *params,
                       struct error *err) {
        PGresult *res = PQexecParams(s->conn, sql, n, NULL, params, NULL, NULL, 0);
        int r = 0;

        if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK)
                r = pg_error(err, s->conn, sql);
        PQclear(res);
        return r;
}

/* Runs a file's text; one of only comments (a migration whose code moved out) is fine. */
static int exec_script(struct store *s, const char *name, const char *sql, struct error *err) {
        PGresult *res = PQexec(s->conn, sql);
        ExecStatusType st = PQresultStatus(res);
        int r = 0;

        if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && st != PGRES_EMPTY_QUERY)
                r = pg_error(err, s->conn, name);
        PQclear(res);
        return r;
}

static const struct migration *find_migration(const char *version) {
        for (const struct migration *m = migrations; m->version; m++)
                if (strcmp(m->version, version) == 0)
                        return m;
        return NULL;
}

/* Holds the recorded migrations to the compiled-in files: one whose file changed since it
 * was applied stops the start-up. A row without a checksum (recorded before checksums
 * were kept, by 0.1.0) takes the file's. Marks the recorded ones in `applied`. */
static int check_recorded(struct store *s, bool *applied, struct error *err) {
        PGresult *res = PQexec(s->conn, "SELECT version, checksum FROM schema_migrations");
        int r = 0;

        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
                r = pg_error(err, s->conn, "Reading schema_migrations");
                goto out;
        }
        for (int i = 0; i < PQntuples(res) && r == 0; i++) {
                const struct migration *m = find_migration(PQgetvalue(res, i, 0));
                const char *params[2];

                if (!m)
                        continue;       /* a newer doraloop's: it knows its own */
                applied[m - migrations] = true;
                params[0] = m->version;
                params[1] = m->checksum;
                if (PQgetisnull(res, i, 1))
                        r = exec_params(s, "UPDATE schema_migrations SET checksum = $2 "
                                           "WHERE version = $1", 2, params, err);
                else if (strcmp(PQgetvalue(res, i, 1), m->checksum) != 0)
                        r = error_set(err, EIO, "unavailable", NULL,
                                      "Migration %s was changed after it was applied (recorded "
                                      "sha256 %.16s, the file's %.16s): an applied migration "
                                      "never changes, put the change in a new one",
                                      m->name, PQgetvalue(res, i, 1), m->checksum);
        }
out:
        PQclear(res);
        return r;
}

/* Applies the code (sql/functions/) unless the database already has this very text. */
static int apply_code(struct store *s, bool force, struct error *err) {
        const char *params[1] = { sql_code_checksum };
        PGresult *res;
        bool same;
        int r;

        res = PQexecParams(s->conn, "SELECT 1 FROM schema_code WHERE checksum = $1", 1, NULL,
                           params, NULL, NULL, 0);
        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
                r = pg_error(err, s->conn, "Reading schema_code");
                PQclear(res);
                return r;
        }
        same = PQntuples(res) > 0;
        PQclear(res);
        if (same && !force)
                return 0;
        for (const struct sql_code *c = sql_code; c->name; c++) {
                r = exec_script(s, c->name, c->sql, err);
                if (r < 0)
                        return r;
        }
        r = exec_params(s, "INSERT INTO schema_code (one, checksum) VALUES (true, $1) "
                           "ON CONFLICT (one) DO UPDATE SET checksum = $1, applied_at = now()",
                        1, params, err);
        return r < 0 ? r : 1;
}

/* Everything in one transaction under the advisory lock, so several daemons starting at
 * once apply each migration once and nobody sees half of it: the pending migrations in
 * order, then the code, then what those migrations run after the code. */
static int migrate_locked(struct store *s, bool *applied, struct error *err) {
        int n = 0, r;

        r = exec_script(s, "Preparing schema_migrations",
                        "SELECT pg_advisory_xact_lock(" MIGRATION_LOCK_KEY ");"
                        "CREATE TABLE IF NOT EXISTS schema_migrations ("
                        "  version text PRIMARY KEY,"
                        "  applied_at timestamptz NOT NULL DEFAULT now());"
                        "ALTER TABLE schema_migrations ADD COLUMN IF NOT EXISTS checksum text;"
                        "CREATE TABLE IF NOT EXISTS schema_code ("
                        "  one boolean PRIMARY KEY CHECK (one),"
                        "  checksum text NOT NULL,"
                        "  applied_at timestamptz NOT NULL DEFAULT now())", err);
        if (r == 0)
                r = check_recorded(s, applied, err);
        for (size_t i = 0; r == 0 && migrations[i].version; i++) {
                const struct migration *m = &migrations[i];
                const char *params[2] = { m->version, m->checksum };

                if (applied[i])
                        continue;
                r = exec_script(s, m->name, m->sql, err);
                if (r == 0)
                        r = exec_params(s, "INSERT INTO schema_migrations (version, checksum) "
                                           "VALUES ($1, $2)", 2, params, err);
                n++;
        }
        if (r == 0)
                r = apply_code(s, n > 0, err);
        for (size_t i = 0; r >= 0 && migrations[i].version; i++)
                if (!applied[i] && migrations[i].after)
                        r = exec_script(s, migrations[i].name, migrations[i].after, err);
        return r < 0 ? r : n;
}

int store_migrate(struct store *s, struct error *err) {
        size_t count = 0;
        bool *applied;
        int r;

        while (migrations[count].version)
                count++;
        applied = calloc(count + 1, sizeof(*applied));
        if (!applied)
                return error_set(err, ENOMEM, "unavailable", NULL, "Out of memory");
        r = exec_command(s, "BEGIN", err);
        if (r == 0) {
                r = migrate_locked(s, applied, err);
                if (r >= 0) {
                        int c = exec_command(s, "COMMIT", err);

                        r = c < 0 ? c : r;
                } else {
                        (void) exec_command(s, "ROLLBACK", NULL);
                }
        }
        free(applied);
        return r;
}

int store_configure(struct store *s, const char *const *names, const char *const *values,
                    size_t n, struct error *err) {
        for (size_t i = 0; i < n; i++) {
                const char *params[2] = { names[i], values[i] ? values[i] : "" };
                PGresult *res = PQexecParams(s->conn,
                                             "INSERT INTO dl_settings VALUES ($1, $2) "
                                             "ON CONFLICT (name) DO UPDATE SET value = $2 "
                                             "WHERE dl_settings.value <> $2",
                                             2, NULL, params, NULL, NULL, 0);
                int r = PQresultStatus(res) == PGRES_COMMAND_OK ? 0
                                                                : pg_error(err, s->conn, "Settings");

                PQclear(res);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int prepare(struct store *s, struct error *err) {
        if (s->prepared)
                return 0;
        for (size_t i = 0; i < sizeof(statements) / sizeof(statements[0]); i++) {
                PGresult *res = PQprepare(s->conn, statements[i].name, statements[i].sql,
                                          statements[i].n_params, NULL);
                int r = PQresultStatus(res) == PGRES_COMMAND_OK ? 0 :
                        pg_error(err, s->conn, statements[i].name);

                PQclear(res);
                if (r < 0)
                        return r;
        }
        s->prepared = true;
        return 0;
}

/* What a failed statement's SQLSTATE (PostgreSQL's appendix A) says about the rows it was
 * given. -EBADMSG: PostgreSQL refused them for what they hold (a data exception, a
 * constraint violation, a value over a limit such as an index row's size, a function
 * raising on it): the same rows fail again, whenever they are sent. -EAGAIN: a deadlock,
 * a serialization failure or a race on a unique key, which may well pass at once. -EIO: anything else (a
 * statement_timeout behind someone's lock, a lost connection, too many connections, a
 * shutdown, a full disk, SQL out of step with the schema, no SQLSTATE at all): nothing is
 * wrong with the rows, and they must wait, never be dropped. */
static void count_retry(const char *state) {
        if (strcmp(state, "40P01") == 0)
                atomic_fetch_add(&retries_deadlock, 1);
        else if (strncmp(state, "40", 2) == 0)  /* 40001, and a rollback's other kinds */
                atomic_fetch_add(&retries_serialization, 1);
        else
                atomic_fetch_add(&retries_unique, 1);
}

void store_retries(struct store_retries *ret) {
        ret->serialization = atomic_load(&retries_serialization);
        ret->deadlock = atomic_load(&retries_deadlock);
        ret->unique = atomic_load(&retries_unique);
}

static int sqlstate_errno(const char *state) {
        static const char *const content[] = { "21", "22", "23", "54", "P0" };

        if (!state)
                return -EIO;
        /* A unique or exclusion violation is two writers (or daemons) racing on a key that
         * is not the statement's ON CONFLICT target: the same rows pass once it is settled. */
        if (strncmp(state, "40", 2) == 0 || strcmp(state, "23505") == 0 ||
            strcmp(state, "23P01") == 0) {
                count_retry(state);
                return -EAGAIN;
        }
        for (size_t i = 0; i < sizeof(content) / sizeof(content[0]); i++)
                if (strncmp(state, content[i], 2) == 0)
                        return -EBADMSG;
        return -EIO;
}

/* Reads the results of one pipelined statement up to its terminating NULL. Returns the
 * number of rows it returned, or sqlstate_errno()'s -EBADMSG, -EAGAIN or -EIO. */
static int pipeline_result(struct store *s, ExecStatusType want, struct error *err) {
        PGresult *res;
        int r = -EIO, rows = 0;
        bool seen = false;

        while ((res = PQgetResult(s->conn))) {
                if (!seen && PQresultStatus(res) == want) {
                        rows = PQntuples(res);
                        r = 0;
                } else if (!seen) {
                        (void) pg_error(err, s->conn, "Storing deliveries");
                        r = sqlstate_errno(PQresultErrorField(res, PG_DIAG_SQLSTATE));
                }
                seen = true;
                PQclear(res);
        }
        return r < 0 ? r : rows;
}

/* Text parameters for one pipelined statement; numbers and arrays are formatted into its
 * own buffers so they live until the pipeline is flushed. */
struct params {
        const char *v[16];
        char num[16][24];
        char *owned[4];
        int n, n_owned;
};

static void param(struct params *p, const char *v) {
        p->v[p->n++] = v;
}

static void param_time(struct params *p, int64_t us) {
        if (us == TIME_UNSET) {
                param(p, NULL);
                return;
        }
        snprintf(p->num[p->n], sizeof(p->num[0]), "%" PRId64, us);
        param(p, p->num[p->n]);
}

static void param_bool(struct params *p, bool v) {
        param(p, v ? "t" : "f");
}

/* A PostgreSQL array literal, every element quoted: {"a","b \"c\""}. NULL v gives NULL. */
static int param_array(struct params *p, char *const *v, size_t n) {
        size_t len = 3;
        char *out, *q;

        if (!v) {
                param(p, NULL);
                return 0;
        }
        for (size_t i = 0; i < n; i++)
                len += 3 + 2 * strlen(v[i]);
        out = q = malloc(len);
        if (!out)
                return -ENOMEM;
        *q++ = '{';
        for (size_t i = 0; i < n; i++) {
                if (i)
                        *q++ = ',';
                *q++ = '"';
                for (const char *c = v[i]; *c; c++) {
                        if (*c == '"' || *c == '\\')
                                *q++ = '\\';
                        *q++ = *c;
                }
                *q++ = '"';
        }
        *q++ = '}';
        *q = '\0';
        p->owned[p->n_owned++] = out;
        param(p, out);
        return 0;
}

static void params_free(struct params *p) {
        for (int i = 0; i < p->n_owned; i++)
                free(p->owned[i]);
}

static bool send_prepared(struct store *s, const char *stmt, struct params *p) {
        bool ok = PQsendQueryPrepared(s->conn, stmt, p->n, p->v, NULL, NULL, 0) == 1;

        params_free(p);
        return ok;
}

/* A factor set: its dimensions, categories and roles as three parallel arrays. */
static int send_factors(struct store *s, const char *source, const struct event_factors *f) {
        struct params p = { .n = 0 };
        char **cols[3];
        int r = 0;

        for (int c = 0; c < 3; c++)
                cols[c] = calloc(f->n + 1, sizeof(char *));
        for (size_t i = 0; cols[0] && cols[1] && cols[2] && i < f->n; i++) {
                cols[0][i] = f->items[i].dimension;
                cols[1][i] = f->items[i].category ? f->items[i].category : (char *) "";
                cols[2][i] = f->items[i].role;
        }
        param(&p, source), param(&p, f->subject), param(&p, f->key), param(&p, f->service);
        param_time(&p, f->updated_at);
        for (int c = 0; c < 3 && r == 0; c++)
                r = cols[c] ? param_array(&p, cols[c], f->n) : -ENOMEM;
        if (r == 0)
                r = param_array(&p, f->links, f->n_links);
        for (int c = 0; c < 3; c++)
                free(cols[c]);
        if (r < 0) {
                params_free(&p);
                return -ENOMEM;
        }
        return send_prepared(s, "apply_factors", &p) ? 1 : -EIO;
}

/* The model settings every apply function takes last. */
struct model_params {
        char *production;       /* array literal */
        char window[24];
};

/* Support load: a JSM request or a generic observation (sql/functions/61_support.sql). */
static int send_observation(struct store *s, const char *source,
                            const struct event_observation *o) {
        struct params p = { .n = 0 };

        param(&p, source), param(&p, o->key), param(&p, o->kind), param(&p, o->service);
        param(&p, o->feature), param(&p, o->customer), param(&p, o->summary);
        param(&p, o->url);
        snprintf(p.num[p.n], sizeof(p.num[0]), "%" PRId64, o->count);
        param(&p, p.num[p.n]);
        param_time(&p, o->occurred_at), param_time(&p, o->resolved_at);
        param_time(&p, o->updated_at);
        if (param_array(&p, o->incidents, o->n_incidents) < 0)
                return -ENOMEM;
        param_bool(&p, o->deleted);
        return send_prepared(s, "apply_observation", &p) ? 1 : -EIO;
}

/* A problem's state and its history entry (sql/functions/63_problems.sql); its factors
 * follow as their own event. */
static int send_problem(struct store *s, const struct delivery *d,
                        const struct event_problem *pr) {
        struct params p = { .n = 0 };

        param(&p, d->source->name), param(&p, d->delivery_id), param(&p, pr->key);
        param(&p, pr->service), param(&p, pr->status), param(&p, pr->summary);
        param(&p, pr->workaround);
        param_time(&p, pr->opened_at), param_time(&p, pr->resolved_at);
        param_time(&p, pr->updated_at);
        if (param_array(&p, pr->incidents, pr->n_incidents) < 0)
                return -ENOMEM;
        param_bool(&p, pr->deleted);
        return send_prepared(s, "apply_problem", &p) ? 1 : -EIO;
}

static int send_event(struct store *s, const struct delivery *d, const struct event *e,
                      const struct model_params *mp) {
        const char *source = d->source->name;
        struct params p = { .n = 0 };

        switch (e->kind) {
        case EVENT_CHANGE: {
                const struct event_change *c = &e->change;
                param(&p, c->service), param(&p, c->repo), param(&p, c->sha);
                param(&p, c->branch), param(&p, c->author), param(&p, c->message);
                param_time(&p, c->committed_at);
                param(&p, mp->production), param(&p, mp->window);
                return send_prepared(s, "apply_change", &p) ? 1 : -EIO;
        }
        case EVENT_DEPLOYMENT: {
                const struct event_deployment *dep = &e->deployment;
                param(&p, source), param(&p, dep->key), param(&p, dep->service);
                param(&p, dep->environment), param(&p, dep->status), param(&p, dep->sha);
                param(&p, dep->change_request), param_time(&p, dep->started_at);
                param_time(&p, dep->finished_at), param_time(&p, dep->updated_at);
                param_bool(&p, dep->rollback), param_bool(&p, dep->hotfix);
                if (param_array(&p, dep->commits, dep->n_commits) < 0)
                        return -ENOMEM;
                param(&p, mp->production), param(&p, mp->window);
                return send_prepared(s, "apply_deployment", &p) ? 1 : -EIO;
        }
        case EVENT_INCIDENT: {
                const struct event_incident *i = &e->incident;
                param(&p, source), param(&p, i->key), param(&p, i->service);
                param(&p, i->title), param(&p, i->status), param(&p, i->severity);
                param(&p, i->root_cause), param(&p, i->caused_by_deployment);
                param(&p, i->caused_by_sha), param(&p, i->change_request);
                param_time(&p, i->opened_at), param_time(&p, i->resolved_at);
                param_time(&p, i->updated_at);
                param(&p, mp->production), param(&p, mp->window);
                if (param_array(&p, i->customers, i->n_customers) < 0)
                        return -ENOMEM;
                return send_prepared(s, "apply_incident", &p) ? 1 : -EIO;
        }
        case EVENT_CHANGE_REQUEST: {
                const struct event_change_request *c = &e->change_request;
                param(&p, source), param(&p, d->delivery_id), param(&p, c->key);
                param(&p, c->title), param(&p, c->status), param(&p, c->change_type);
                param(&p, c->risk);
                if (param_array(&p, c->services, c->n_services) < 0)
                        return -ENOMEM;
                param_time(&p, c->planned_start), param_time(&p, c->planned_end);
                param_time(&p, c->updated_at);
                param(&p, c->actor);
                return send_prepared(s, "apply_change_request", &p) ? 1 : -EIO;
        }
        case EVENT_OBSERVATION:
                return send_observation(s, source, &e->observation);
        case EVENT_FACTORS:
                return send_factors(s, source, &e->factors);
        case EVENT_PROBLEM:
                return send_problem(s, d, &e->problem);
        case _EVENT_MAX:
                break;
        }
        return 0;
}

/* The services an event's rows belong to: the locks it needs. A change request governs
 * the deployments of the services it lists. */
static size_t event_services(const struct event *e, const char **out) {
        switch (e->kind) {
        case EVENT_CHANGE: out[0] = e->change.service; return 1;
        case EVENT_DEPLOYMENT: out[0] = e->deployment.service; return 1;
        case EVENT_INCIDENT: out[0] = e->incident.service; return 1;
        case EVENT_OBSERVATION: out[0] = e->observation.service; return 1;
        case EVENT_FACTORS: out[0] = e->factors.service; return 1;
        case EVENT_PROBLEM: out[0] = e->problem.service; return 1;
        case EVENT_CHANGE_REQUEST:
                for (size_t i = 0; i < e->change_request.n_services; i++)
                        out[i] = e->change_request.services[i];
                return e->change_request.n_services;
        case _EVENT_MAX:
                break;
        }
        return 0;
}

static size_t event_service_count(const struct event *e) {
        return e->kind == EVENT_CHANGE_REQUEST ? e->change_request.n_services : 1;
}

/* For qsort: strings, NULLs first. */
static int cmp_str(const void *a, const void *b) {
        const char *x = *(const char *const *) a, *y = *(const char *const *) b;

        return !x || !y ? (x != NULL) - (y != NULL) : strcmp(x, y);
}

/* The change-request key a row names (a change request's own, a deployment's explicit
 * one), or NULL. */
static const char *event_change_key(const struct event *e) {
        if (e->kind == EVENT_CHANGE_REQUEST)
                return e->change_request.key;
        if (e->kind == EVENT_DEPLOYMENT)
                return e->deployment.change_request;
        return NULL;
}

/* Sends `statement` once for each distinct name, in sorted order; names may hold NULLs
 * (skipped). Returns statements sent, or -EIO. */
static int send_sorted_locks(struct store *s, const char *statement, const char **names,
                             size_t n) {
        const char *last = NULL;
        int sent = 0;

        qsort(names, n, sizeof(*names), cmp_str);
        for (size_t i = 0; i < n; i++) {
                struct params p = { .n = 0 };

                if (!names[i] || (last && strcmp(names[i], last) == 0))
                        continue;
                last = names[i];
                param(&p, names[i]);
                if (!send_prepared(s, statement, &p))
                        return -EIO;
                sent++;
        }
        return sent;
}

/* Locks every service the batch touches, then every change request it names, each in
 * sorted order, so two writers applying rows of one service, or judging deployments
 * against one change request while another changes it, serialize and never deadlock on
 * these. Returns statements sent, or -errno. */
static int send_locks(struct store *s, struct delivery *const *ds, size_t n) {
        const char **names;
        size_t total = 0, k = 0, events = 0;
        int sent, more;

        for (size_t i = 0; i < n; i++)
                for (size_t j = 0; j < ds[i]->events.n; j++, events++)
                        total += event_service_count(&ds[i]->events.items[j]);
        if (!total && !events)
                return 0;
        names = malloc((total > events ? total : events) * sizeof(*names));
        if (!names)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                for (size_t j = 0; j < ds[i]->events.n; j++)
                        k += event_services(&ds[i]->events.items[j], names + k);
        for (size_t i = 0; i < k; i++)  /* a row without a service locks nothing */
                if (!names[i])
                        names[i] = "";
        sent = send_sorted_locks(s, "lock_service", names, k);
        k = 0;
        for (size_t i = 0; i < n && sent >= 0; i++)
                for (size_t j = 0; j < ds[i]->events.n; j++)
                        names[k++] = event_change_key(&ds[i]->events.items[j]);
        more = sent < 0 ? sent : send_sorted_locks(s, "lock_change", names, k);
        free(names);
        return more < 0 ? more : sent + more;
}

static int model_params_init(struct model_params *mp, const struct store_model *m) {
        const char *envs = m->production_environments ? m->production_environments : "";
        size_t len = strlen(envs) + 1;
        char *list = malloc(len), *items[64];
        struct params p = { .n = 0 };
        int n, r;

        if (!list)
                return -ENOMEM;
        n = list_split(envs, list, len, (const char **) items, 64);
        if (n < 0) {
                free(list);
                return n;
        }
        r = param_array(&p, items, (size_t) n);
        free(list);
        if (r < 0)
                return r;
        mp->production = p.owned[0];
        snprintf(mp->window, sizeof(mp->window), "%ld", m->incident_link_window_hours);
        return 0;
}

/* Reads one statement's results; the first failure is kept in *r and err. */
static int read_one(struct store *s, ExecStatusType want, int *r, struct error *err) {
        int got = pipeline_result(s, want, *r < 0 ? NULL : err);

        if (got < 0 && *r == 0)
                *r = got;
        return got;
}

/* Reads the pipeline's sync point; anything else there means the results are out of
 * step with the statements. */
static void read_sync(struct store *s, int *r, struct error *err) {
        PGresult *res = PQgetResult(s->conn);

        if (PQresultStatus(res) != PGRES_PIPELINE_SYNC && *r == 0)
                *r = pg_error(err, s->conn, "Storing deliveries");
        PQclear(res);
}

/* The first half of a live batch, up to a sync point: BEGIN, the locks, each delivery's
 * raw insert. Returns the number of locks sent, or a negative errno. */
static int send_inserts(struct store *s, struct delivery *const *ds, size_t n) {
        int n_locks;

        if (!PQsendQueryParams(s->conn, "BEGIN", 0, NULL, NULL, NULL, NULL, 0))
                return -EIO;
        n_locks = send_locks(s, ds, n);
        if (n_locks < 0)
                return n_locks;
        for (size_t i = 0; i < n; i++) {
                const struct delivery *d = ds[i];
                struct params p = { .n = 0 };

                param(&p, d->source->name), param(&p, d->delivery_id);
                param(&p, d->event), param(&p, d->headers), param(&p, d->body);
                param_time(&p, d->received_us);
                param(&p, d->status ? d->status : "received"), param(&p, d->error);
                if (!send_prepared(s, "insert_raw", &p))
                        return -EIO;
        }
        return PQpipelineSync(s->conn) == 1 ? n_locks : -EIO;
}

/* Reads the first half's results and sets each delivery's duplicate flag: the insert of a
 * delivery stored before (or earlier in the batch) returns no row. Returns 0 or a negative
 * errno (err filled from the first failure). */
static int read_inserts(struct store *s, struct delivery *const *ds, size_t n, int n_locks,
                        struct error *err) {
        int r = 0;

        read_one(s, PGRES_COMMAND_OK, &r, err); /* BEGIN */
        for (int i = 0; i < n_locks; i++)
                read_one(s, PGRES_TUPLES_OK, &r, err);
        for (size_t i = 0; i < n; i++)
                ds[i]->duplicate = read_one(s, PGRES_TUPLES_OK, &r, err) == 0;
        read_sync(s, &r, err);
        return r;
}

/* Whether the batch applies a delivery's rows: a replay applies every one; a live batch
 * only those its insert stored, so a redelivery changes nothing whatever its body says. */
static bool applies(const struct delivery *d, bool replay) {
        return replay || !d->duplicate;
}

/* Each delivery's rows (a replay first takes the writers' locks, since it runs beside
 * them, and updates each delivery's status), the refresh of the rollups they touched and,
 * live, COMMIT, up to a sync point. Returns the number of locks sent, or -errno. */
static int send_rows(struct store *s, struct delivery *const *ds, size_t n,
                     const struct model_params *mp, bool replay) {
        int n_locks = replay ? send_locks(s, ds, n) : 0;

        if (n_locks < 0)
                return n_locks;
        for (size_t i = 0; i < n; i++) {
                const struct delivery *d = ds[i];

                if (replay) {
                        struct params p = { .n = 0 };

                        param_time(&p, d->raw_id);
                        param(&p, d->status), param(&p, d->error);
                        param_time(&p, d->received_us);
                        if (!send_prepared(s, "set_raw_status", &p))
                                return -EIO;
                }
                for (size_t j = 0; applies(d, replay) && j < d->events.n; j++)
                        if (send_event(s, d, &d->events.items[j], mp) < 0)
                                return -EIO;
        }
        /* The DORA rollups of every (service, environment, day) the batch touched. */
        /* ...and the word to every daemon's listener (daemon/notify.c) that rows changed,
         * sent at COMMIT, once per transaction whatever the batch holds. */
        if (!PQsendQueryParams(s->conn, "SELECT dl_refresh_rollups(), pg_notify('"
                               STORE_NOTIFY_CHANNEL "', '')", 0, NULL, NULL, NULL, NULL, 0))
                return -EIO;
        if (!replay && !PQsendQueryParams(s->conn, "COMMIT", 0, NULL, NULL, NULL, NULL, 0))
                return -EIO;
        return PQpipelineSync(s->conn) == 1 ? n_locks : -EIO;
}

/* Reads what send_rows() sent. Returns 0 or a negative errno (err filled from the first
 * failure). */
static int read_rows(struct store *s, struct delivery *const *ds, size_t n, bool replay,
                     int n_locks, struct error *err) {
        int r = 0;

        for (int i = 0; i < n_locks; i++)
                read_one(s, PGRES_TUPLES_OK, &r, err);
        for (size_t i = 0; i < n; i++) {
                if (replay)
                        read_one(s, PGRES_COMMAND_OK, &r, err); /* status update */
                for (size_t j = 0; applies(ds[i], replay) && j < ds[i]->events.n; j++)
                        read_one(s, PGRES_TUPLES_OK, &r, err);
        }
        read_one(s, PGRES_TUPLES_OK, &r, err); /* dl_refresh_rollups(), pg_notify() */
        if (!replay)
                read_one(s, PGRES_COMMAND_OK, &r, err); /* COMMIT */
        read_sync(s, &r, err);
        return r;
}

/* One pipelined transaction for the whole batch, and one fsync. A live batch goes in two
 * round trips: BEGIN, the service locks and each delivery's raw insert; then, knowing
 * which inserts stored a row, the rows of those deliveries only and COMMIT. A replay runs
 * inside the caller's transaction and updates each delivery's status instead of inserting
 * it, in one round trip. */
static int run_batch(struct store *s, const struct store_model *m, struct delivery *const *ds,
                     size_t n, bool replay, struct error *err) {
        struct model_params mp = { 0 };
        int r, sent;

        r = prepare(s, err);
        if (r < 0)
                return r;
        r = model_params_init(&mp, m);
        if (r < 0)
                return error_set(err, r, "unavailable", NULL, "Out of memory");
        if (PQenterPipelineMode(s->conn) != 1) {
                free(mp.production);
                return pg_error(err, s->conn, "Entering pipeline mode");
        }
        r = 0;
        if (!replay) {
                sent = send_inserts(s, ds, n);
                if (sent < 0)
                        goto send_failed;
                r = read_inserts(s, ds, n, sent, err);
        }
        if (r == 0) {
                sent = send_rows(s, ds, n, &mp, replay);
                if (sent < 0)
                        goto send_failed;
                r = read_rows(s, ds, n, replay, sent, err);
        }
        free(mp.production);
        if (PQexitPipelineMode(s->conn) != 1 && r == 0)
                r = pg_error(err, s->conn, "Leaving pipeline mode");
        /* A failed statement leaves the pipeline's COMMIT unsent (aborted), so the
         * transaction is still open: end it, or the connection refuses all that follows. */
        if (r < 0 && !replay && store_connected(s))
                (void) exec_command(s, "ROLLBACK", NULL);
        return r;

send_failed:
        free(mp.production);
        (void) pg_error(err, s->conn, "Sending deliveries");
        /* The connection is in an unknown state; the caller reconnects. */
        return -EIO;
}

int store_save_batch(struct store *s, const struct store_model *m, struct delivery *const *ds,
                     size_t n, struct error *err) {
        return run_batch(s, m, ds, n, false, err);
}

/* ------------------------------------------------------------------ replay */

/* The session advisory lock that makes a replay one at a time across every daemon on the
 * database (a two-key lock: no clash with the migrations' one-key lock, nor with
 * lock_service's (7250, hash) keys). */
#define REPLAY_LOCK_SQL "7251, 0"
#define REPLAY_APP_PREFIX "doraloop replay "
#define REPLAY_TRUNCATE_TRIES 60        /* of lock_timeout each: a minute at most */

int store_replay_lock(struct store *s, const char *job, char *ret_holder, size_t holder_len,
                      struct error *err) {
        char app[64];
        const char *params[1] = { app };
        PGresult *res;
        int r;

        /* The job's name rides on application_name, so another daemon refused the lock
         * can say which job holds it. */
        snprintf(app, sizeof(app), REPLAY_APP_PREFIX "%s", job);
        r = exec_params(s, "SELECT set_config('application_name', $1, false)", 1, params, err);
        if (r < 0)
                return r;
        res = PQexec(s->conn, "SELECT pg_try_advisory_lock(" REPLAY_LOCK_SQL ")");
        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
                r = pg_error(err, s->conn, "Taking the replay lock");
                PQclear(res);
                return r;
        }
        r = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
        PQclear(res);
        if (r || !ret_holder || !holder_len)
                return r;
        snprintf(ret_holder, holder_len, "%s", "");
        res = PQexec(s->conn, "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a "
                              "ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted "
                              "AND l.classid = 7251 AND l.objid = 0 AND l.objsubid = 2 "
                              "AND l.database = (SELECT oid FROM pg_database "
                              "WHERE datname = current_database())");
        if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) > 0 &&
            strncmp(PQgetvalue(res, 0, 0), REPLAY_APP_PREFIX, strlen(REPLAY_APP_PREFIX)) == 0)
                snprintf(ret_holder, holder_len, "%s",
                         PQgetvalue(res, 0, 0) + strlen(REPLAY_APP_PREFIX));
        PQclear(res);
        return 0;
}

/* Whether the failure of res is a wait that ran out (lock_timeout), worth another try. */
static bool lock_timed_out(const PGresult *res) {
        const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);

        return state && strcmp(state, "55P03") == 0;
}

/* How many deliveries have ids up to last; a count takes as long as the history. */
static int count_upto(struct store *s, int64_t last, int64_t *ret, struct error *err) {
        char upto[24];
        const char *params[1] = { upto };
        PGresult *res;
        int r = exec_command(s, "BEGIN; SET LOCAL statement_timeout = 0", err);

        if (r < 0)
                return r;
        snprintf(upto, sizeof(upto), "%" PRId64, last);
        res = PQexecParams(s->conn, "SELECT count(*) FROM events_raw WHERE id <= $1", 1, NULL,
                           params, NULL, NULL, 0);
        if (PQresultStatus(res) == PGRES_TUPLES_OK)
                *ret = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        else
                r = pg_error(err, s->conn, "Counting deliveries");
        PQclear(res);
        (void) exec_command(s, r < 0 ? "ROLLBACK" : "COMMIT", NULL);
        return r;
}

/* Empties the normalized tables and reads the range to replay: every delivery committed
 * by then (the writers apply what commits later themselves, on the emptied tables). The
 * TRUNCATE waits for a lock that every writer's transaction queues behind, so each try
 * waits 1 s at most (a long read holding the tables), not the whole intake; and what it
 * holds the lock for is O(1): dl_rollups is truncated with the rest (its trigger would
 * otherwise DELETE every row), and the count comes after. */
static int replay_reset(struct store *s, int64_t *ret_last, int64_t *ret_total,
                        struct error *err) {
        static const char sql[] =
                "BEGIN; SET LOCAL lock_timeout = '1s'; "
                "TRUNCATE deployment_changes, deployment_commits, incidents, deployments, "
                "service_environments, changes, change_requests, change_request_history, "
                "dl_rollups, observations, support_daily, rca_sets, rca_factors, rca_links, "
                "rca_daily, problems, problem_history; "
                "SELECT coalesce(max(id), 0) FROM events_raw";

        for (int attempt = 1;; attempt++) {
                PGresult *res = PQexec(s->conn, sql);
                int r = 0;

                if (PQresultStatus(res) == PGRES_TUPLES_OK) {
                        *ret_last = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
                        PQclear(res);
                        r = exec_command(s, "COMMIT", err);
                        return r < 0 ? r : count_upto(s, *ret_last, ret_total, err);
                }
                if (!lock_timed_out(res) || attempt == REPLAY_TRUNCATE_TRIES)
                        r = pg_error(err, s->conn, "Emptying the normalized tables");
                PQclear(res);
                (void) exec_command(s, "ROLLBACK", NULL);
                if (r < 0)
                        return r;
        }
}

/* Loads the next chunk after *cursor (up to `last`): at most max_n deliveries whose bodies
 * add up to at most max_bytes, though always the first one whatever its size. The sizes
 * come from the TOAST headers, so the bodies left out are never read. Returns how many
 * went into ds (0 at the end), or -EIO / -ENOMEM. */
static int load_chunk(struct store *s, int64_t *cursor, int64_t last, size_t max_n,
                      size_t max_bytes, struct delivery **ds, struct error *err) {
        char after[24], upto[24], n_text[24], bytes_text[24];
        const char *params[4] = { after, upto, n_text, bytes_text };
        PGresult *res;
        int n;

        snprintf(after, sizeof(after), "%" PRId64, *cursor);
        snprintf(upto, sizeof(upto), "%" PRId64, last);
        snprintf(n_text, sizeof(n_text), "%zu", max_n);
        snprintf(bytes_text, sizeof(bytes_text), "%zu", max_bytes);
        res = PQexecParams(s->conn,
                           "WITH c AS (SELECT id, octet_length(body) AS len FROM events_raw "
                           "WHERE id > $1 AND id <= $2 ORDER BY id LIMIT $3), "
                           "w AS (SELECT id, sum(len) OVER (ORDER BY id) - len AS before FROM c) "
                           "SELECT e.id, e.source, e.delivery_id, e.event, e.body, "
                           "(extract(epoch FROM e.received_at) * 1000000)::bigint "
                           "FROM w JOIN events_raw e USING (id) WHERE w.before < $4::bigint "
                           "ORDER BY e.id", 4, NULL, params, NULL, NULL, 0);
        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
                n = pg_error(err, s->conn, "Reading deliveries");
                PQclear(res);
                return n;
        }
        n = PQntuples(res);
        for (int i = 0; i < n; i++) {
                struct delivery *d = calloc(1, sizeof(*d));

                if (d) {
                        d->raw_id = strtoll(PQgetvalue(res, i, 0), NULL, 10);
                        d->source = source_find(PQgetvalue(res, i, 1));
                        d->delivery_id = strdup(PQgetvalue(res, i, 2));
                        d->event = strdup(PQgetvalue(res, i, 3));
                        d->body_len = (size_t) PQgetlength(res, i, 4);
                        d->body = strdup(PQgetvalue(res, i, 4));
                        d->received_us = strtoll(PQgetvalue(res, i, 5), NULL, 10);
                }
                if (!d || !d->delivery_id || !d->event || !d->body) {
                        delivery_free(d);
                        for (int j = 0; j < i; j++)
                                ds[j] = delivery_free(ds[j]);
                        PQclear(res);
                        return error_set(err, ENOMEM, "unavailable", NULL, "Out of memory");
                }
                ds[i] = d;
                *cursor = d->raw_id;
        }
        PQclear(res);
        return n;
}

/* Applies n deliveries in one transaction of their own; a deadlock with a writer is tried
 * again. Returns 0, or run_batch's error with the transaction rolled back. */
static int apply_in_transaction(struct store *s, const struct store_model *m,
                                struct delivery *const *ds, size_t n, struct error *err) {
        int r = -EAGAIN;

        for (int attempt = 0; r == -EAGAIN && attempt < 3; attempt++) {
                r = exec_command(s, "BEGIN", err);
                if (r == 0)
                        r = run_batch(s, m, ds, n, true, err);
                if (r == 0)
                        r = exec_command(s, "COMMIT", err);
                if (r < 0 && store_connected(s))
                        (void) exec_command(s, "ROLLBACK", NULL);
        }
        return r;
}

/* Marks a delivery the replay could not apply as error, with why, for GET
 * /api/v1/deliveries?status=error; the next replay tries it again. */
static int mark_skipped(struct store *s, const struct delivery *d, const char *why,
                        struct error *err) {
        char id[24], msg[sizeof(err->msg) + 32], received[24];
        const char *params[3] = { id, msg, received };

        snprintf(id, sizeof(id), "%" PRId64, d->raw_id);
        snprintf(msg, sizeof(msg), "Replay could not apply it: %s", why);
        snprintf(received, sizeof(received), "%" PRId64, d->received_us);
        return exec_params(s, "UPDATE events_raw SET status = 'error', error = $2 WHERE id = $1 "
                              RAW_ROW_MONTH("$3"), 3, params, err);
}

static int skip(struct store *s, const struct store_replay_hooks *h, const struct delivery *d,
                const char *why, struct error *err) {
        int r = mark_skipped(s, d, why, err);

        if (r == 0 && h->skipped)
                h->skipped(h->ctx, d->delivery_id, why);
        return r;
}

/* One chunk: normalized, then applied in one transaction; when PostgreSQL refuses it for
 * a row's content, each delivery alone, skipping (and reporting) those it refuses. Only a
 * lost connection or no memory stops it. */
static int replay_chunk(struct store *s, const struct store_model *m,
                        const struct store_replay_hooks *h, struct delivery **ds, size_t n,
                        struct error *err) {
        size_t k = 0;
        int r;

        for (size_t i = 0; i < n; i++) {
                struct delivery *d = ds[i];

                if (!d->source) {
                        r = skip(s, h, d, "its source is not one this version knows", err);
                        if (r < 0)
                                return r;
                        continue;
                }
                r = h->normalize(d, h->ctx);
                if (r < 0)
                        return error_set(err, -r, "unavailable", NULL, "Out of memory");
                /* The ones to apply go first; swapped, so the caller still frees all. */
                ds[i] = ds[k];
                ds[k++] = d;
        }
        if (k == 0)
                return 0;
        r = apply_in_transaction(s, m, ds, k, err);
        if (r == 0 || r == -ENOMEM || !store_connected(s))
                return r;
        for (size_t i = 0; i < k; i++) {
                struct error one = { 0 };

                r = apply_in_transaction(s, m, &ds[i], 1, &one);
                if (r == -ENOMEM || !store_connected(s)) {
                        *err = one;
                        return r;
                }
                if (r < 0) {
                        r = skip(s, h, ds[i], one.msg, err);
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

int store_replay(struct store *s, const struct store_model *m,
                 const struct store_replay_hooks *h, struct error *err) {
        size_t max_n = h->chunk_deliveries ? h->chunk_deliveries : 1;
        struct delivery **ds = calloc(max_n, sizeof(*ds));
        int64_t cursor = 0, last = 0, total = 0, done = 0;
        size_t chunk = h->chunk_first && h->chunk_first < max_n ? h->chunk_first : max_n;
        int r;

        if (!ds)
                return error_set(err, ENOMEM, "unavailable", NULL, "Out of memory");
        r = replay_reset(s, &last, &total, err);
        if (r == 0 && h->started)
                h->started(h->ctx, total);
        while (r == 0) {
                int n = load_chunk(s, &cursor, last, chunk, h->chunk_bytes, ds, err);

                if (n <= 0) {
                        r = n;
                        break;
                }
                r = replay_chunk(s, m, h, ds, (size_t) n, err);
                for (int i = 0; i < n; i++)
                        ds[i] = delivery_free(ds[i]);
                done += n;
                if (r == 0 && h->progress) {
                        chunk = h->progress(h->ctx, done, (size_t) n);
                        if (chunk > max_n)
                                chunk = max_n;
                        if (chunk == 0)
                                r = error_set(err, ECANCELED, "unavailable", NULL,
                                              "Stopped after %" PRId64 " of %" PRId64
                                              " deliveries", done, total);
                }
        }
        free(ds);
        return r < 0 ? r : (int) (done < INT32_MAX ? done : INT32_MAX);
}

int store_list_deliveries(struct store *s, const struct delivery_filter *f, store_row_fn *row,
                          void *ctx, struct error *err) {
        static const char sql[] =
                "SELECT id, source, delivery_id, event, "
                "to_char(received_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), "
                "status, error FROM events_raw "
                "WHERE ($1::text IS NULL OR source = $1) AND ($2::text IS NULL OR status = $2) "
                "AND ($3::bigint IS NULL OR id < $3) ORDER BY id DESC LIMIT $4";
        char before[24], limit[24];
        const char *params[4] = { f->source, f->status, NULL, limit };
        /* The answer's names (the SQL names its time column "to_char"). */
        static const char *const names[] = { "id", "source", "delivery_id", "event",
                                              "received_at", "status", "error" };

        if (f->before_id > 0) {
                snprintf(before, sizeof(before), "%" PRId64, f->before_id);
                params[2] = before;
        }
        snprintf(limit, sizeof(limit), "%d", f->limit);
        return store_rows(s, sql, 4, params, "nssssss", names, row, ctx, "Listing deliveries",
                          err);
}

/* The columns of a row, at most this many. */
#define ROW_COLUMNS_MAX 32

int store_rows(struct store *s, const char *sql, int n, const char *const *params,
               const char *kinds, const char *const *names, store_row_fn *row, void *ctx,
               const char *what, struct error *err) {
        const char *own_names[ROW_COLUMNS_MAX], *values[ROW_COLUMNS_MAX];
        PGresult *res = PQexecParams(s->conn, sql, n, NULL, params, NULL, NULL, 0);
        struct store_row sr = { .values = values, .kinds = kinds };
        int r = 0, rows;

        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
                r = pg_error(err, s->conn, what);
                PQclear(res);
                return r;
        }
        rows = PQntuples(res);
        sr.n = PQnfields(res);
        if (sr.n > ROW_COLUMNS_MAX || (size_t) sr.n != strlen(kinds)) {
                PQclear(res);
                return error_set(err, EIO, "unavailable", NULL, "%s: unexpected columns", what);
        }
        for (int c = 0; c < sr.n && !names; c++)
                own_names[c] = PQfname(res, c);
        sr.names = names ? names : own_names;
        for (int i = 0; i < rows && r == 0; i++) {
                for (int c = 0; c < sr.n; c++)
                        values[c] = PQgetisnull(res, i, c) ? NULL : PQgetvalue(res, i, c);
                r = row(ctx, &sr);
        }
        PQclear(res);
        return r < 0 ? r : rows;
}

static PGresult *read_from(struct store *s, const char *sql, uint64_t xmin, const char *what,
                           struct error *err) {
        char from[24];
        const char *params[1] = { from };
        PGresult *res;

        snprintf(from, sizeof(from), "%" PRIu64, xmin);
        res = PQexecParams(s->conn, sql, 1, NULL, params, NULL, NULL, 0);
        if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) < 1) {
                pg_error(err, s->conn, what);
                PQclear(res);
                return NULL;
        }
        return res;
}

int store_read_since(struct store *s, const char *sql, int64_t epoch, uint64_t xmin,
                     void (*reset)(void *ctx, int64_t epoch), void *ctx, const char *what,
                     PGresult **ret, uint64_t *ret_xmin, struct error *err) {
        PGresult *res = read_from(s, sql, epoch ? xmin : 0, what, err);
        int64_t got;

        if (!res)
                return -EIO;
        got = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        if (got != epoch) {
                if (epoch && xmin) { /* a TRUNCATE since: read everything */
                        PQclear(res);
                        res = read_from(s, sql, 0, what, err);
                        if (!res)
                                return -EIO;
                        got = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
                }
                reset(ctx, got);
        }
        *ret_xmin = strtoull(PQgetvalue(res, 0, 1), NULL, 10);
        *ret = res;
        return 0;
}

/* ------------------------------------------------------------------ raw retention */

/* Runs one upkeep call (a function of 60_raw_partitions.sql) with n text parameters in a
 * transaction of its own. Returns its result (the caller clears it) or NULL with err
 * filled and no transaction left open. */
static PGresult *upkeep_call(struct store *s, const char *sql, int n, const char *const *params,
                             const char *what, struct error *err) {
        PGresult *res;

        if (exec_command(s, "BEGIN; SET LOCAL lock_timeout = '2s'", err) < 0)
                return NULL;
        res = PQexecParams(s->conn, sql, n, NULL, params, NULL, NULL, 0);
        if (PQresultStatus(res) == PGRES_TUPLES_OK && exec_command(s, "COMMIT", err) == 0)
                return res;
        if (PQresultStatus(res) != PGRES_TUPLES_OK)
                (void) pg_error(err, s->conn, what);
        PQclear(res);
        if (store_connected(s))
                (void) exec_command(s, "ROLLBACK", NULL);
        return NULL;
}

int store_raw_partitions(struct store *s, int64_t now_us, int ahead, struct error *err) {
        char now[24], months[24];
        const char *params[2] = { now, months };
        PGresult *res;
        int n;

        snprintf(now, sizeof(now), "%" PRId64, now_us);
        snprintf(months, sizeof(months), "%d", ahead);
        res = upkeep_call(s, "SELECT coalesce(dl_raw_partitions(dl_time($1::bigint), $2::int), 0)",
                          2, params, "Creating events_raw's partitions", err);
        if (!res)
                return -EIO;
        n = (int) strtol(PQgetvalue(res, 0, 0), NULL, 10);
        PQclear(res);
        return n;
}

int store_raw_drop_oldest(struct store *s, int64_t cutoff_us, char *ret_month,
                          size_t month_len, int64_t *ret_rows, struct error *err) {
        char cutoff[24];
        const char *params[1] = { cutoff };
        PGresult *res;
        int r;

        snprintf(cutoff, sizeof(cutoff), "%" PRId64, cutoff_us);
        res = upkeep_call(s, "SELECT month, deliveries FROM dl_raw_drop_oldest(dl_time($1::bigint))",
                          1, params, "Dropping a month of events_raw", err);
        if (!res)
                return -EIO;
        r = PQntuples(res) > 0;
        if (r) {
                snprintf(ret_month, month_len, "%s", PQgetvalue(res, 0, 0));
                *ret_rows = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
        }
        PQclear(res);
        return r;
}
