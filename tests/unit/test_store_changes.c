/* Unit tests for store_changes, against a real PostgreSQL database (DORALOOP_TEST_DB, made
 * by tests/test_unit.py): a change request's brief (found or not, its window, its
 * services), its row with the history in the source's order and the deployments it
 * governs, the list's key order, filters and the count past the page edge, and a
 * database refusal as a one-line -EIO. */
#include "store_changes.h"

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
#include "timefmt.h"

#define US INT64_C(1000000)
/* 2024-05-07T00:00:00Z = 19850 days x 86,400 s = 1,715,040,000 s. */
#define DAY_US (INT64_C(1715040000) * US)
#define T0 (DAY_US + 8 * 3600 * US)


static int save(struct store *s, const char *id, const char *body) {
        return fixture_save(s, id, body, T0);
}

static const char *change_request(const char *key, const char *status, const char *services,
                                  const char *updated_at) {
        static char body[512];

        snprintf(body, sizeof(body),
                 "{\"type\":\"change_request\",\"id\":\"%s\",\"services\":%s,"
                 "\"status\":\"%s\",\"change_type\":\"normal\",\"risk\":\"medium\","
                 "\"planned_start\":\"2024-05-07T13:00:00Z\","
                 "\"planned_end\":\"2024-05-07T17:00:00Z\",\"updated_at\":\"%s\"}",
                 key, services, status, updated_at);
        return body;
}

static void load(struct store *s) {
        /* CHG-12 reported pending at 10:00, approved at 11:30; its approval is delivered
         * first, so the history is in the source's order, not arrival's. */
        CHECK(save(s, "cr-2", change_request("CHG-12", "approved", "[\"api\",\"web\"]",
                                             "2024-05-07T11:30:00Z")) == 0);
        CHECK(save(s, "cr-1", change_request("CHG-12", "pending", "[\"api\",\"web\"]",
                                             "2024-05-07T10:00:00Z")) == 0);
        CHECK(save(s, "cr-3", change_request("CHG-1", "completed", "[\"api\"]",
                                             "2024-05-01T10:00:00Z")) == 0);
        CHECK(save(s, "cr-4", change_request("CHG-2", "approved", "[\"web\"]",
                                             "2024-05-06T10:00:00Z")) == 0);
        /* A production deployment of api inside CHG-12's window, naming it. */
        CHECK(save(s, "dep-1", "{\"type\":\"deployment\",\"id\":\"deploy-42\",\"service\":"
                              "\"api\",\"environment\":\"production\",\"status\":\"success\","
                              "\"change_request\":\"CHG-12\","
                              "\"started_at\":\"2024-05-07T14:00:00Z\","
                              "\"finished_at\":\"2024-05-07T14:06:30Z\"}") == 0);
}

static void test_brief(struct store *s) {
        struct store_change_brief b;
        struct error err = { 0 };

        CHECK(store_change_brief(s, "CHG-12", &b, &err) == 0);
        CHECK(b.found);
        CHECK_STR(b.status, "approved");               /* the latest by the source's time */
        /* 13:00 and 17:00 that day: DAY_US + 46,800 s and + 61,200 s. */
        CHECK(b.planned_start == DAY_US + 46800 * US);
        CHECK(b.planned_end == DAY_US + 61200 * US);
        CHECK(b.n_services == 2);
        CHECK(b.n_services == 2 && strcmp(b.services[0], "api") == 0 &&
              strcmp(b.services[1], "web") == 0);
        store_change_brief_free(&b);
        CHECK(b.services == NULL && b.status == NULL && b.n_services == 0);
        /* Unknown: found 0, nothing allocated, the times unset. */
        CHECK(store_change_brief(s, "CHG-404", &b, &err) == 0);
        CHECK(!b.found && b.status == NULL && b.n_services == 0);
        CHECK(b.planned_start == TIME_UNSET && b.planned_end == TIME_UNSET);
        store_change_brief_free(&b);
}

/* Services travel as a PostgreSQL array literal (store.c's param_array): names holding
 * its quote, backslash, comma, braces, blanks or the word NULL come back as they were. */
static void test_array_quoting(struct store *s) {
        static const char *const names[] = { "a\"b", "c\\d", "e,f", "{g}", " h ", "NULL", "" };
        struct store_change_brief b;
        struct error err = { 0 };

        CHECK(save(s, "cr-q", change_request("CHG-Q", "pending",
                                             "[\"a\\\"b\",\"c\\\\d\",\"e,f\",\"{g}\","
                                             "\" h \",\"NULL\",\"\"]",
                                             "2024-05-07T09:00:00Z")) == 0);
        CHECK(store_change_brief(s, "CHG-Q", &b, &err) == 0);
        CHECK(b.found && b.n_services == 7);
        for (size_t i = 0; i < 7 && i < b.n_services; i++)
                CHECK_STR(b.services[i], names[i]);
        store_change_brief_free(&b);
}

/* Each row as an object: JSON columns parsed, the others as strings (or null); the kinds
 * of the first row in kinds. */
struct rows {
        json_t *items;
        char kinds[32];
};

static int collect(void *ctx, const struct store_row *r) {
        struct rows *l = ctx;
        json_t *o = json_object();

        if (json_array_size(l->items) == 0)
                snprintf(l->kinds, sizeof(l->kinds), "%s", r->kinds);
        for (int c = 0; o && c < r->n; c++) {
                const char *v = r->values[c];
                json_t *j = !v ? json_null()
                            : r->kinds[c] == STORE_KIND_JSON ? json_loads(v, JSON_DECODE_ANY, NULL)
                                                             : json_string(v);

                CHECK(j != NULL);
                json_object_set_new(o, r->names[c], j ? j : json_null());
        }
        CHECK(o != NULL);
        json_array_append_new(l->items, o);
        return 0;
}

static void test_one(struct store *s) {
        struct error err = { 0 };
        struct rows l = { .items = json_array() };
        json_t *o, *h, *d;

        CHECK(store_change(s, "CHG-12", collect, &l, &err) == 1);
        CHECK(json_array_size(l.items) == 1);
        CHECK_STR(l.kinds, "sssssjsssssbsjjj");
        o = json_array_get(l.items, 0);
        CHECK(json_is_object(o));
        CHECK_STR(json_string_value(json_object_get(o, "key")), "CHG-12");
        CHECK_STR(json_string_value(json_object_get(o, "status")), "approved");
        CHECK_STR(json_string_value(json_object_get(o, "planned_start")), "2024-05-07T13:00:00Z");
        CHECK(json_array_size(json_object_get(o, "services")) == 2);
        h = json_object_get(o, "history");
        CHECK(json_array_size(h) == 2);
        CHECK_STR(json_string_value(json_object_get(json_array_get(h, 0), "status")), "pending");
        CHECK_STR(json_string_value(json_object_get(json_array_get(h, 0), "delivery_id")), "cr-1");
        CHECK_STR(json_string_value(json_object_get(json_array_get(h, 1), "status")), "approved");
        CHECK_STR(json_string_value(json_object_get(json_array_get(h, 1), "at")),
                  "2024-05-07T11:30:00Z");
        d = json_object_get(o, "deployments");
        CHECK(json_array_size(d) == 1);
        CHECK_STR(json_string_value(json_object_get(json_array_get(d, 0), "key")), "deploy-42");
        CHECK(json_is_array(json_object_get(o, "incidents")) &&
              json_array_size(json_object_get(o, "incidents")) == 0);
        CHECK_STR(json_string_value(json_object_get(o, "auto_created")), "f");
        json_array_clear(l.items);
        /* Unknown: 0, and no row. */
        CHECK(store_change(s, "CHG-404", collect, &l, &err) == 0);
        CHECK(json_array_size(l.items) == 0);
        json_decref(l.items);
}

/* The keys of a page, comma-joined, and its next cursor (or "null"): the last key given
 * when the store counted more rows than the page holds. */
static void page(struct store *s, const struct change_filter *f, char *keys, size_t n,
                 char *cursor, size_t m) {
        struct error err = { 0 };
        struct rows l = { .items = json_array() };
        size_t given;
        int r;

        *keys = '\0';
        r = store_changes(s, f, collect, &l, &err);
        given = json_array_size(l.items);
        CHECK(r >= 0 && r <= f->limit + 1 && given == (size_t) (r > f->limit ? f->limit : r));
        CHECK(given == 0 || strcmp(l.kinds, "sssssjsssssbs") == 0);
        for (size_t i = 0; i < given; i++) {
                size_t len = strlen(keys);

                snprintf(keys + len, n - len, "%s%s", i ? "," : "",
                         json_string_value(json_object_get(json_array_get(l.items, i), "key")));
        }
        snprintf(cursor, m, "%s", r > f->limit && given
                 ? json_string_value(json_object_get(json_array_get(l.items, given - 1), "key"))
                 : "null");
        json_decref(l.items);
}

static void test_list(struct store *s) {
        struct change_filter f = { .since_us = INT64_MIN, .limit = 2 };
        char keys[256], cursor[64];

        /* Text order: "CHG-1" < "CHG-12" < "CHG-2". Two of three: the cursor is the last
         * key given; after it, the last one and no cursor. */
        page(s, &f, keys, sizeof(keys), cursor, sizeof(cursor));
        CHECK_STR(keys, "CHG-1,CHG-12");
        CHECK_STR(cursor, "CHG-12");
        f.after = "CHG-12";
        page(s, &f, keys, sizeof(keys), cursor, sizeof(cursor));
        CHECK_STR(keys, "CHG-2");
        CHECK_STR(cursor, "null");
        /* A page exactly as long as what is left: no cursor to an empty page. */
        f.after = NULL, f.limit = 3;
        page(s, &f, keys, sizeof(keys), cursor, sizeof(cursor));
        CHECK_STR(keys, "CHG-1,CHG-12,CHG-2");
        CHECK_STR(cursor, "null");
        /* Past the last key: empty, no cursor. */
        f.after = "CHG-9";
        page(s, &f, keys, sizeof(keys), cursor, sizeof(cursor));
        CHECK_STR(keys, "");
        CHECK_STR(cursor, "null");
        /* Filters: a service among several, a status, updated since (at it included). */
        f = (struct change_filter) { .service = "web", .since_us = INT64_MIN, .limit = 10 };
        page(s, &f, keys, sizeof(keys), cursor, sizeof(cursor));
        CHECK_STR(keys, "CHG-12,CHG-2");
        f = (struct change_filter) { .status = "approved", .since_us = INT64_MIN, .limit = 10 };
        page(s, &f, keys, sizeof(keys), cursor, sizeof(cursor));
        CHECK_STR(keys, "CHG-12,CHG-2");
        /* 2024-05-06T10:00:00Z = DAY_US - 14 h: CHG-2's own time, so it is in. */
        f = (struct change_filter) { .since_us = DAY_US - 14 * 3600 * US, .limit = 10 };
        page(s, &f, keys, sizeof(keys), cursor, sizeof(cursor));
        CHECK_STR(keys, "CHG-12,CHG-2");
        f.since_us += 1;
        page(s, &f, keys, sizeof(keys), cursor, sizeof(cursor));
        CHECK_STR(keys, "CHG-12");
}

/* A key PostgreSQL refuses to read (not UTF-8): -EIO, its reason on one line, no
 * trailing blank (libpq ends its messages with a newline). */
static void test_refusal(struct store *s) {
        struct store_change_brief b;
        struct error err = { 0 };
        struct rows l = { .items = json_array() };
        struct change_filter f = { .service = "\xc3(", .since_us = INT64_MIN, .limit = 1 };
        size_t n;

        CHECK(store_change(s, "\xff", collect, &l, &err) == -EIO);
        CHECK(json_array_size(l.items) == 0);
        n = strlen(err.msg);
        CHECK(strncmp(err.msg, "Reading a change request: ", 26) == 0);
        CHECK(!strchr(err.msg, '\n') && n > 0 && err.msg[n - 1] != ' ');
        err = (struct error) { 0 };
        CHECK(store_changes(s, &f, collect, &l, &err) == -EIO);
        json_decref(l.items);
        n = strlen(err.msg);
        CHECK(n > 0 && err.msg[n - 1] != ' ' && !strchr(err.msg, '\n'));
        CHECK(store_change_brief(s, "\xff", &b, &err) == -EIO);
        CHECK(!b.found);
        store_change_brief_free(&b);
}

int main(int argc, char **argv) {
        struct store *s = fixture_open(argc, argv, "test_store_changes");

        CHECK(s != NULL);
        if (!s)
                return check_summary();
        load(s);
        test_brief(s);
        test_one(s);
        test_list(s);
        test_array_quoting(s);
        test_refusal(s);
        store_close(s);
        return check_summary();
}
