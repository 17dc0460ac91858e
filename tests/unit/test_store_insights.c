/* Unit tests for store_insights, against a real PostgreSQL database (DORALOOP_TEST_DB, made
 * by tests/test_unit.py): data saved through the store as generic deliveries at times
 * relative to now (the upkeep's window ends now), then the upkeep's claim of the services
 * the ingest marked, the recompute and its count of insights written, the stored list
 * (ranked, filtered, paged) and the live one, one insight with its decisions, the gauge by
 * status, marking again, a new version when the weights change the score, a decision's four
 * outcomes (decided, unchanged, conflict, unknown) with an accept's outbox row, a callback's
 * error stopping each walk and a database refusal as -EIO.
 *
 * api: three support requests (counts 2, 2, 1; acme, globex; feature cards) in the last two
 *   days, none before: support_spike/api and support_spike/api/cards, each impact 0.5 x 5 =
 *   2.5 h, reach 2, confidence 0.5 (one kind of evidence), score 2.5 x 2 x 0.5 = 2.50.
 * web: three production deployments in the last three days, each causing a 1 h incident:
 *   failing_changes/web, impact 3 h + 1 x 3 failed = 6 h, reach 1, confidence 0.8
 *   (incidents and deployments), score 4.80. */
#include "store_insights.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "delivery.h"
#include "error.h"
#include "fixture.h"
#include "store.h"

#define US INT64_C(1000000)
#define SHA "\"sha\":\"3333333333333333333333333333333333333333\""

static const struct store_insight_weights weights = { 7, "0.5", "1" };
static time_t now;
static const char *conninfo;

/* RFC 3339 of now minus hours, into a static slot (four at a time). */
static const char *ago(double hours) {
        static char slots[4][32];
        static int next;
        char *out = slots[next++ % 4];
        time_t t = now - (time_t) (hours * 3600);
        struct tm tm;

        gmtime_r(&t, &tm);
        strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
        return out;
}

static int save(struct store *s, const char *id, const char *body) {
        return fixture_save(s, id, body, (int64_t) now * US);
}

static void load(struct store *s) {
        static const struct { const char *key, *customer; int count; double hours; } obs[] = {
                { "O1", "acme", 2, 40 }, { "O2", "globex", 2, 20 }, { "O3", "acme", 1, 2 },
        };
        char body[1024], id[16];

        for (size_t i = 0; i < 3; i++) {
                snprintf(body, sizeof(body), "{\"type\":\"observation\",\"id\":\"%s\","
                         "\"kind\":\"support\",\"service\":\"api\",\"feature\":\"cards\","
                         "\"customer\":\"%s\",\"count\":%d,\"occurred_at\":\"%s\"}",
                         obs[i].key, obs[i].customer, obs[i].count, ago(obs[i].hours));
                snprintf(id, sizeof(id), "o-%zu", i);
                CHECK(save(s, id, body) == 0);
        }
        for (int i = 1; i <= 3; i++) {
                double h = 24.0 * i;

                snprintf(body, sizeof(body), "{\"type\":\"deployment\",\"id\":\"W%d\","
                         "\"service\":\"web\",\"environment\":\"production\",\"status\":"
                         "\"success\"," SHA ",\"started_at\":\"%s\",\"finished_at\":\"%s\"}",
                         i, ago(h + 0.1), ago(h));
                snprintf(id, sizeof(id), "d-%d", i);
                CHECK(save(s, id, body) == 0);
                snprintf(body, sizeof(body), "{\"type\":\"incident\",\"id\":\"I-W%d\","
                         "\"service\":\"web\",\"status\":\"resolved\",\"opened_at\":\"%s\","
                         "\"resolved_at\":\"%s\",\"caused_by\":{\"deployment\":\"W%d\"}}",
                         i, ago(h - 0.5), ago(h - 1.5), i);
                snprintf(id, sizeof(id), "i-%d", i);
                CHECK(save(s, id, body) == 0);
        }
}

/* The rows a walk gave, their first column as text and their last parsed when JSON. */
struct rows {
        int fail_at;
        json_t *first, *items;
        const char *kinds;
};

static int keep_row(void *ctx, const struct store_row *r) {
        struct rows *l = ctx;
        const char *last = r->values[r->n - 1];

        if ((int) json_array_size(l->first) + 1 == l->fail_at)
                return -EPIPE;
        json_array_append_new(l->first, json_string(r->values[0] ? r->values[0] : ""));
        json_array_append_new(l->items, last && r->kinds[r->n - 1] == 'j'
                              ? json_loads(last, 0, NULL) : json_string(last ? last : ""));
        l->kinds = r->kinds;
        return 0;
}

static void rows_reset(struct rows *l, int fail_at) {
        json_decref(l->first);
        json_decref(l->items);
        *l = (struct rows) { .fail_at = fail_at, .first = json_array(), .items = json_array() };
}

static void rows_free(struct rows *l) {
        json_decref(l->first);
        json_decref(l->items);
}

static const char *first(const struct rows *l, size_t i) {
        return json_string_value(json_array_get(l->first, i));
}

static double num(const json_t *o, const char *key) {
        return json_number_value(json_object_get(o, key));
}

static void test_claim_and_refresh(struct store *s) {
        struct rows l = { 0 };
        struct error err = { 0 };

        /* the ingest marked both services (its rollups' triggers) */
        rows_reset(&l, 0);
        CHECK(store_insights_claim(s, 10, keep_row, &l, &err) == 2);
        CHECK_STR(l.kinds, "s");
        CHECK_STR(first(&l, 0), "api");
        CHECK_STR(first(&l, 1), "web");
        rows_reset(&l, 0);
        CHECK(store_insights_claim(s, 10, keep_row, &l, &err) == 0);    /* taken off */

        CHECK(store_insights_refresh(s, "api", &weights, &err) == 2);
        CHECK(store_insights_refresh(s, "web", &weights, &err) == 1);
        CHECK(store_insights_refresh(s, "api", &weights, &err) == 0);   /* nothing new */
        CHECK(store_insights_refresh(s, "nothing-here", &weights, &err) == 0);
        rows_free(&l);
}

static void test_list(struct store *s) {
        struct store_insight_query q = { .limit = 10 };
        struct rows l = { 0 };
        struct error err = { 0 };
        const json_t *top, *spike, *parts, *ev;

        rows_reset(&l, 0);
        CHECK(store_insights_list(s, &q, keep_row, &l, &err) == 3);
        CHECK_STR(l.kinds, "sj");
        /* highest score first, then id */
        CHECK_STR(first(&l, 0), "failing_changes/web");
        CHECK_STR(first(&l, 1), "support_spike/api");
        CHECK_STR(first(&l, 2), "support_spike/api/cards");
        top = json_array_get(l.items, 0);
        CHECK(fabs(num(top, "score") - 4.8) < 1e-9);
        parts = json_object_get(top, "parts");
        CHECK(fabs(num(parts, "impact_hours") - 6.0) < 1e-9);
        CHECK(num(parts, "reach") == 1 && num(parts, "recurrence") == 0);
        CHECK(fabs(num(parts, "confidence") - 0.8) < 1e-9);
        ev = json_object_get(top, "evidence");
        CHECK(json_array_size(json_object_get(ev, "incidents")) == 3);
        CHECK(json_array_size(json_object_get(ev, "deployments")) == 3);
        CHECK(json_array_size(json_object_get(ev, "observations")) == 0);
        CHECK_STR(json_string_value(json_object_get(top, "status")), "new");
        CHECK_STR(json_string_value(json_object_get(top, "rule")), "failing_changes");
        CHECK(json_integer_value(json_object_get(top, "version")) == 1);
        spike = json_array_get(l.items, 1);
        CHECK(fabs(num(spike, "score") - 2.5) < 1e-9);
        CHECK(num(json_object_get(spike, "parts"), "reach") == 2);
        CHECK(fabs(num(json_object_get(spike, "parts"), "confidence") - 0.5) < 1e-9);
        ev = json_object_get(spike, "evidence");
        CHECK(json_array_size(json_object_get(ev, "observations")) == 3);
        CHECK_STR(json_string_value(json_array_get(json_object_get(ev, "observations"), 0)),
                  "O1");
        CHECK(json_is_null(json_object_get(spike, "feature")));
        CHECK_STR(json_string_value(json_object_get(json_array_get(l.items, 2), "feature")),
                  "cards");

        /* filters and the cursor */
        q.service = "api";
        rows_reset(&l, 0);
        CHECK(store_insights_list(s, &q, keep_row, &l, &err) == 2);
        q.service = NULL, q.rule = "failing_changes";
        CHECK(store_insights_list(s, &q, keep_row, &l, &err) == 1);
        q.rule = NULL, q.status = "accepted";
        CHECK(store_insights_list(s, &q, keep_row, &l, &err) == 0);
        q.status = NULL, q.after = "support_spike/api";
        rows_reset(&l, 0);
        CHECK(store_insights_list(s, &q, keep_row, &l, &err) == 1);
        CHECK_STR(first(&l, 0), "support_spike/api/cards");
        q.after = NULL, q.limit = 1;
        CHECK(store_insights_list(s, &q, keep_row, &l, &err) == 1);

        /* live: the same window computed now; a window before the data holds none */
        q = (struct store_insight_query) { .limit = 10, .live = true, .weights = &weights,
                                           .from_us = ((int64_t) now - 7 * 86400) * US,
                                           .to_us = ((int64_t) now + 1) * US };
        rows_reset(&l, 0);
        CHECK(store_insights_list(s, &q, keep_row, &l, &err) == 3);
        CHECK_STR(first(&l, 0), "failing_changes/web");
        CHECK_STR(json_string_value(json_object_get(json_array_get(l.items, 0), "status")),
                  "new");
        q.service = "web";
        CHECK(store_insights_list(s, &q, keep_row, &l, &err) == 1);
        q.service = NULL;
        q.from_us -= 30 * 86400 * US, q.to_us -= 30 * 86400 * US;
        CHECK(store_insights_list(s, &q, keep_row, &l, &err) == 0);

        q = (struct store_insight_query) { .limit = 10 };
        rows_reset(&l, 2);
        CHECK(store_insights_list(s, &q, keep_row, &l, &err) == -EPIPE);
        rows_free(&l);
}

static void test_get_and_status(struct store *s) {
        struct rows l = { 0 };
        struct error err = { 0 };
        const json_t *item;

        rows_reset(&l, 0);
        CHECK(store_insight_get(s, "support_spike/api", keep_row, &l, &err) == 1);
        CHECK_STR(l.kinds, "j");
        item = json_array_get(l.items, 0);
        CHECK_STR(json_string_value(json_object_get(item, "id")), "support_spike/api");
        CHECK_STR(json_string_value(json_object_get(item, "service")), "api");
        CHECK(json_is_array(json_object_get(item, "decisions")));
        CHECK(json_array_size(json_object_get(item, "decisions")) == 0);
        CHECK(json_is_array(json_object_get(item, "exports")));
        CHECK(store_insight_get(s, "no/such", keep_row, &l, &err) == 0);
        CHECK(json_array_size(l.items) == 1);

        /* the gauge: all four statuses, in order */
        rows_reset(&l, 0);
        CHECK(store_insights_by_status(s, keep_row, &l, &err) == 4);
        CHECK_STR(l.kinds, "sn");
        CHECK_STR(first(&l, 0), "new");
        CHECK_STR(json_string_value(json_array_get(l.items, 0)), "3");
        CHECK_STR(first(&l, 3), "delivered");
        CHECK_STR(json_string_value(json_array_get(l.items, 3)), "0");
        rows_reset(&l, 1);
        CHECK(store_insights_by_status(s, keep_row, &l, &err) == -EPIPE);
        rows_free(&l);
}

static void test_mark(struct store *s) {
        struct rows l = { 0 };
        struct error err = { 0 };

        CHECK(store_insights_mark(s, "api", &err) == 0);
        CHECK(store_insights_mark(s, "api", &err) == 0);        /* once is enough */
        rows_reset(&l, 0);
        CHECK(store_insights_claim(s, 10, keep_row, &l, &err) == 1);
        CHECK_STR(first(&l, 0), "api");
        /* every service that may hold one: web deploys, api has support (and insights) */
        CHECK(store_insights_mark_all(s, 7, &err) == 2);
        CHECK(store_insights_mark_all(s, 7, &err) == 0);        /* already marked */
        rows_reset(&l, 0);
        CHECK(store_insights_claim(s, 1, keep_row, &l, &err) == 1);     /* the limit */
        CHECK(store_insights_claim(s, 10, keep_row, &l, &err) == 1);
        CHECK(json_array_size(l.first) == 2);
        rows_reset(&l, 1);
        CHECK(store_insights_mark(s, "web", &err) == 0);
        CHECK(store_insights_claim(s, 10, keep_row, &l, &err) == -EPIPE);
        rows_free(&l);
}

/* Weights that double support's hours double the spikes' scores: a new version of each. */
static void test_new_version(struct store *s) {
        static const struct store_insight_weights heavier = { 7, "1", "1" };
        struct rows l = { 0 };
        struct error err = { 0 };
        const json_t *item;

        CHECK(store_insights_refresh(s, "api", &heavier, &err) == 2);
        rows_reset(&l, 0);
        CHECK(store_insight_get(s, "support_spike/api", keep_row, &l, &err) == 1);
        item = json_array_get(l.items, 0);
        CHECK(fabs(num(item, "score") - 5.0) < 1e-9);
        CHECK(json_integer_value(json_object_get(item, "version")) == 2);
        rows_free(&l);
}

/* The outbox's rows of insight id, as psql counts them. */
static const char *outbox_rows(const char *id) {
        static char n[16];
        char sql[256];

        snprintf(sql, sizeof(sql), "SELECT count(*) FROM outbox WHERE insight_id = '%s'", id);
        if (fixture_psql_value(conninfo, sql, n, sizeof(n)) < 0)
                return "psql failed";
        return n;
}

/* One decision: its outcome and (unless unknown) the item's status and history length. */
static void decide(struct store *s, const char *id, const char *decision, const char *outcome,
                   const char *status, size_t history) {
        struct rows l = { 0 };
        struct error err = { 0 };
        const json_t *item;

        rows_reset(&l, 0);
        CHECK(store_insight_decide(s, id, decision, "a reason", "ana", keep_row, &l, &err) == 1);
        CHECK_STR(l.kinds, "sj");
        CHECK_STR(first(&l, 0), outcome);
        item = json_array_get(l.items, 0);
        if (!status) {
                CHECK_STR(json_string_value(item), "");         /* NULL: no item */
        } else {
                CHECK_STR(json_string_value(json_object_get(item, "status")), status);
                CHECK(json_array_size(json_object_get(item, "decisions")) == history);
        }
        rows_free(&l);
}

static void test_decide(struct store *s) {
        struct rows l = { 0 };
        struct error err = { 0 };

        CHECK_STR(outbox_rows("failing_changes/web"), "0");
        decide(s, "failing_changes/web", "accept", "decided", "accepted", 1);
        CHECK_STR(outbox_rows("failing_changes/web"), "1");
        decide(s, "failing_changes/web", "accept", "unchanged", "accepted", 1);
        decide(s, "failing_changes/web", "dismiss", "conflict", "accepted", 1);
        CHECK_STR(outbox_rows("failing_changes/web"), "1");
        decide(s, "support_spike/api/cards", "dismiss", "decided", "dismissed", 1);
        decide(s, "support_spike/api/cards", "dismiss", "unchanged", "dismissed", 1);
        CHECK_STR(outbox_rows("support_spike/api/cards"), "0");
        decide(s, "no/such", "accept", "unknown", NULL, 0);
        /* neither accept nor dismiss: dl_insight_decide raises, -EIO naming the decision */
        rows_reset(&l, 0);
        CHECK(store_insight_decide(s, "failing_changes/web", "maybe", "r", "ana", keep_row, &l,
                                   &err) == -EIO);
        CHECK(json_array_size(l.first) == 0);
        CHECK(strchr(err.msg, '\n') == NULL && strstr(err.msg, "decision") != NULL);
        rows_free(&l);
}

/* Bad weights: PostgreSQL refuses them; -EIO with the reason, and the connection serves. */
static void test_refused(struct store *s) {
        static const struct store_insight_weights bad = { 7, "lots", "1" };
        struct rows l = { 0 };
        struct error err = { 0 };

        CHECK(store_insights_refresh(s, "api", &bad, &err) == -EIO);
        CHECK(err.msg[0] != '\0');
        rows_reset(&l, 0);
        CHECK(store_insights_by_status(s, keep_row, &l, &err) == 4);
        rows_free(&l);
}

int main(int argc, char **argv) {
        struct store *s;

        conninfo = fixture_db(argc, argv);
        if (!conninfo) {
                fprintf(stderr, "test_store_insights needs an empty database: DORALOOP_TEST_DB\n");
                return 2;
        }
        s = fixture_store(conninfo);
        CHECK(s != NULL);
        if (!s)
                return check_summary();
        now = time(NULL);
        load(s);
        test_claim_and_refresh(s);
        test_list(s);
        test_get_and_status(s);
        test_mark(s);
        test_new_version(s);
        test_decide(s);
        test_refused(s);
        store_close(s);
        return check_summary();
}
