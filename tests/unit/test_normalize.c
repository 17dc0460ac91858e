/* Fixture-driven normalization tests. For every tests/fixtures/<source>/<case>.json, the
 * rows normalize() produces must equal <case>.expect:
 *   {"status":"normalized","rows":[...]} | {"status":"ignored","reason":"..."} |
 *   {"status":"error","message":"..."}
 * With DORALOOP_WRITE_EXPECT=1 missing .expect files are written from the current output
 * (to be read and checked by hand before committing). Then every field of every fixture
 * gets a wrong JSON type: the outcome must be the original one or an error, never other
 * rows and never a crash. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "doc.h"
#include "error.h"
#include "event.h"
#include "eventjson.h"
#include "hook.h"
#include "normalize.h"
#include "source.h"

#include "check.h"
#include "fixture.h"

/* 2024-06-01T12:00:00Z: when every fixture is taken to have arrived. */
#define FIXTURE_RECEIVED_US 1717243200000000LL

static int mutations, mutation_errors;

/* The outcome of normalizing doc, as the JSON an .expect file holds. */
static json_t *outcome(const struct source *s, json_t *doc, const char *event) {
        struct normalize_settings ns;
        struct event_list rows = { 0 };
        struct error err = { 0 };
        json_t *out;
        int r;

        /* The field the derived JSM change fixtures keep their Approvals in (docs/sources.md). */
        normalize_settings_init(&ns);
        if (normalize_settings_set(&ns, "jira_approvals_field", "customfield_10090") < 0)
                abort();

        if (!s->normalize)
                return json_pack("{s:s,s:s}", "status", "error", "message", "no normalize()");
        /* A fixed arrival time, so outcomes never depend on the clock. */
        r = s->normalize(doc, event, FIXTURE_RECEIVED_US, &ns.o, &rows, &err);

        if (r > 0)
                out = json_pack("{s:s,s:o}", "status", "normalized", "rows",
                                eventjson_dump(&rows));
        else if (r == 0)
                out = json_pack("{s:s,s:s}", "status", "ignored", "reason", err.msg);
        else
                out = json_pack("{s:s,s:s}", "status", "error", "message", err.msg);
        if (r > 0 && (size_t) r != rows.n) {
                fprintf(stderr, "%s: normalize returned %d but added %zu rows\n", s->name, r,
                        rows.n);
                checks_failed++;
        }
        event_list_clear(&rows);
        return out;
}

/* Gives the value at *slot a different JSON type, calls check, and puts it back. */
static void mutate_all(json_t *root, json_t *node, const struct source *s, const char *event,
                       const json_t *original, const char *where);

static void try_mutation(json_t *root, const struct source *s, const char *event,
                         const json_t *original, const char *where) {
        json_t *got = outcome(s, root, event);
        const char *status = json_string_value(json_object_get(got, "status"));

        mutations++;
        if (status && strcmp(status, "error") == 0)
                mutation_errors++;
        else if (!json_equal(got, original)) {
                char *text = json_dumps(got, JSON_COMPACT);

                checks_failed++;
                fprintf(stderr, "%s %s: changing the type of %s gave other rows: %.300s\n",
                        s->name, event, where, text);
                free(text);
        } else {
                checks_passed++;
        }
        json_decref(got);
}

static json_t *other_type(json_t *v) {
        switch (json_typeof(v)) {
        case JSON_STRING: return json_integer(12345);
        case JSON_INTEGER:
        case JSON_REAL: return json_string("not a number");
        case JSON_OBJECT: return json_string("not an object");
        case JSON_ARRAY: return json_object();
        case JSON_TRUE:
        case JSON_FALSE: return json_string("yes");
        case JSON_NULL: return json_array();
        }
        return json_null();
}

static void mutate_all(json_t *root, json_t *node, const struct source *s, const char *event,
                       const json_t *original, const char *where) {
        char path[512];

        if (json_is_object(node)) {
                const char *key;
                json_t *v;
                void *tmp;

                json_object_foreach_safe(node, tmp, key, v) {
                        json_t *saved = json_incref(v);

                        snprintf(path, sizeof(path), "%s.%s", where, key);
                        json_object_set_new(node, key, other_type(saved));
                        try_mutation(root, s, event, original, path);
                        json_object_set(node, key, saved);
                        mutate_all(root, saved, s, event, original, path);
                        json_decref(saved);
                }
        } else if (json_is_array(node)) {
                /* The first two elements stand for the rest: arrays repeat one shape. */
                for (size_t i = 0; i < json_array_size(node) && i < 2; i++) {
                        json_t *saved = json_incref(json_array_get(node, i));

                        snprintf(path, sizeof(path), "%s[%zu]", where, i);
                        json_array_set_new(node, i, other_type(saved));
                        try_mutation(root, s, event, original, path);
                        json_array_set(node, i, saved);
                        mutate_all(root, saved, s, event, original, path);
                        json_decref(saved);
                }
        }
}

static void test_fixture(const char *source, const char *dir, const char *name, void *ctx) {
        const struct source *s = source_find(source);
        bool write = getenv("DORALOOP_WRITE_EXPECT") != NULL;
        struct fixture fx;
        struct hook_request hr;
        struct error err = { 0 };
        char path[4096], *id = NULL, *event = NULL;
        json_t *doc = NULL, *got, *want;
        json_error_t jerr;

        (void) ctx;
        CHECK(fixture_load(dir, name, &fx) == 0);
        hr = (struct hook_request) { fx.body, fx.len, fx.headers, fx.n_headers, NULL };
        CHECK(doc_parse(fx.body, fx.len, &doc, &err) == 0);
        CHECK(s->identify(&hr, doc, &id, &event, &err) == 0);
        if (!doc || !event) {
                fprintf(stderr, "%s/%s: cannot identify: %s\n", dir, name, err.msg);
                goto out;
        }

        got = outcome(s, doc, event);
        snprintf(path, sizeof(path), "%s/%.*s.expect", dir, (int) (strlen(name) - 5), name);
        want = json_load_file(path, 0, &jerr);
        if (!want && write) {
                json_dump_file(got, path, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
                fprintf(stderr, "wrote %s\n", path);
        } else if (!json_equal(got, want)) {
                char *text = json_dumps(got, JSON_INDENT(2) | JSON_PRESERVE_ORDER);

                checks_failed++;
                fprintf(stderr, "%s/%s: rows differ from %s; got:\n%s\n", dir, name,
                        want ? path : "(no .expect file)", text);
                free(text);
        } else {
                checks_passed++;
        }
        mutate_all(doc, doc, s, event, got, "body");
        json_decref(want);
        json_decref(got);
out:
        json_decref(doc);
        free(id);
        free(event);
        fixture_unload(&fx);
}

/* Runs only the fixture named by ctx ("<source>/<case>.json"), when given. */
static void test_one(const char *source, const char *dir, const char *name, void *ctx) {
        char id[1024];

        snprintf(id, sizeof(id), "%s/%s", source, name);
        if (strcmp(id, ctx) == 0) {
                checks_passed++; /* found */
                test_fixture(source, dir, name, NULL);
        }
}

/* test_normalize [FIXTURES [SOURCE/CASE.json]]: every fixture, or just the one named. */
int main(int argc, char **argv) {
        const char *fixtures = argc > 1 ? argv[1] : "tests/fixtures";

        if (argc > 2) {
                int before = checks_passed;

                fixture_walk(fixtures, test_one, argv[2]);
                if (checks_passed == before) {
                        fprintf(stderr, "no fixture %s\n", argv[2]);
                        checks_failed++;
                }
                return check_summary();
        }
        CHECK(fixture_walk(fixtures, test_fixture, NULL) >= 40);
        printf("type mutations: %d tried, %d gave an error, the rest no change\n", mutations,
               mutation_errors);
        return check_summary();
}
