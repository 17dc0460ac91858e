/* Unit tests for arena: the allocator's rules (scope, nesting, the cap, threads), and that a
 * delivery normalized through the arena gives the very rows of one parsed with malloc, for
 * every fixture. Run it under ASan (make SAN=1) too: a value outliving its scope, a heap
 * pointer the arena swallowed or a spill it leaked would show there. */
#include "arena.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "delivery.h"
#include "doc.h"
#include "error.h"
#include "eventjson.h"
#include "hook.h"
#include "normalize.h"
#include "source.h"

#include "check.h"
#include "fixture.h"

static int fixtures_compared;

static void test_scope(void) {
        struct arena a;
        char *heap_before, *p, *q, *big;

        /* No scope: plain malloc, freed by free() (LSan would report a swallowed one). */
        heap_before = arena_malloc(32);
        CHECK(heap_before != NULL);
        memset(heap_before, 'h', 32);

        arena_begin(&a, 4096, 1 << 20);
        p = arena_malloc(10);
        q = arena_malloc(0);
        CHECK(p && q && p != q);
        CHECK(((uintptr_t) p % 8) == 0 && ((uintptr_t) q % 8) == 0);
        CHECK(a.total >= 4096 && a.blocks != NULL);
        memcpy(p, "123456789", 10);
        arena_free(p);                  /* a no-op: the scope's end frees it */
        arena_free(heap_before);        /* a heap pointer freed inside a scope goes to free() */
        arena_free(NULL);
        big = arena_malloc(100000);     /* larger than the first block: a block of its own */
        CHECK(big != NULL && a.spilled == 0);
        memset(big, 'b', 100000);
        CHECK(a.total >= 4096 + 100000);
        arena_end(&a);
        CHECK(a.total == 0 && a.blocks == NULL);

        /* After the scope: malloc again. */
        p = arena_malloc(16);
        CHECK(p != NULL);
        arena_free(p);
}

static void test_cap(void) {
        struct arena a;
        void *spills[64];
        size_t n = 0;

        /* A cap of 16 KiB: past it, malloc serves, and arena_free hands those to free(). */
        arena_begin(&a, 4096, 16384);
        for (int i = 0; i < 64; i++) {
                void *p = arena_malloc(1000);

                CHECK(p != NULL);
                memset(p, 'x', 1000);
                if (a.spilled > n)
                        spills[n++] = p;
        }
        CHECK(a.total <= 16384);
        CHECK(a.spilled == n && n > 40);
        for (size_t i = 0; i < n; i++)
                arena_free(spills[i]);
        /* Beyond the cap at once: malloc, without touching the arena. */
        spills[0] = arena_malloc(1 << 20);
        CHECK(spills[0] != NULL && a.spilled == n + 1);
        arena_free(spills[0]);
        arena_end(&a);

        /* The cap never exceeds ARENA_CAP_MAX, whatever is asked. */
        arena_begin(&a, 4096, SIZE_MAX);
        CHECK(a.cap == ARENA_CAP_MAX);
        arena_end(&a);
}

static void test_nesting(void) {
        struct arena outer, inner;
        char *o, *kept, *i;

        arena_begin(&outer, 4096, 1 << 20);
        o = arena_malloc(64);
        kept = arena_malloc(64);
        memset(o, 'o', 64);
        memset(kept, 'k', 64);
        arena_begin(&inner, 4096, 1 << 20);
        i = arena_malloc(64);
        memset(i, 'i', 64);
        CHECK(inner.total > 0 && outer.total == 4096);
        arena_free(o);                  /* the outer scope's: still a no-op in the inner one */
        arena_end(&inner);
        CHECK(kept[63] == 'k');         /* the outer scope's memory outlives the inner one */
        arena_end(&outer);
}

struct thread_result {
        void *p;
};

static void *other_thread(void *arg) {
        struct thread_result *t = arg;

        /* This thread has no scope, whatever the main thread has open: malloc. */
        t->p = arena_malloc(128);
        if (t->p)
                memset(t->p, 't', 128);
        arena_free(t->p);
        return NULL;
}

static void test_threads(void) {
        struct arena a;
        struct thread_result t = { 0 };
        pthread_t th;

        arena_begin(&a, 4096, 1 << 20);
        (void) arena_malloc(8);
        CHECK(pthread_create(&th, NULL, other_thread, &t) == 0);
        CHECK(pthread_join(th, NULL) == 0);
        CHECK(t.p != NULL);
        CHECK(a.total == 4096);         /* the other thread did not bump from our blocks */
        arena_end(&a);
}

/* The rows of d as sorted compact JSON (malloc'd: made outside any scope). */
static char *rows_text(const struct delivery *d) {
        json_t *rows = eventjson_dump(&d->events);
        char *text = rows ? json_dumps(rows, JSON_COMPACT | JSON_SORT_KEYS) : NULL;

        json_decref(rows);
        return text;
}

/* One fixture both ways: parsed with malloc outside any scope (as before the arena), and
 * from the raw bytes through delivery_normalize's own arena scope (the replay path). Same
 * status, same rows, same error. */
static void compare_fixture(const char *source, const char *dir, const char *name, void *ctx) {
        const struct source *s = source_find(source);
        struct normalize_settings ns;
        struct delivery heap = { 0 }, arena = { 0 };
        struct hook_request hr = { 0 };
        struct fixture fx;
        struct error err = { 0 };
        json_t *doc = NULL;
        char *a = NULL, *b = NULL;

        (void) ctx;
        if (!s || fixture_load(dir, name, &fx) < 0)
                return;
        normalize_settings_init(&ns);
        if (normalize_settings_set(&ns, "jira_approvals_field", "customfield_10090") < 0)
                abort();
        hr = (struct hook_request) { .body = fx.body, .body_len = fx.len,
                                     .headers = fx.headers, .n_headers = fx.n_headers };
        if (doc_parse(fx.body, fx.len, &doc, &err) == 0 &&
            s->identify(&hr, doc, &heap.delivery_id, &heap.event, &err) == 0) {
                heap.source = arena.source = s;
                heap.received_us = arena.received_us = 1717243200000000LL;
                arena.event = strdup(heap.event);
                arena.body = fx.body;
                arena.body_len = fx.len;
                CHECK(delivery_normalize(&heap, doc, &ns.o) == 0);
                CHECK(delivery_normalize(&arena, NULL, &ns.o) == 0);
                a = rows_text(&heap);
                b = rows_text(&arena);
                CHECK_STR(heap.status, arena.status);
                CHECK_STR(a, b);
                if (heap.error || arena.error)
                        CHECK_STR(heap.error, arena.error);
                fixtures_compared++;
                arena.body = NULL; /* the fixture's */
        }
        json_decref(doc);
        free(a);
        free(b);
        free(heap.delivery_id);
        free(heap.event);
        free(heap.error);
        event_list_clear(&heap.events);
        free(arena.event);
        free(arena.error);
        event_list_clear(&arena.events);
        fixture_unload(&fx);
}

/* A tree larger than the cap: the part past it comes from malloc and goes back to free()
 * when the tree is released in the scope; the tree reads the same as one made with malloc. */
static void test_spilled_tree(const char *fixtures) {
        char path[4096];
        struct fixture fx;
        struct arena a;
        struct error err = { 0 };
        json_t *heap = NULL, *doc = NULL;

        snprintf(path, sizeof(path), "%s/github", fixtures);
        if (fixture_load(path, "push.branch.50-commits.json", &fx) < 0) {
                CHECK(!"push.branch.50-commits.json is missing");
                return;
        }
        CHECK(doc_parse(fx.body, fx.len, &heap, &err) == 0);
        arena_begin(&a, 4096, 32768);
        CHECK(doc_parse(fx.body, fx.len, &doc, &err) == 0);
        CHECK(a.spilled > 0 && a.total <= 32768);
        CHECK(json_equal(heap, doc));
        json_decref(doc);
        arena_end(&a);
        json_decref(heap);
        fixture_unload(&fx);
}

int main(int argc, char **argv) {
        const char *fixtures = argc > 1 ? argv[1] : "tests/fixtures";

        arena_install();
        test_scope();
        test_cap();
        test_nesting();
        test_threads();
        test_spilled_tree(fixtures);
        CHECK(fixture_walk(fixtures, compare_fixture, NULL) > 50);
        CHECK(fixtures_compared > 50);
        return check_summary();
}
