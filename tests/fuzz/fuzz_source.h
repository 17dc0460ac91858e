/* fuzz_source: the libFuzzer driver shared by fuzz_<source>.c, each of which defines
 * FUZZ_SOURCE and includes this file. An input is a header block ("Name: value" lines, a
 * ":token: value" line standing for ?token=), a blank line, then the body; without a blank
 * line it is all body. The delivery goes the way http.c and a replay take it: verify,
 * doc_parse, identify, delivery_normalize, the rows dumped as JSON, and normalized again
 * from the raw bytes (a replay), which must give the same rows. jansson allocates through
 * lib/arena.c as in the daemon, so ASan sees any value that outlives its arena scope.
 * The element limit (max_json_elements): doc_count_elements() is held to the count of
 * jansson's own tree, a limit one below it must refuse the body, and inputs of odd length
 * run with a limit of 256, which the live parse and the replay's must refuse alike. */
#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "delivery.h"
#include "doc.h"
#include "error.h"
#include "event.h"
#include "eventjson.h"
#include "hook.h"
#include "normalize.h"
#include "source.h"

#define MAX_HEADERS 32
#define FUZZ_ELEMENT_LIMIT 256

static bool arena_installed;

/* The fixtures' credentials (tests/fixtures/README.md), so seeds verify. */
static const char *secret_of(const char *source) {
        if (strcmp(source, "gitlab") == 0)
                return "fixture-webhook-token";
        if (strcmp(source, "jenkins") == 0)
                return "jenkins-test-token-5f1d9c";
        if (strcmp(source, "generic") == 0)
                return "generic-test-token-a41c07,second-token";
        return "It's a Secret to Everybody";
}

/* The rows of d as compact JSON text (malloc'd), or NULL on OOM. */
static char *rows_text(const struct delivery *d) {
        json_t *rows = eventjson_dump(&d->events);
        char *text = rows ? json_dumps(rows, JSON_COMPACT | JSON_SORT_KEYS) : NULL;

        json_decref(rows);
        return text;
}

/* Values in a tree, as doc_count_elements() counts them (keys are not values). */
static size_t tree_values(json_t *v) {
        size_t n = 1;

        if (json_is_object(v)) {
                const char *key;
                json_t *member;

                json_object_foreach(v, key, member)
                        n += tree_values(member);
        } else if (json_is_array(v)) {
                for (size_t i = 0; i < json_array_size(v); i++)
                        n += tree_values(json_array_get(v, i));
        }
        return n;
}

static bool refused_for_limit(int r, const struct error *err) {
        return r == -EBADMSG && err->field && strcmp(err->field, "max_json_elements") == 0;
}

/* The count is exact for whatever jansson accepts, and the limit refuses one value more. */
static void check_element_count(const char *body, size_t size) {
        size_t n = doc_count_elements(body, size, SIZE_MAX);
        struct error err = { 0 };
        json_error_t jerr;
        json_t *tree = json_loadb(body, size, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
        json_t *doc = NULL;

        if (!tree)
                return;
        if (tree_values(tree) != n) {
                fprintf(stderr, "doc_count_elements says %zu, jansson's tree has %zu\n", n,
                        tree_values(tree));
                abort();
        }
        json_decref(tree);
        if (doc_count_elements(body, size, n - 1) <= n - 1)
                abort();        /* stopping early must still say "over" */
        if (n > 1 && !refused_for_limit(doc_parse_bounded(body, size, n - 1, &doc, &err), &err))
                abort();
        json_decref(doc);
}

/* A delivery as a replay reads it back from events_raw: source, event, time and the exact
 * body bytes (body holds size + 1, NUL-terminated), not yet normalized; NULL on OOM. */
static struct delivery *stored_copy(const struct source *src, const char *event,
                                    int64_t received_us, const char *body, size_t size) {
        struct delivery *d = calloc(1, sizeof(*d));

        if (!d)
                return NULL;
        d->source = src;
        d->received_us = received_us;
        d->event = strdup(event);
        d->body = malloc(size + 1);
        if (!d->event || !d->body)
                return delivery_free(d);
        memcpy(d->body, body, size + 1);
        d->body_len = size;
        return d;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        const struct source *src = source_find(FUZZ_SOURCE);
        struct hook_header headers[MAX_HEADERS];
        struct hook_request hr = { 0 };
        struct normalize_options o = normalize_defaults();
        struct error err = { 0 };
        struct delivery *live = NULL, *replay = NULL;
        char *head = NULL, *body, *live_rows = NULL, *replay_rows = NULL;
        const uint8_t *sep = NULL;
        size_t n_headers = 0, head_len = 0;
        struct arena arena;
        json_t *doc = NULL;
        int r;

        if (!src)
                abort();
        if (!arena_installed) {
                arena_install(); /* jansson allocates through lib/arena.c, as in the daemon */
                arena_installed = true;
        }
        for (size_t i = 0; i + 1 < size; i++)
                if (data[i] == '\n' && (i == 0 || data[i + 1] == '\n')) {
                        sep = data + i;
                        break;
                }
        if (sep) {
                /* "\n" at 0 is an empty header block; otherwise the blank line ends it. */
                head_len = (size_t) (sep - data);
                head = malloc(head_len + 1);
                if (!head)
                        return 0;
                memcpy(head, data, head_len);
                head[head_len] = '\0';
                for (char *line = head, *next; line && n_headers < MAX_HEADERS; line = next) {
                        char *colon;

                        next = strchr(line, '\n');
                        if (next)
                                *next++ = '\0';
                        colon = strchr(line + (line[0] == ':'), ':');
                        if (!colon)
                                continue;
                        *colon++ = '\0';
                        while (*colon == ' ')
                                colon++;
                        if (strcmp(line, ":token") == 0)
                                hr.query_token = colon;
                        else
                                headers[n_headers++] = (struct hook_header) { line, colon };
                }
                data = sep + (head_len ? 2 : 1);
                size -= head_len + (head_len ? 2 : 1);
        }
        /* An exact-size copy, NUL-terminated as http.c hands it, so overreads show. */
        body = malloc(size + 1);
        if (!body) {
                free(head);
                return 0;
        }
        memcpy(body, data, size);
        body[size] = '\0';
        hr.body = body;
        hr.body_len = size;
        hr.headers = headers;
        hr.n_headers = n_headers;

        o.service_map = "octocat/Hello-World=hello,jsmith/example=example,OPS=operations";
        /* The fixtures' repositories as monorepos, so pushes go through normalize_map_paths. */
        o.service_paths = "Codertocat/Hello-World:README.md=docs,Codertocat/Hello-World:src=app,"
                          "mike/diaspora:app=web,mike/diaspora:CHANGELOG=docs";
        o.max_json_elements = size % 2 ? FUZZ_ELEMENT_LIMIT : 0;
        check_element_count(body, size);
        (void) src->verify(&hr, secret_of(src->name), &err);
        (void) src->verify(&hr, "", &err);
        /* As http.c does it: the tree lives in an arena scope that ends after normalize(). */
        arena_begin(&arena, DELIVERY_ARENA_BLOCK(size), ARENA_CAP_MAX);
        r = doc_parse_bounded(body, size, o.max_json_elements, &doc, &err);
        if (refused_for_limit(r, &err)) {
                arena_end(&arena);
                goto limited;
        }
        if (r == 0) {
                live = calloc(1, sizeof(*live));
                r = live ? 0 : -1;
        }
        if (r == 0) {
                live->source = src;
                live->received_us = 1732600000000000;
                r = src->identify(&hr, doc, &live->delivery_id, &live->event, &err);
        }
        if (r == 0 && (strlen(live->delivery_id) > SOURCE_ID_MAX ||
                       strlen(live->event) > SOURCE_ID_MAX))
                abort();        /* identify() promises bounded ids */
        if (r == 0)
                r = delivery_normalize(live, doc, &o);
        json_decref(doc);
        arena_end(&arena);
        if (r < 0)
                goto out;
        live_rows = rows_text(live);

        /* The replay path: the stored bytes parsed again give the very same rows. */
        replay = stored_copy(src, live->event, live->received_us, body, size);
        if (!replay || delivery_normalize(replay, NULL, &o) < 0)
                goto out;
        replay_rows = rows_text(replay);
        if (live_rows && replay_rows &&
            (strcmp(live_rows, replay_rows) != 0 || strcmp(live->status, replay->status) != 0)) {
                fprintf(stderr, "live and replayed rows differ:\n%s\n%s\n", live_rows,
                        replay_rows);
                abort();
        }
        goto out;

limited:
        /* Refused at intake for the limit: a replay of the same stored bytes under the same
         * limit marks it error, naming the limit, and builds no rows. */
        replay = stored_copy(src, "fuzz", 0, body, size);
        if (!replay || delivery_normalize(replay, NULL, &o) < 0)
                goto out;
        if (strcmp(replay->status, "error") != 0 || replay->events.n != 0 ||
            !strstr(replay->error, "max_json_elements"))
                abort();
out:
        free(live_rows);
        free(replay_rows);
        delivery_free(live);
        delivery_free(replay);
        free(body);
        free(head);
        return 0;
}
