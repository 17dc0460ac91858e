/* Unit tests for eventjson: every kind's fields under their column names, NULL strings and
 * unset times as JSON null, times that parse back to the same microsecond, string lists
 * (none, empty, several), the list's bounds, and no partial answer for a row it cannot
 * write. */
#include "eventjson.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "event.h"
#include "timefmt.h"

#define S INT64_C(1000000)

/* 2024-05-06T12:53:20Z: 1715000000 s since the epoch (test_timefmt derives it). */
static const int64_t T = INT64_C(1715000000) * S;

static char *dup(const char *s) {
        return s ? strdup(s) : NULL;
}

static char **dupv(const char *const *v, size_t n) {
        char **out = calloc(n ? n : 1, sizeof(*out));

        for (size_t i = 0; out && i < n; i++)
                out[i] = dup(v[i]);
        return out;
}

static const char *get_str(json_t *o, const char *key) {
        return json_string_value(json_object_get(o, key));
}

static bool is_null(json_t *o, const char *key) {
        return json_is_null(json_object_get(o, key));
}

/* The time a field holds, parsed back; TIME_UNSET when it is not a time. */
static int64_t get_time(json_t *o, const char *key) {
        int64_t us = TIME_UNSET;
        const char *s = get_str(o, key);

        return s && timefmt_parse(s, &us) == 0 ? us : TIME_UNSET;
}

static void test_change(void) {
        struct event_list l = { 0 };
        struct event *e = event_list_add(&l, EVENT_CHANGE);
        json_t *a, *o;

        e->change.service = dup("api");
        e->change.repo = dup("acme/api");
        e->change.sha = dup("0123abcd");
        e->change.message = dup("say \"hi\"\n\xc3\xa9t\xc3\xa9");   /* quotes, LF, UTF-8 */
        e->change.committed_at = T + 1;                          /* one microsecond past */
        a = eventjson_dump(&l);
        CHECK(json_is_array(a) && json_array_size(a) == 1);
        o = json_array_get(a, 0);
        /* 1 kind + 7 fields: nothing more, nothing dropped. */
        CHECK(json_object_size(o) == 8);
        CHECK_STR(get_str(o, "kind"), "change");
        CHECK_STR(get_str(o, "service"), "api");
        CHECK_STR(get_str(o, "repo"), "acme/api");
        CHECK_STR(get_str(o, "sha"), "0123abcd");
        CHECK_STR(get_str(o, "message"), "say \"hi\"\n\xc3\xa9t\xc3\xa9");
        CHECK(is_null(o, "branch") && is_null(o, "author"));
        /* T + 1 us is written with its fraction: "2024-05-06T12:53:20.000001Z". */
        CHECK_STR(get_str(o, "committed_at"), "2024-05-06T12:53:20.000001Z");
        CHECK(get_time(o, "committed_at") == T + 1);
        json_decref(a);
        event_list_clear(&l);
}

static void test_deployment(void) {
        static const char *const commits[] = { "aaa", "bbb", "ccc" };
        struct event_list l = { 0 };
        struct event *with = event_list_add(&l, EVENT_DEPLOYMENT);
        struct event *bare = event_list_add(&l, EVENT_DEPLOYMENT);
        struct event *empty = event_list_add(&l, EVENT_DEPLOYMENT);
        json_t *a, *o, *c;

        with->deployment.key = dup("42");
        with->deployment.service = dup("api");
        with->deployment.environment = dup("production");
        with->deployment.status = dup("success");
        with->deployment.started_at = T;
        with->deployment.finished_at = T + 90 * S;      /* 12:54:50 */
        with->deployment.updated_at = 0;                /* the epoch is a time, not unset */
        with->deployment.rollback = true;
        with->deployment.commits = dupv(commits, 3);
        with->deployment.n_commits = 3;
        bare->deployment.key = dup("43");
        empty->deployment.key = dup("44");
        empty->deployment.commits = dupv(NULL, 0);      /* a list that says "none" */
        a = eventjson_dump(&l);
        CHECK(json_array_size(a) == 3);
        o = json_array_get(a, 0);
        CHECK(json_object_size(o) == 13);
        CHECK_STR(get_str(o, "kind"), "deployment");
        CHECK_STR(get_str(o, "key"), "42");
        CHECK_STR(get_str(o, "environment"), "production");
        CHECK_STR(get_str(o, "started_at"), "2024-05-06T12:53:20Z");
        CHECK_STR(get_str(o, "finished_at"), "2024-05-06T12:54:50Z");
        CHECK_STR(get_str(o, "updated_at"), "1970-01-01T00:00:00Z");
        CHECK(json_is_true(json_object_get(o, "rollback")));
        CHECK(json_is_false(json_object_get(o, "hotfix")));
        c = json_object_get(o, "commits");
        CHECK(json_array_size(c) == 3);
        CHECK_STR(json_string_value(json_array_get(c, 0)), "aaa");
        CHECK_STR(json_string_value(json_array_get(c, 2)), "ccc");
        /* A deployment with nothing set: every string and time null, flags false, and
         * commits an empty array (not null) whether the list is absent or empty. */
        o = json_array_get(a, 1);
        CHECK(is_null(o, "service") && is_null(o, "sha") && is_null(o, "change_request"));
        CHECK(is_null(o, "started_at") && is_null(o, "finished_at") &&
              is_null(o, "updated_at"));
        CHECK(json_is_false(json_object_get(o, "rollback")));
        CHECK(json_is_array(json_object_get(o, "commits")) &&
              json_array_size(json_object_get(o, "commits")) == 0);
        CHECK(json_array_size(json_object_get(json_array_get(a, 2), "commits")) == 0);
        json_decref(a);
        event_list_clear(&l);
}

static void test_incident_and_change_request(void) {
        static const char *const services[] = { "api", "web" };
        struct event_list l = { 0 };
        struct event *i = event_list_add(&l, EVENT_INCIDENT);
        struct event *cr = event_list_add(&l, EVENT_CHANGE_REQUEST);
        json_t *a, *o;

        i->incident.key = dup("INC-1");
        i->incident.status = dup("resolved");
        i->incident.caused_by_sha = dup("aaa");
        i->incident.opened_at = T;
        i->incident.resolved_at = T + 3600 * S;         /* 13:53:20 */
        cr->change_request.key = dup("CHG-12");
        cr->change_request.change_type = dup("emergency");
        cr->change_request.services = dupv(services, 2);
        cr->change_request.n_services = 2;
        cr->change_request.planned_end = TIMEFMT_MAX_US; /* the last time accepted */
        cr->change_request.actor = dup("Ann");
        a = eventjson_dump(&l);
        o = json_array_get(a, 0);
        CHECK(json_object_size(o) == 13);
        CHECK_STR(get_str(o, "kind"), "incident");
        CHECK_STR(get_str(o, "key"), "INC-1");
        CHECK_STR(get_str(o, "caused_by_sha"), "aaa");
        CHECK(is_null(o, "caused_by_deployment") && is_null(o, "root_cause") &&
              is_null(o, "updated_at"));
        CHECK_STR(get_str(o, "resolved_at"), "2024-05-06T13:53:20Z");
        CHECK(get_time(o, "resolved_at") - get_time(o, "opened_at") == 3600 * S);
        o = json_array_get(a, 1);
        CHECK(json_object_size(o) == 11);
        CHECK_STR(get_str(o, "kind"), "change_request");
        CHECK_STR(get_str(o, "change_type"), "emergency");
        CHECK(json_array_size(json_object_get(o, "services")) == 2);
        CHECK_STR(json_string_value(json_array_get(json_object_get(o, "services"), 1)), "web");
        CHECK_STR(get_str(o, "planned_end"), "2100-01-01T00:00:00Z");
        CHECK(get_time(o, "planned_end") == TIMEFMT_MAX_US);
        CHECK(is_null(o, "planned_start") && is_null(o, "risk"));
        CHECK_STR(get_str(o, "actor"), "Ann");
        json_decref(a);
        event_list_clear(&l);
}

/* The bounds: no events is [], and a full list (EVENT_LIST_MAX rows) is written whole. */
static void test_bounds(void) {
        struct event_list l = { 0 };
        json_t *a = eventjson_dump(&l);

        CHECK(json_is_array(a) && json_array_size(a) == 0);
        json_decref(a);
        while (event_list_add(&l, EVENT_CHANGE))
                ;
        CHECK(l.n == EVENT_LIST_MAX);
        a = eventjson_dump(&l);
        CHECK(json_array_size(a) == EVENT_LIST_MAX);
        CHECK_STR(get_str(json_array_get(a, EVENT_LIST_MAX - 1), "kind"), "change");
        json_decref(a);
        event_list_clear(&l);
}

/* A string JSON cannot hold (not UTF-8: jansson refuses it) fails the whole dump, never
 * an answer that quietly lacks it: as a field, and as one element of a list. */
static void test_unwritable(void) {
        static const char *const commits[] = { "aaa", "\xff\xfe", "ccc" };
        struct event_list l = { 0 };
        struct event *e = event_list_add(&l, EVENT_CHANGE);

        e->change.service = dup("\xc3(");       /* a lead byte without its continuation */
        CHECK(eventjson_dump(&l) == NULL);
        event_list_clear(&l);
        e = event_list_add(&l, EVENT_DEPLOYMENT);
        e->deployment.commits = dupv(commits, 3);
        e->deployment.n_commits = 3;
        CHECK(eventjson_dump(&l) == NULL);
        event_list_clear(&l);
}

int main(void) {
        test_change();
        test_deployment();
        test_incident_and_change_request();
        test_bounds();
        test_unwritable();
        return check_summary();
}
