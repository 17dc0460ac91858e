/* Unit tests for delivery: what delivery_normalize() decides for a body (normalized,
 * ignored, error; over_limit at the exact bounds), that a parsed tree given by the caller
 * and the body parsed here give the same rows, that a second call starts afresh, and that
 * the caller's tree stays the caller's. Through the generic source (API.md's own body). */
#include "delivery.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "doc.h"
#include "error.h"
#include "eventjson.h"
#include "normalize.h"
#include "source.h"

#define SHA "9f1c2e4b7a0d3e5f61728394a5b6c7d8e9f0a1b2"

/* A generic delivery of body (copied) and event (what identify() took from the body's
 * "type"), as the HTTP handler makes one. */
static struct delivery *make(const char *body, const char *event) {
        struct delivery *d = calloc(1, sizeof(*d));

        d->source = source_find("generic");
        d->delivery_id = strdup("id-1");
        d->event = strdup(event);
        d->body = strdup(body);
        d->body_len = strlen(body);
        d->received_us = INT64_C(1715000000000000);
        return d;
}

static void set_body(struct delivery *d, const char *body) {
        free(d->body);
        d->body = strdup(body);
        d->body_len = strlen(body);
}

/* A change for a service of `len` bytes of 's'. */
static char *change_with_service(size_t len) {
        char *service = malloc(len + 1), *body = malloc(len + 200);

        memset(service, 's', len);
        service[len] = '\0';
        snprintf(body, len + 200, "{\"type\":\"change\",\"service\":\"%s\",\"sha\":\"" SHA
                 "\",\"timestamp\":\"2024-05-06T09:12:00Z\"}", service);
        free(service);
        return body;
}

static void test_normalized(const struct normalize_options *o) {
        struct delivery *d = make("{\"type\":\"change\",\"service\":\"checkout\",\"sha\":\"" SHA
                                  "\",\"timestamp\":\"2024-05-06T09:12:00Z\"}", "change");

        CHECK(delivery_normalize(d, NULL, o) == 0);
        CHECK_STR(d->status, "normalized");
        CHECK(d->error == NULL && !d->over_limit);
        CHECK(d->events.n == 1 && d->events.items[0].kind == EVENT_CHANGE);
        /* The tree is gone (its arena scope ended): the row owns copies. */
        CHECK_STR(d->events.items[0].change.service, "checkout");
        CHECK_STR(d->events.items[0].change.sha, SHA);
        /* 2024-05-06T09:12:00Z = 1715000000 s (12:53:20) - 13,280 s = 1714986720 s. */
        CHECK(d->events.items[0].change.committed_at == INT64_C(1714986720000000));
        /* The body is kept byte for byte, whatever normalize did. */
        CHECK(d->body_len == strlen(d->body));
        CHECK(delivery_free(d) == NULL);
}

static void test_ignored_and_errors(const struct normalize_options *o) {
        struct delivery *d = make("{\"type\":\"coffee\"}", "coffee");

        /* A type the source does not use: ignored, with the reason, no rows. */
        CHECK(delivery_normalize(d, NULL, o) == 0);
        CHECK_STR(d->status, "ignored");
        CHECK(d->error && strstr(d->error, "coffee"));
        CHECK(d->events.n == 0 && !d->over_limit);
        free(d->event);
        d->event = strdup("change");

        /* Truncated JSON: an error with the parser's reason; not over a limit. */
        set_body(d, "{\"type\":\"change\",\"service\":\"checkout\"");
        CHECK(delivery_normalize(d, NULL, o) == 0);
        CHECK_STR(d->status, "error");
        CHECK(d->error && *d->error);
        CHECK(d->events.n == 0 && !d->over_limit);

        /* A root that is not an object, and a field of the wrong type: errors too. */
        set_body(d, "[1,2,3]");
        CHECK(delivery_normalize(d, NULL, o) == 0);
        CHECK_STR(d->status, "error");
        set_body(d, "{\"type\":\"change\",\"service\":7,\"sha\":\"" SHA "\"}");
        CHECK(delivery_normalize(d, NULL, o) == 0);
        CHECK_STR(d->status, "error");
        CHECK(!d->over_limit);

        /* A time outside 1970..2100 is over a limit (intake answers 400), not just wrong. */
        set_body(d, "{\"type\":\"change\",\"service\":\"checkout\",\"sha\":\"" SHA
                    "\",\"timestamp\":\"2100-01-01T00:00:01Z\"}");
        CHECK(delivery_normalize(d, NULL, o) == 0);
        CHECK_STR(d->status, "error");
        CHECK(d->over_limit && d->events.n == 0);

        /* A second call starts afresh: status, error and over_limit are this body's. */
        set_body(d, "{\"type\":\"change\",\"service\":\"checkout\",\"sha\":\"" SHA
                    "\",\"timestamp\":\"2100-01-01T00:00:00Z\"}");  /* the last time allowed */
        CHECK(delivery_normalize(d, NULL, o) == 0);
        CHECK_STR(d->status, "normalized");
        CHECK(d->error == NULL && !d->over_limit && d->events.n == 1);
        delivery_free(d);
}

/* EVENT_NAME_MAX (200 bytes) is a service's bound: 200 passes, 201 is refused whole. */
static void test_identifier_bound(const struct normalize_options *o) {
        char *at = change_with_service(EVENT_NAME_MAX), *over = change_with_service(201);
        struct delivery *d = make(at, "change");

        CHECK(delivery_normalize(d, NULL, o) == 0);
        CHECK_STR(d->status, "normalized");
        CHECK(d->events.n == 1 && strlen(d->events.items[0].change.service) == 200);
        set_body(d, over);
        CHECK(delivery_normalize(d, NULL, o) == 0);
        CHECK_STR(d->status, "error");
        CHECK(d->over_limit && d->events.n == 0);
        CHECK(d->error && strstr(d->error, "service"));
        delivery_free(d);
        free(at);
        free(over);
}

/* max_json_elements bounds the parse here: the 5 values of {"type","service","sha",
 * "timestamp"} (the object and its four strings) pass at 5 and fail at 4. */
static void test_element_bound(void) {
        struct normalize_options o = normalize_defaults();
        struct delivery *d = make("{\"type\":\"change\",\"service\":\"c\",\"sha\":\"" SHA
                                  "\",\"timestamp\":\"2024-05-06T09:12:00Z\"}", "change");

        o.max_json_elements = 5;
        CHECK(delivery_normalize(d, NULL, &o) == 0);
        CHECK_STR(d->status, "normalized");
        o.max_json_elements = 4;
        CHECK(delivery_normalize(d, NULL, &o) == 0);
        CHECK_STR(d->status, "error");
        CHECK(d->events.n == 0);
        delivery_free(d);
}

/* A tree the caller parsed gives the rows the body gives (live and replay agree), and
 * stays the caller's: its reference count is what it was. */
static void test_given_tree(const struct normalize_options *o) {
        struct delivery *live = make("{\"type\":\"deployment\",\"id\":\"deploy-42\","
                                     "\"service\":\"checkout\",\"environment\":\"production\","
                                     "\"status\":\"success\",\"sha\":\"" SHA "\","
                                     "\"started_at\":\"2024-05-07T14:00:00Z\","
                                     "\"finished_at\":\"2024-05-07T14:06:30Z\"}",
                                     "deployment");
        struct delivery *replayed = make(live->body, "deployment");
        struct error err = { 0 };
        json_t *doc = NULL, *a, *b;

        CHECK(doc_parse(live->body, live->body_len, &doc, &err) == 0);
        CHECK(delivery_normalize(live, doc, o) == 0);
        CHECK(doc->refcount == 1);
        CHECK(delivery_normalize(replayed, NULL, o) == 0);
        CHECK_STR(live->status, "normalized");
        a = eventjson_dump(&live->events);
        b = eventjson_dump(&replayed->events);
        CHECK(a && b && json_array_size(a) >= 1 && json_equal(a, b));
        json_decref(a);
        json_decref(b);
        json_decref(doc);
        delivery_free(live);
        delivery_free(replayed);
}

int main(void) {
        const struct normalize_options o = normalize_defaults();

        CHECK(source_find("generic") != NULL);
        CHECK(delivery_free(NULL) == NULL);
        /* 8 bytes a byte plus a 4 KiB floor: 0 -> 4096, 1000 -> 12096. */
        CHECK(DELIVERY_ARENA_BLOCK(0) == 4096);
        CHECK(DELIVERY_ARENA_BLOCK(1000) == 12096);
        test_normalized(&o);
        test_ignored_and_errors(&o);
        test_identifier_bound(&o);
        test_element_bound();
        test_given_tree(&o);
        return check_summary();
}
