/* Unit tests for the sources' verify() and identify() on the real fixtures in
 * tests/fixtures/<source>/ (argv[1] names tests/fixtures). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "doc.h"
#include "error.h"
#include "hmac.h"
#include "hook.h"
#include "source.h"

#include "check.h"
#include "fixture.h"

#define FIXTURE_SECRET "It's a Secret to Everybody"
#define GITLAB_TOKEN "fixture-webhook-token"
#define BEARER "unit-test-token"

static const char *secret_of(const struct source *s) {
        if (strcmp(s->name, "gitlab") == 0)
                return GITLAB_TOKEN;
        if (strcmp(s->name, "jenkins") == 0 || strcmp(s->name, "generic") == 0)
                return BEARER;
        return FIXTURE_SECRET;
}

/* What the delivery id must be: the vendor's header where it sends one. */
static void expect_id(const struct source *s, const struct hook_request *hr, json_t *doc,
                      const char *id, const char *event) {
        char hex[HMAC_HEX_LEN + 1];

        if (strcmp(s->name, "github") == 0) {
                CHECK_STR(id, hook_header(hr, "X-GitHub-Delivery"));
                CHECK_STR(event, hook_header(hr, "X-GitHub-Event"));
        } else if (strcmp(s->name, "gitlab") == 0) {
                CHECK_STR(id, hook_header(hr, "X-Gitlab-Event-UUID"));
                CHECK_STR(event, hook_header(hr, "X-Gitlab-Event"));
        } else if (strcmp(s->name, "jira") == 0) {
                const char *h = hook_header(hr, "X-Atlassian-Webhook-Identifier");

                CHECK(sha256_hex(hr->body, hr->body_len, hex) == 0);
                CHECK_STR(id, h ? h : hex);
                CHECK_STR(event, doc_string(doc, "webhookEvent") ? doc_string(doc, "webhookEvent")
                                                                 : "automation");
        } else if (strcmp(s->name, "jenkins") == 0) {
                CHECK(id && strstr(id, doc_string(doc, "build.full_url")) == id);
                CHECK_STR(event, doc_string(doc, "build.phase"));
        } else if (strcmp(s->name, "generic") == 0) {
                CHECK(sha256_hex(hr->body, hr->body_len, hex) == 0);
                CHECK_STR(id, hook_header(hr, "Idempotency-Key") ? hook_header(hr, "Idempotency-Key")
                                                                 : hex);
                CHECK_STR(event, doc_string(doc, "type"));
        }
}

static void test_fixture(const struct source *s, const char *dir, const char *name) {
        struct fixture fx;
        struct hook_request hr;
        struct error err = { 0 };
        char bearer[64], *id = NULL, *event = NULL;
        json_t *doc = NULL;

        if (fixture_load(dir, name, &fx) < 0) {
                fprintf(stderr, "cannot load %s/%s\n", dir, name);
                checks_failed++;
                return;
        }
        if (strcmp(s->name, "jenkins") == 0 || strcmp(s->name, "generic") == 0) {
                snprintf(bearer, sizeof(bearer), "Bearer %s", BEARER);
                if (!hook_header(&(struct hook_request) { .headers = fx.headers,
                                                          .n_headers = fx.n_headers },
                                 "Authorization"))
                        fixture_add_header(&fx, "Authorization", bearer);
        }
        hr = (struct hook_request) { fx.body, fx.len, fx.headers, fx.n_headers, NULL };
        /* JSM automation rules cannot sign; they pass ?token= instead. */
        if (strcmp(s->name, "jira") == 0 && !hook_header(&hr, "X-Hub-Signature"))
                hr.query_token = FIXTURE_SECRET;

        CHECK(s->verify(&hr, secret_of(s), &err) == 0);
        /* Rotation: the right secret second in the list still verifies. */
        {
                char two[128];

                snprintf(two, sizeof(two), "old-secret, %s", secret_of(s));
                CHECK(s->verify(&hr, two, &err) == 0);
        }
        CHECK(s->verify(&hr, "wrong-secret", &err) == -EACCES);
        CHECK(err.code != NULL);

        /* A changed body no longer matches an HMAC. */
        if (strcmp(s->name, "github") == 0 || strcmp(s->name, "jira") == 0) {
                if (hook_header(&hr, "X-Hub-Signature-256") || hook_header(&hr, "X-Hub-Signature")) {
                        fx.body[fx.len / 2] ^= 1;
                        CHECK(s->verify(&hr, secret_of(s), &err) == -EACCES);
                        CHECK_STR(err.code, "bad_signature");
                        fx.body[fx.len / 2] ^= 1;
                }
        }

        CHECK(doc_parse(fx.body, fx.len, &doc, &err) == 0);
        CHECK(s->identify(&hr, doc, &id, &event, &err) == 0);
        if (!id)
                fprintf(stderr, "%s/%s: %s\n", dir, name, err.msg);
        expect_id(s, &hr, doc, id, event);
        free(id);
        free(event);
        json_decref(doc);
        fixture_unload(&fx);
}

static void visit(const char *source, const char *dir, const char *name, void *ctx) {
        (void) ctx;
        test_fixture(source_find(source), dir, name);
}

static void test_identify_errors(void) {
        const struct source *gh = source_find("github"), *jk = source_find("jenkins");
        struct hook_header h[2] = { { "X-GitHub-Event", "push" }, { "X-GitHub-Delivery", "a\x01" } };
        struct hook_request hr = { "{}", 2, h, 1, NULL };
        struct error err = { 0 };
        char *id = NULL, *event = NULL;
        json_t *doc = json_object();

        CHECK(gh->identify(&hr, doc, &id, &event, &err) == -EBADMSG);  /* no delivery id */
        CHECK_STR(err.code, "invalid_payload");
        hr.n_headers = 2;
        CHECK(gh->identify(&hr, doc, &id, &event, &err) == -EBADMSG);  /* control character */
        json_object_set_new(doc, "build", json_pack("{s:s,s:s,s:s}", "full_url", "u",
                                                    "number", "7", "phase", "COMPLETED"));
        CHECK(jk->identify(&hr, doc, &id, &event, &err) == -EBADMSG);  /* number as string */
        CHECK_STR(err.field, "build.number");
        CHECK(id == NULL && event == NULL);
        json_decref(doc);
        CHECK(source_find("nope") == NULL);
}

int main(int argc, char **argv) {
        const char *fixtures = argc > 1 ? argv[1] : "tests/fixtures";

        CHECK(fixture_walk(fixtures, visit, NULL) >= 40);
        test_identify_errors();
        return check_summary();
}
