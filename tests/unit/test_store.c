/* Unit tests for store, against a real PostgreSQL database (tests/test_unit.py makes an
 * empty one and passes its conninfo in DORALOOP_TEST_DB): connecting and its one-line
 * error, the compiled-in migrations applied once, idempotent delivery on (source, id) in
 * and across batches, a redelivery changing no row, what PostgreSQL's refusals map to
 * (-EBADMSG for the rows' content, -EIO for the database's state) with nothing stored of a
 * refused batch, listing, replay with its hooks and skips, the replay lock, and waits
 * behind another session's lock (a timeout -EIO, a deadlock -EAGAIN). */
#include "store.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "delivery.h"
#include "error.h"
#include "event.h"
#include "fixture.h"
#include "migrations.h"
#include "normalize.h"
#include "source.h"
#include "store_dora.h"

#define SHA_A "9f1c2e4b7a0d3e5f61728394a5b6c7d8e9f0a1b2"
#define T0 INT64_C(1715090000000000)    /* 2024-05-07T13:53:20Z, a received_us */

static const struct store_model model = { "production", 24 };

static const char *deployment_body(const char *id, const char *status) {
        static char body[512];

        snprintf(body, sizeof(body),
                 "{\"type\":\"deployment\",\"id\":\"%s\",\"service\":\"api\","
                 "\"environment\":\"production\",\"status\":\"%s\",\"sha\":\"" SHA_A "\","
                 "\"started_at\":\"2024-05-07T14:00:00Z\","
                 "\"finished_at\":\"2024-05-07T14:06:30Z\"}", id, status);
        return body;
}

/* A generic delivery whose only row is a deployment with the given key, bypassing the
 * identifier bounds that intake applies (event_list_check): what PostgreSQL alone refuses. */
static struct delivery *with_key(const char *delivery_id, const char *key) {
        struct delivery *d = fixture_generic(delivery_id, deployment_body("x", "success"), T0);
        struct event *e;

        event_list_clear(&d->events);
        e = event_list_add(&d->events, EVENT_DEPLOYMENT);
        e->deployment.key = strdup(key);
        e->deployment.service = strdup("api");
        e->deployment.environment = strdup("production");
        e->deployment.status = strdup("success");
        return d;
}

/* 3,000 bytes a pglz pass cannot shrink below btree's 2,704-byte row maximum. */
static char *incompressible(size_t n) {
        static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz"
                                       "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        char *s = malloc(n + 1);
        uint32_t x = 12345;

        for (size_t i = 0; i < n; i++) {
                x = x * 1103515245u + 12345u;   /* a fixed LCG: the same bytes every run */
                s[i] = alphabet[(x >> 16) % 62];
        }
        s[n] = '\0';
        return s;
}

static int save(struct store *s, struct delivery **ds, size_t n, struct error *err) {
        return store_save_batch(s, &model, (struct delivery *const *) ds, n, err);
}

static int save_one(struct store *s, struct delivery *d, struct error *err) {
        return save(s, &d, 1, err);
}

static void free_all(struct delivery **ds, size_t n) {
        for (size_t i = 0; i < n; i++)
                delivery_free(ds[i]);
}

/* ---------------------------------------------------------------- reading back */

struct listed {
        int n;
        char ids[16][64], status[16][16], error[16][256];
        int64_t row_id[16];
        int stop_after;                 /* return -ECANCELED at this row (0: never) */
};

static int collect(void *ctx, const struct delivery_row *r) {
        struct listed *l = ctx;

        if (l->stop_after && l->n == l->stop_after)
                return -ECANCELED;
        if (l->n < 16) {
                snprintf(l->ids[l->n], sizeof(l->ids[0]), "%s", r->delivery_id);
                snprintf(l->status[l->n], sizeof(l->status[0]), "%s", r->status);
                snprintf(l->error[l->n], sizeof(l->error[0]), "%s", r->error ? r->error : "");
                l->row_id[l->n] = r->id;
        }
        l->n++;
        return 0;
}

static struct listed list(struct store *s, const char *source, const char *status,
                          int64_t before_id, int limit) {
        struct delivery_filter f = { source, status, before_id, limit };
        struct listed l = { 0 };
        struct error err = { 0 };

        CHECK(store_list_deliveries(s, &f, collect, &l, &err) == l.n);
        return l;
}

struct dep {
        int n;
        char status[8][16];
};

static int collect_status(void *ctx, const struct store_dora_row *r) {
        struct dep *d = ctx;

        for (int c = 0; c < r->n && d->n < 8; c++)
                if (strcmp(r->names[c], "status") == 0)
                        snprintf(d->status[d->n], sizeof(d->status[0]), "%s", r->values[c]);
        d->n++;
        return 0;
}

/* The statuses of api's production deployments, newest first. */
static struct dep deployments(struct store *s) {
        const char *params[5] = { "api", "{production}", NULL, NULL, "8" };
        struct dep d = { 0 };
        struct error err = { 0 };

        CHECK(store_dora_list(s, STORE_DORA_DEPLOYMENTS, params, collect_status, &d, &err) ==
              d.n);
        return d;
}

/* ---------------------------------------------------------------- tests */

/* The compiled-in SQL (lib/migrations.h): numbered, named after their number, with a
 * SHA-256 each; the code files in name order. */
static size_t test_migrations_table(void) {
        size_t n = 0;

        for (; migrations[n].version; n++) {
                const struct migration *m = &migrations[n];

                CHECK(strlen(m->version) == 3 && strncmp(m->name, m->version, 3) == 0);
                CHECK(strlen(m->checksum) == 64 && strspn(m->checksum, "0123456789abcdef") == 64);
                CHECK(m->sql != NULL);
                if (n)
                        CHECK(strcmp(migrations[n - 1].version, m->version) < 0);
        }
        CHECK(n > 0);
        for (size_t i = 0; sql_code[i].name; i++)
                CHECK(!i || strcmp(sql_code[i - 1].name, sql_code[i].name) < 0);
        CHECK(strlen(sql_code_checksum) == 64);
        return n;
}

static void test_connect_error(void) {
        struct store *s = NULL;
        struct error err = { 0 };

        /* Nothing listens on port 1: -EIO, and libpq's two-line message made one line. */
        CHECK(store_open("host=127.0.0.1 port=1 connect_timeout=5", &s, &err) == -EIO);
        CHECK(s == NULL);
        CHECK_STR(err.code, "unavailable");
        CHECK(strncmp(err.msg, "Cannot connect to PostgreSQL: ", 30) == 0);
        CHECK(!strchr(err.msg, '\n') && !strchr(err.msg, '\t') && !strstr(err.msg, "  "));
        CHECK(store_close(NULL) == NULL);
        CHECK(!store_connected(NULL));
}

/* Before the schema exists, a batch is -EIO (the database's state, not the rows: they
 * must wait); then migrate applies every migration once, and again none. */
static struct store *test_migrate(const char *conninfo, size_t n_migrations) {
        struct store *s = NULL;
        struct error err = { 0 };
        struct delivery *d = fixture_generic("early", deployment_body("d-0", "success"), T0);
        static const char *const names[] = { "production_environments" };
        static const char *const values[] = { "production" };

        CHECK(store_open(conninfo, &s, &err) == 0);
        CHECK(store_connected(s) && store_ping(s, &err) == 0);
        CHECK(save_one(s, d, &err) == -EIO);
        CHECK(store_migrate(s, &err) == (int) n_migrations);
        CHECK(store_migrate(s, &err) == 0);
        CHECK(store_configure(s, names, values, 1, &err) == 0);
        CHECK(store_configure(s, names, values, 1, &err) == 0);  /* unchanged: fine */
        /* The failed batch stored nothing, and the connection is usable again. */
        CHECK(list(s, NULL, NULL, 0, 10).n == 0);
        delivery_free(d);
        return s;
}

static void test_idempotence(struct store *s) {
        struct delivery *ds[3] = {
                fixture_generic("d-1", deployment_body("dep-1", "success"), T0),
                fixture_generic("d-2", deployment_body("dep-2", "success"), T0 + 1),
                fixture_generic("d-1", deployment_body("dep-1", "failure"), T0 + 2),
        };
        struct delivery *again = fixture_generic("d-2", deployment_body("dep-2", "failure"),
                                                 T0 + 3);
        struct error err = { 0 };
        struct listed l;
        struct dep dep;

        CHECK(ds[0] && ds[1] && ds[2] && again);
        CHECK_STR(ds[0]->status, "normalized");
        /* One batch holding d-1 twice: the first is stored, the second is a duplicate. */
        CHECK(save(s, ds, 3, &err) == 0);
        CHECK(!ds[0]->duplicate && !ds[1]->duplicate && ds[2]->duplicate);
        /* A later redelivery of d-2 with another body: a duplicate, and its rows are not
         * applied: dep-2 stays "success". */
        CHECK(save_one(s, again, &err) == 0);
        CHECK(again->duplicate);
        l = list(s, "generic", NULL, 0, 10);
        CHECK(l.n == 2);
        CHECK_STR(l.ids[0], "d-2");                     /* newest first */
        CHECK_STR(l.ids[1], "d-1");
        CHECK_STR(l.status[0], "normalized");
        dep = deployments(s);
        CHECK(dep.n == 2);
        CHECK_STR(dep.status[0], "success");
        CHECK_STR(dep.status[1], "success");
        /* The same id under another source is another delivery. */
        again->source = source_find("jenkins");
        event_list_clear(&again->events);
        CHECK(save_one(s, again, &err) == 0 && !again->duplicate);
        CHECK(list(s, NULL, NULL, 0, 10).n == 3);
        CHECK(list(s, "jenkins", NULL, 0, 10).n == 1);
        free_all(ds, 3);
        delivery_free(again);
}

/* What PostgreSQL refuses for the rows' content is -EBADMSG, with nothing of the batch
 * stored (the good delivery beside it neither), and the connection usable after. */
static void test_refusals(struct store *s) {
        char *long_key = incompressible(3000);
        struct delivery *good = fixture_generic("ok-1", deployment_body("dep-3", "success"), T0);
        struct delivery *bad_key = with_key("bad-key", long_key);
        struct delivery *bad_utf8 = fixture_generic("bad-utf8", "{}", T0);
        struct delivery *bad_time = fixture_generic("bad-time", "{}", T0);
        struct delivery *pair[2] = { good, bad_key };
        struct error err = { 0 };
        int before = list(s, NULL, NULL, 0, 100).n;

        /* A key over the btree row limit (SQLSTATE 54000, program_limit_exceeded). */
        CHECK(save(s, pair, 2, &err) == -EBADMSG);
        CHECK(strstr(err.msg, "index row") != NULL);
        CHECK(!strchr(err.msg, '\n'));
        /* Bytes that are not UTF-8 in a body (22021, character_not_in_repertoire). */
        free(bad_utf8->body);
        bad_utf8->body = strdup("{\"type\":\"change\",\"note\":\"\xc3(\"}");
        pair[1] = bad_utf8;
        CHECK(save(s, pair, 2, &err) == -EBADMSG);
        /* A received time PostgreSQL cannot hold (22008, datetime_field_overflow): 9e12 s
         * before 1970 is ~283,000 BC, past its 4713 BC. (As far after is AD 287,000, which
         * it holds: its range ends in AD 294276.) */
        bad_time->received_us = -INT64_C(9000000000000000000);
        pair[1] = bad_time;
        CHECK(save(s, pair, 2, &err) == -EBADMSG);
        CHECK(list(s, NULL, NULL, 0, 100).n == before);
        /* Alone, the good one passes: the refusals left no transaction open. */
        CHECK(save_one(s, good, &err) == 0 && !good->duplicate);
        CHECK(list(s, NULL, NULL, 0, 100).n == before + 1);
        delivery_free(good);
        delivery_free(bad_key);
        delivery_free(bad_utf8);
        delivery_free(bad_time);
        free(long_key);
}

static void test_listing(struct store *s) {
        struct listed all = list(s, NULL, NULL, 0, 100), page, stop = { .stop_after = 1 };
        struct delivery_filter f = { .limit = 100 };
        struct error err = { 0 };

        CHECK(all.n == 4);
        /* limit, then the page before the last id seen */
        page = list(s, NULL, NULL, 0, 2);
        CHECK(page.n == 2 && page.row_id[0] == all.row_id[0] && page.row_id[1] == all.row_id[1]);
        page = list(s, NULL, NULL, page.row_id[1], 2);
        CHECK(page.n == 2 && page.row_id[0] == all.row_id[2]);
        page = list(s, NULL, NULL, all.row_id[3], 2);
        CHECK(page.n == 0);
        CHECK(list(s, "generic", "normalized", 0, 100).n == 3);
        CHECK(list(s, "generic", "error", 0, 100).n == 0);
        CHECK(list(s, "nope", NULL, 0, 100).n == 0);
        /* The callback's error stops the walk and is the answer. */
        CHECK(store_list_deliveries(s, &f, collect, &stop, &err) == -ECANCELED);
        CHECK(stop.n == 1);
}

/* ---------------------------------------------------------------- replay */

struct replay_log {
        int64_t total;
        int progress_calls, skipped;
        size_t chunks[8];
        char skipped_id[64], why[256];
        size_t stop_at;                 /* progress says stop after this many calls */
        const char *poison;             /* the delivery normalized into a refused row */
        char *long_key;
};

static int replay_normalize(struct delivery *d, void *ctx) {
        struct replay_log *log = ctx;
        struct normalize_options o = normalize_defaults();
        int r = delivery_normalize(d, NULL, &o);
        struct event *e;

        if (r == 0 && log->poison && strcmp(d->delivery_id, log->poison) == 0) {
                e = event_list_add(&d->events, EVENT_DEPLOYMENT);
                e->deployment.key = strdup(log->long_key);
                e->deployment.service = strdup("api");
                e->deployment.environment = strdup("production");
                e->deployment.status = strdup("success");
        }
        return r;
}

static void replay_started(void *ctx, int64_t total) {
        ((struct replay_log *) ctx)->total = total;
}

static size_t replay_progress(void *ctx, int64_t done, size_t chunk) {
        struct replay_log *log = ctx;

        (void) done;
        if (log->progress_calls < 8)
                log->chunks[log->progress_calls] = chunk;
        log->progress_calls++;
        return log->stop_at && (size_t) log->progress_calls >= log->stop_at ? 0 : 2;
}

static void replay_skipped(void *ctx, const char *delivery_id, const char *why) {
        struct replay_log *log = ctx;

        log->skipped++;
        snprintf(log->skipped_id, sizeof(log->skipped_id), "%s", delivery_id);
        snprintf(log->why, sizeof(log->why), "%s", why);
}

static void test_replay(struct store *s) {
        struct replay_log log = { .poison = "ok-1", .long_key = incompressible(3000) };
        struct store_replay_hooks h = { .chunk_deliveries = 2, .chunk_first = 1,
                                        .chunk_bytes = 1 << 20, .normalize = replay_normalize,
                                        .started = replay_started, .progress = replay_progress,
                                        .skipped = replay_skipped, .ctx = &log };
        struct error err = { 0 };
        struct listed errors;
        struct dep dep;

        /* 4 deliveries (d-1, d-2, jenkins' d-2, ok-1): chunks of 1 (chunk_first), then 2,
         * then the 1 left. ok-1 is given a row PostgreSQL refuses: skipped, never a reason
         * to stop. */
        CHECK(store_replay(s, &model, &h, &err) == 4);
        CHECK(log.total == 4);
        CHECK(log.progress_calls == 3);
        CHECK(log.chunks[0] == 1 && log.chunks[1] == 2 && log.chunks[2] == 1);
        CHECK(log.skipped == 1);
        CHECK_STR(log.skipped_id, "ok-1");
        CHECK(strstr(log.why, "index row") != NULL);
        /* Marked error: ok-1 for the refusal, and jenkins' d-2 (stored "normalized" with
         * no rows above) because the replay re-derives every status and jenkins cannot
         * read a generic body: its own reason, not the replay's. */
        errors = list(s, NULL, "error", 0, 10);
        CHECK(errors.n == 2);
        CHECK_STR(errors.ids[0], "ok-1");
        CHECK(strncmp(errors.error[0], "Replay could not apply it: ", 27) == 0);
        CHECK_STR(errors.ids[1], "d-2");
        CHECK(*errors.error[1] && strncmp(errors.error[1], "Replay", 6) != 0);
        /* dep-1 and dep-2 again, as first stored (the redeliveries never were); dep-3 was
         * ok-1's and went with it. */
        dep = deployments(s);
        CHECK(dep.n == 2);
        CHECK_STR(dep.status[0], "success");

        /* Stopped after its first chunk: -ECANCELED, and what it did is kept. */
        free(log.long_key);
        log = (struct replay_log) { .stop_at = 1 };
        CHECK(store_replay(s, &model, &h, &err) == -ECANCELED);
        CHECK(log.progress_calls == 1);
        CHECK(strstr(err.msg, "Stopped after 1 of 4") != NULL);
}

static void test_replay_lock(const char *conninfo) {
        struct store *a = NULL, *b = NULL;
        struct error err = { 0 };
        char holder[64] = "unset";
        const struct timespec pause = { 0, 50 * 1000 * 1000 };
        int r;

        CHECK(store_open(conninfo, &a, &err) == 0 && store_open(conninfo, &b, &err) == 0);
        CHECK(store_replay_lock(a, "job-a", NULL, 0, &err) == 1);
        CHECK(store_replay_lock(b, "job-b", holder, sizeof(holder), &err) == 0);
        CHECK_STR(holder, "job-a");
        /* The lock lasts as long as a's connection: closed, b may take it, once a's server
         * process has gone (it ends after the client closes: up to 5 s here). */
        store_close(a);
        for (int i = 0; i < 100 && (r = store_replay_lock(b, "job-b", holder, sizeof(holder),
                                                          &err)) == 0; i++)
                nanosleep(&pause, NULL);
        CHECK(r == 1);
        store_close(b);
}

/* ---------------------------------------------------------------- lock waits */

/* Whether sql's value on conninfo becomes want within 10 s. */
static bool becomes(const char *conninfo, const char *sql, const char *want) {
        const struct timespec pause = { 0, 50 * 1000 * 1000 };
        char got[64];

        for (int i = 0; i < 200; i++) {
                if (fixture_psql_value(conninfo, sql, got, sizeof(got)) == 0 &&
                    strcmp(got, want) == 0)
                        return true;
                nanosleep(&pause, NULL);
        }
        return false;
}

#define EVENTS_RAW_HELD "SELECT count(*) FROM pg_locks WHERE relation = 'events_raw'::regclass " \
                        "AND mode = 'ExclusiveLock' AND granted"
/* "1/1" once the store holds its service lock and waits on a lock (events_raw's). */
#define STORE_WAITS "SELECT (SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' " \
                    "AND classid = 7250 AND granted AND database = (SELECT oid FROM " \
                    "pg_database WHERE datname = current_database())) || '/' || " \
                    "(SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' " \
                    "AND datname = current_database())"

struct saver {
        struct store *s;
        struct delivery *d;
        struct error err;
        int r;
};

static void *save_in_thread(void *arg) {
        struct saver *sv = arg;

        sv->r = save_one(sv->s, sv->d, &sv->err);
        return NULL;
}

/* Waiting behind another session's lock. Past lock_timeout (SQLSTATE 55P03) it is -EIO:
 * nothing is wrong with the rows, they wait. In a deadlock (40P01) it is -EAGAIN: the same
 * batch may pass at once. Neither stores anything; the connection goes on. */
static void test_lock_waits(const char *conninfo) {
        char impatient[1024];
        struct store *s = NULL;
        struct saver sv = { 0 };
        struct error err = { 0 };
        struct delivery *old_d1;
        pthread_t thread;
        FILE *psql;
        bool cycle;
        int before;

        snprintf(impatient, sizeof(impatient), "%s options='-c lock_timeout=200'", conninfo);
        CHECK(store_open(impatient, &s, &err) == 0);
        before = list(s, NULL, NULL, 0, 100).n;
        /* The deadlock's store waits as long as it takes (no lock_timeout). */
        CHECK(store_open(conninfo, &sv.s, &err) == 0);
        sv.d = fixture_generic("waits", deployment_body("dep-9", "success"), T0);
        /* Each store prepares its statements before the lock is taken (preparing the
         * INSERT takes events_raw's lock too): a redelivery of d-1, a duplicate. */
        old_d1 = fixture_generic("d-1", deployment_body("dep-1", "success"), T0);
        CHECK(save_one(s, old_d1, &err) == 0 && old_d1->duplicate);
        CHECK(save_one(sv.s, old_d1, &err) == 0 && old_d1->duplicate);
        delivery_free(old_d1);

        psql = fixture_psql_open(conninfo);
        CHECK(psql != NULL);
        if (!psql)
                return;
        CHECK(fixture_psql_send(psql, "BEGIN; LOCK TABLE events_raw IN EXCLUSIVE MODE;") == 0);
        CHECK(becomes(conninfo, EVENTS_RAW_HELD, "1"));
        CHECK(save_one(s, sv.d, &err) == -EIO);
        CHECK(strstr(err.msg, "lock timeout") != NULL);

        /* The cycle: the store takes its service lock (lock_service in store.c: advisory
         * (7250, hashtext(service))), then waits on events_raw; psql, holding events_raw,
         * asks for that service lock. psql's deadlock_timeout is long, so the store's 1 s
         * one finds the cycle and its statement is the one refused. */
        CHECK(fixture_psql_send(psql, "SET deadlock_timeout = '60s';") == 0);
        CHECK(pthread_create(&thread, NULL, save_in_thread, &sv) == 0);
        cycle = becomes(conninfo, STORE_WAITS, "1/1");
        CHECK(cycle);
        /* Without the store's lock held there is no cycle: psql then ends its transaction
         * first, so that the store's wait (and this test) ends. */
        CHECK(fixture_psql_send(psql, cycle ? "SELECT pg_advisory_xact_lock(7250, "
                                              "hashtext('api'));" : "ROLLBACK;") == 0);
        pthread_join(thread, NULL);
        if (sv.r != -EAGAIN)
                fprintf(stderr, "deadlock: %d %s\n", sv.r, sv.err.msg);
        CHECK(sv.r == -EAGAIN);
        CHECK(strstr(sv.err.msg, "deadlock") != NULL);
        CHECK(fixture_psql_send(psql, "COMMIT;") == 0);
        CHECK(fixture_psql_close(psql) == 0);

        CHECK(list(s, NULL, NULL, 0, 100).n == before);
        CHECK(save_one(sv.s, sv.d, &err) == 0 && !sv.d->duplicate);
        CHECK(list(s, NULL, NULL, 0, 100).n == before + 1);
        delivery_free(sv.d);
        store_close(sv.s);
        store_close(s);
}

int main(int argc, char **argv) {
        const char *conninfo = fixture_db(argc, argv);
        size_t n_migrations = test_migrations_table();
        struct store *s;

        if (!conninfo) {
                fprintf(stderr, "test_store needs an empty database: DORALOOP_TEST_DB=conninfo\n");
                return 2;
        }
        test_connect_error();
        s = test_migrate(conninfo, n_migrations);
        test_idempotence(s);
        test_refusals(s);
        test_listing(s);
        test_replay(s);
        test_replay_lock(conninfo);
        test_lock_waits(conninfo);
        store_close(s);
        return check_summary();
}
