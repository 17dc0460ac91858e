/* Unit tests for the sources' verify() and identify() on the real fixtures in
 * tests/fixtures/<source>/ (argv[1] names tests/fixtures). */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "doc.h"
#include "error.h"
#include "hmac.h"
#include "hook.h"
#include "source.h"

#include "check.h"

#define FIXTURE_SECRET "It's a Secret to Everybody"
#define GITLAB_TOKEN "fixture-webhook-token"
#define BEARER "unit-test-token"

struct fixture {
        char *body;
        size_t len;
        struct hook_header headers[32];
        char *lines[32];
        size_t n_headers;
};

static char *slurp(const char *path, size_t *ret_len) {
        FILE *f = fopen(path, "rb");
        char *data = NULL;
        long n;

        if (!f)
                return NULL;
        if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
                data = malloc((size_t) n + 1);
                if (data && fread(data, 1, (size_t) n, f) == (size_t) n) {
                        data[n] = '\0';
                        *ret_len = (size_t) n;
                } else {
                        free(data);
                        data = NULL;
                }
        }
        fclose(f);
        return data;
}

static int load(const char *dir, const char *json_name, struct fixture *fx) {
        char path[4096];
        size_t hlen;
        char *headers, *line, *next;

        memset(fx, 0, sizeof(*fx));
        snprintf(path, sizeof(path), "%s/%s", dir, json_name);
        fx->body = slurp(path, &fx->len);
        snprintf(path + strlen(path) - strlen(".json"), 9, ".headers");
        headers = slurp(path, &hlen);
        if (!fx->body || !headers) {
                free(headers);
                return -ENOENT;
        }
        for (line = headers; line && *line && fx->n_headers < 30; line = next) {
                char *colon, *copy;

                next = strchr(line, '\n');
                if (next)
                        *next++ = '\0';
                colon = strchr(line, ':');
                if (!colon)
                        continue;
                copy = strdup(line);
                copy[colon - line] = '\0';
                fx->lines[fx->n_headers] = copy;
                fx->headers[fx->n_headers].name = copy;
                fx->headers[fx->n_headers].value = copy + (colon - line) + 1 +
                                                   strspn(colon + 1, " ");
                fx->n_headers++;
        }
        free(headers);
        return 0;
}

static void add_header(struct fixture *fx, const char *name, const char *value) {
        fx->headers[fx->n_headers++] = (struct hook_header) { name, value };
}

static void unload(struct fixture *fx) {
        for (size_t i = 0; i < 32; i++)
                free(fx->lines[i]);
        free(fx->body);
}

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

        if (load(dir, name, &fx) < 0) {
                fprintf(stderr, "cannot load %s/%s\n", dir, name);
                checks_failed++;
                return;
        }
        if (strcmp(s->name, "jenkins") == 0 || strcmp(s->name, "generic") == 0) {
                snprintf(bearer, sizeof(bearer), "Bearer %s", BEARER);
                if (!hook_header(&(struct hook_request) { .headers = fx.headers,
                                                          .n_headers = fx.n_headers },
                                 "Authorization"))
                        add_header(&fx, "Authorization", bearer);
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
        unload(&fx);
}

static int walk(const char *fixtures) {
        int seen = 0;

        for (size_t i = 0; source_table[i]; i++) {
                char dir[1024];
                struct dirent **names;
                int n;

                snprintf(dir, sizeof(dir), "%s/%s", fixtures, source_table[i]->name);
                n = scandir(dir, &names, NULL, alphasort);
                CHECK(n > 2); /* every source has fixtures */
                for (int j = 0; j < n; j++) {
                        size_t len = strlen(names[j]->d_name);

                        if (len > 5 && strcmp(names[j]->d_name + len - 5, ".json") == 0) {
                                test_fixture(source_table[i], dir, names[j]->d_name);
                                seen++;
                        }
                        free(names[j]);
                }
                if (n > 0)
                        free(names);
        }
        return seen;
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

        CHECK(walk(fixtures) >= 40);
        test_identify_errors();
        return check_summary();
}
