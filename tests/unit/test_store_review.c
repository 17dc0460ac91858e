/* Unit tests for store_review, against a real PostgreSQL database (DORALOOP_TEST_DB, made by
 * tests/test_unit.py): deployments, an incident and support saved through the store as
 * generic deliveries, then the agenda of a window as JSON: the services with something to
 * discuss in name order, their counts by environment, failures, incidents with downtime and
 * factors, support; one service asked for by name whatever it holds; a window starting
 * inside a day (the edge days from the rows); a database refusal as -EIO. */
#include "store_review.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "delivery.h"
#include "error.h"
#include "fixture.h"
#include "store.h"

#define US INT64_C(1000000)
#define HOUR_US (3600 * US)
#define DAY_US (24 * HOUR_US)
#define MAR1 (INT64_C(1709251200) * US)        /* 2024-03-01T00:00:00Z */
#define SHA "\"sha\":\"3333333333333333333333333333333333333333\""


/* api: D1 (03-01 10:00, production) caused INC-1 (10:30-11:30, technological/capacity);
 * D2 (03-02 10:00, production); S1 (03-02 12:00, staging). web: one support request (03-02).
 * old: a deployment a month before the window. */
static const char *const bodies[] = {
        "{\"type\":\"deployment\",\"id\":\"D1\",\"service\":\"api\",\"environment\":"
        "\"production\",\"status\":\"success\"," SHA ",\"started_at\":\"2024-03-01T09:55:00Z\","
        "\"finished_at\":\"2024-03-01T10:00:00Z\"}",
        "{\"type\":\"incident\",\"id\":\"INC-1\",\"service\":\"api\",\"status\":\"resolved\","
        "\"title\":\"checkout | down\",\"opened_at\":\"2024-03-01T10:30:00Z\","
        "\"resolved_at\":\"2024-03-01T11:30:00Z\",\"caused_by\":{\"deployment\":\"D1\"},"
        "\"contributing_factors\":[{\"dimension\":\"technological\",\"category\":"
        "\"capacity\"}]}",
        "{\"type\":\"deployment\",\"id\":\"D2\",\"service\":\"api\",\"environment\":"
        "\"production\",\"status\":\"success\"," SHA ",\"started_at\":\"2024-03-02T09:55:00Z\","
        "\"finished_at\":\"2024-03-02T10:00:00Z\"}",
        "{\"type\":\"deployment\",\"id\":\"S1\",\"service\":\"api\",\"environment\":"
        "\"staging\",\"status\":\"success\"," SHA ",\"started_at\":\"2024-03-02T11:55:00Z\","
        "\"finished_at\":\"2024-03-02T12:00:00Z\"}",
        "{\"type\":\"observation\",\"id\":\"O1\",\"kind\":\"support\",\"service\":\"web\","
        "\"customer\":\"acme\",\"feature\":\"login\",\"occurred_at\":\"2024-03-02T08:00:00Z\"}",
        "{\"type\":\"deployment\",\"id\":\"OLD\",\"service\":\"old\",\"environment\":"
        "\"production\",\"status\":\"success\"," SHA ",\"started_at\":\"2024-02-01T09:55:00Z\","
        "\"finished_at\":\"2024-02-01T10:00:00Z\"}",
};

/* The agenda as parsed JSON; NULL (and a failed check) when the store or parse fails. */
static json_t *agenda(struct store *s, const char *service, int64_t from, int64_t to,
                      const char *envs) {
        struct error err = { 0 };
        char *text = NULL;
        json_t *doc;
        int r = store_review(s, service, from, to, envs, &text, &err);

        CHECK(r == 0 && text);
        if (r < 0)
                fprintf(stderr, "store_review: %s\n", err.msg);
        doc = text ? json_loads(text, 0, NULL) : NULL;
        CHECK(doc != NULL);
        free(text);
        return doc;
}

static const json_t *service_at(const json_t *doc, size_t i) {
        return json_array_get(json_object_get(doc, "services"), i);
}

static json_int_t count(const json_t *svc, const char *what, const char *key) {
        return json_integer_value(json_object_get(json_object_get(svc, what), key));
}

static const char *str(const json_t *o, const char *key) {
        return json_string_value(json_object_get(o, key));
}

static void test_window(struct store *s) {
        json_t *doc = agenda(s, NULL, MAR1, MAR1 + 3 * DAY_US, "production");
        const json_t *api = service_at(doc, 0), *web = service_at(doc, 1), *x;

        /* old had nothing in the window: not on the agenda */
        CHECK(json_array_size(json_object_get(doc, "services")) == 2);
        CHECK_STR(str(api, "service"), "api");
        CHECK_STR(str(web, "service"), "web");
        CHECK(count(api, "deployments", "count") == 2);         /* S1 is staging */
        CHECK(count(api, "deployments", "failed") == 1);        /* D1, through INC-1 */
        x = json_array_get(json_object_get(api, "failures"), 0);
        CHECK(json_array_size(json_object_get(api, "failures")) == 1);
        CHECK_STR(str(x, "deployment"), "D1");
        CHECK_STR(str(x, "finished_at"), "2024-03-01T10:00:00Z");
        CHECK_STR(json_string_value(json_array_get(json_object_get(x, "incidents"), 0)),
                  "INC-1");
        CHECK(json_is_null(json_object_get(x, "followed_by")));
        x = json_array_get(json_object_get(api, "incidents"), 0);
        CHECK(json_array_size(json_object_get(api, "incidents")) == 1);
        CHECK_STR(str(x, "incident"), "INC-1");
        CHECK_STR(str(x, "title"), "checkout | down");
        CHECK(json_number_value(json_object_get(x, "downtime_seconds")) == 3600);
        CHECK_STR(str(json_array_get(json_object_get(x, "factors"), 0), "dimension"),
                  "technological");
        CHECK(count(api, "support", "opened") == 0);
        CHECK(count(web, "deployments", "count") == 0);
        CHECK(count(web, "support", "opened") == 1);
        CHECK(count(web, "support", "open_now") == 1);
        CHECK_STR(str(json_array_get(json_object_get(json_object_get(web, "support"),
                                                     "features"), 0), "feature"), "login");
        CHECK(json_integer_value(json_object_get(web, "insights_awaiting")) == 0);
        CHECK(json_array_size(json_object_get(web, "decisions")) == 0);
        json_decref(doc);

        /* staging counted too */
        doc = agenda(s, NULL, MAR1, MAR1 + 3 * DAY_US, "production,staging");
        CHECK(count(service_at(doc, 0), "deployments", "count") == 3);
        json_decref(doc);
}

/* From 03-01 10:30 (inside a day): D1 at 10:00 is before the window, INC-1 (opened 10:30)
 * in it: the edge day is read from the rows, not from the day's rollup. */
static void test_edges(struct store *s) {
        json_t *doc = agenda(s, "api", MAR1 + 10 * HOUR_US + 30 * 60 * US, MAR1 + 3 * DAY_US,
                             "production");
        const json_t *api = service_at(doc, 0);

        CHECK(count(api, "deployments", "count") == 1);         /* D2 alone */
        CHECK(count(api, "deployments", "failed") == 0);
        CHECK(json_array_size(json_object_get(api, "failures")) == 0);
        CHECK(json_array_size(json_object_get(api, "incidents")) == 1);
        json_decref(doc);

        /* [03-01 00:00, 03-01 10:00): both edges on one day, D1 finished at its end */
        doc = agenda(s, "api", MAR1, MAR1 + 10 * HOUR_US, "production");
        CHECK(count(service_at(doc, 0), "deployments", "count") == 0);
        json_decref(doc);
        doc = agenda(s, "api", MAR1, MAR1 + 10 * HOUR_US + 1, "production");
        CHECK(count(service_at(doc, 0), "deployments", "count") == 1);
        json_decref(doc);
}

/* One service by name: there even with nothing; an unknown one too, with zeros. */
static void test_named(struct store *s) {
        json_t *doc = agenda(s, "old", MAR1, MAR1 + 3 * DAY_US, "production");

        CHECK(json_array_size(json_object_get(doc, "services")) == 1);
        CHECK_STR(str(service_at(doc, 0), "service"), "old");
        CHECK(count(service_at(doc, 0), "deployments", "count") == 0);
        json_decref(doc);
        doc = agenda(s, "old", MAR1 - 30 * DAY_US, MAR1, "production");
        CHECK(count(service_at(doc, 0), "deployments", "count") == 1);
        json_decref(doc);
        doc = agenda(s, NULL, MAR1 + 30 * DAY_US, MAR1 + 31 * DAY_US, "production");
        CHECK(json_array_size(json_object_get(doc, "services")) == 0);
        json_decref(doc);
}

/* A time before PostgreSQL's first (4713 BC): -EIO with the reason, no JSON. */
static void test_refused(struct store *s) {
        struct error err = { 0 };
        char *text = (char *) "untouched";

        CHECK(store_review(s, NULL, INT64_MIN, MAR1, "production", &text, &err) == -EIO);
        CHECK(text == NULL);
        CHECK(err.msg[0] != '\0');
        /* the connection still serves */
        json_decref(agenda(s, "api", MAR1, MAR1 + DAY_US, "production"));
}

int main(int argc, char **argv) {
        struct store *s = fixture_open(argc, argv, "test_store_review");

        CHECK(s != NULL);
        if (!s)
                return check_summary();
        CHECK(fixture_save_all(s, "r", bodies, sizeof(bodies) / sizeof(bodies[0]), MAR1) == 0);
        test_window(s);
        test_edges(s);
        test_named(s);
        test_refused(s);
        store_close(s);
        return check_summary();
}
