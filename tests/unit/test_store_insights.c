/* Unit tests for store_insights, against a real PostgreSQL database (DORALOOP_TEST_DB, made
 * by tests/test_unit.py): an unauthorized deployment marks its service, the claim takes it,
 * the recompute writes its insight, the list, the item and the gauge read it; a decision's
 * outcomes (decided, unchanged, conflict, unknown) with the outbox row of an accept; a
 * database refusal as -EIO. */
#include "store_insights.h"

#include <errno.h>
#include <jansson.h>
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

static const struct store_model model = { "production", 24 };
static const struct store_insight_weights weights = { 30, "0.5", "1" };
static const char *conninfo;

static int save(struct store *s, const char *id, const char *body) {
        struct delivery *d = fixture_generic(id, body, (int64_t) time(NULL) * US);
        struct error err = { 0 };
        int r = d ? store_save_batch(s, &model, &d, 1, &err) : -ENOMEM;

        if (r < 0)
                fprintf(stderr, "save %s: %s\n", id, err.msg);
        delivery_free(d);
        return r;
}

/* CHG-1 is pending; D1 (api, production, two days ago) runs under it: unauthorized. */
static void load(struct store *s) {
        time_t t = time(NULL) - 2 * 86400;
        char when[32], body[512];

        strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime(&t));
        CHECK(save(s, "c1", "{\"type\":\"change_request\",\"id\":\"CHG-1\",\"service\":\"api\","
                            "\"status\":\"pending\",\"change_type\":\"normal\","
                            "\"updated_at\":\"2024-01-01T00:00:00Z\"}") == 0);
        snprintf(body, sizeof(body),
                 "{\"type\":\"deployment\",\"id\":\"D1\",\"service\":\"api\","
                 "\"environment\":\"production\",\"status\":\"success\",\"sha\":\"%s\","
                 "\"started_at\":\"%s\",\"finished_at\":\"%s\",\"change_request\":\"CHG-1\"}",
                 "6666666666666666666666666666666666666666", when, when);
        CHECK(save(s, "d1", body) == 0);
}

struct seen {
        int n;
        char first[2][4096];    /* an item is a few hundred bytes */
};

static int keep(void *ctx, const struct store_row *r) {
        struct seen *seen = ctx;

        for (int i = 0; i < r->n && i < 2 && seen->n == 0; i++)
                snprintf(seen->first[i], sizeof(seen->first[i]), "%s",
                         r->values[i] ? r->values[i] : "(null)");
        seen->n++;
        return 0;
}

static void test_upkeep_and_reads(struct store *s) {
        struct store_insight_query q = { .limit = 10, .weights = &weights };
        struct seen claimed = { 0 }, list = { 0 }, one = { 0 }, gauge = { 0 };
        struct error err = { 0 };

        CHECK(store_insights_claim(s, 10, keep, &claimed, &err) == 1);
        CHECK_STR(claimed.first[0], "api");
        CHECK(store_insights_refresh(s, "api", &weights, &err) == 1);
        CHECK(store_insights_refresh(s, "api", &weights, &err) == 0);  /* nothing changed */
        CHECK(store_insights_list(s, &q, keep, &list, &err) == 1);
        CHECK_STR(list.first[0], "unauthorized_changes/api");
        CHECK(store_insight_get(s, "unauthorized_changes/api", keep, &one, &err) == 1);
        CHECK(strstr(one.first[0], "\"decisions\": []") != NULL);
        CHECK(store_insight_get(s, "unauthorized_changes/nobody", keep, &one, &err) == 0);
        CHECK(store_insights_by_status(s, keep, &gauge, &err) == 4);
        CHECK_STR(gauge.first[0], "new");
        CHECK_STR(gauge.first[1], "1");
        CHECK(store_insights_mark(s, "api", &err) == 0);
        CHECK(store_insights_mark_all(s, 30, &err) >= 0);
}

/* The outcome and the item's status of one decision. */
static void decide(struct store *s, const char *id, const char *decision,
                   const char *outcome, const char *status) {
        struct seen seen = { 0 };
        struct error err = { 0 };
        json_t *item;

        CHECK(store_insight_decide(s, id, decision, "a reason", "ana", keep, &seen, &err) == 1);
        CHECK_STR(seen.first[0], outcome);
        if (!status) {
                CHECK_STR(seen.first[1], "(null)");
                return;
        }
        item = json_loads(seen.first[1], 0, NULL);
        CHECK(item != NULL);
        CHECK_STR(json_string_value(json_object_get(item, "status")), status);
        json_decref(item);
}

static void test_decisions(struct store *s) {
        const char *id = "unauthorized_changes/api";
        char n[16] = "";

        decide(s, id, "accept", "decided", "accepted");
        CHECK(fixture_psql_value(conninfo, "SELECT count(*) FROM outbox", n, sizeof(n)) == 0);
        CHECK_STR(n, "1");
        decide(s, id, "accept", "unchanged", "accepted");
        decide(s, id, "dismiss", "conflict", "accepted");
        decide(s, "unauthorized_changes/nobody", "accept", "unknown", NULL);
        CHECK(fixture_psql_value(conninfo, "SELECT count(*) FROM insight_decisions", n,
                                 sizeof(n)) == 0);
        CHECK_STR(n, "1");
}

static void test_refusal(struct store *s) {
        struct seen seen = { 0 };
        struct error err = { 0 };

        /* not accept or dismiss: dl_insight_decide raises */
        CHECK(store_insight_decide(s, "unauthorized_changes/api", "maybe", "r", "ana", keep,
                                   &seen, &err) == -EIO);
        CHECK(seen.n == 0);
        CHECK(strchr(err.msg, '\n') == NULL && strstr(err.msg, "decision") != NULL);
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
        load(s);
        test_upkeep_and_reads(s);
        test_decisions(s);
        test_refusal(s);
        store_close(s);
        return check_summary();
}
