/* Unit tests for the sources' verify() and identify() on the real fixtures in
 * tests/fixtures/<source>/ (argv[1] names tests/fixtures). */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "confkey.h"
#include "doc.h"
#include "error.h"
#include "hmac.h"
#include "hook.h"
#include "normalize.h"
#include "source.h"
#include "timefmt.h"

#include "check.h"
#include "fixture.h"

/* tests/fixtures/<source>/rules (its comment says how to read it): the secret, how a
 * fixture without a credential of its own is sent, what identify() must find. */
struct rules {
        char secret[128];
        char unsigned_by[16];   /* "bearer", "basic", "query" or "" */
        char delivery_id[256];
        char event[256];
};

static void copy_field(char *dst, size_t size, const char *line, const char *what) {
        size_t n = strlen(what);

        if (strncmp(line, what, n) == 0 && line[n] == ':') {
                line += n + 1;
                while (*line == ' ')
                        line++;
                snprintf(dst, size, "%s", line);
        }
}

static void rules_load(const char *source, const char *dir, struct rules *r) {
        char path[4096], *text;
        size_t len;

        *r = (struct rules) { 0 };
        snprintf(r->secret, sizeof(r->secret), "%s-test-token", source);
        snprintf(path, sizeof(path), "%s/rules", dir);
        text = fixture_slurp(path, &len);
        for (char *line = text, *next; line && *line; line = next) {
                next = line + strcspn(line, "\n");
                if (*next)
                        *next++ = '\0';
                copy_field(r->secret, sizeof(r->secret), line, "secret");
                copy_field(r->unsigned_by, sizeof(r->unsigned_by), line, "unsigned");
                copy_field(r->delivery_id, sizeof(r->delivery_id), line, "delivery_id");
                copy_field(r->event, sizeof(r->event), line, "event");
        }
        free(text);
}

/* What one rule's alternatives ("header X | sha256") give for the fixture, in buf; NULL when
 * none is present. *ret_prefix says the value only starts the id (a format of its own). */
static const char *rule_value(const char *rule, const struct hook_request *hr, json_t *doc,
                              char *buf, size_t size, bool *ret_prefix) {
        char alts[256];

        *ret_prefix = false;
        snprintf(alts, sizeof(alts), "%s", rule);
        for (char *alt = alts, *next; alt; alt = next) {
                const char *v = NULL;

                next = strchr(alt, '|');
                if (next)
                        *next++ = '\0';
                while (*alt == ' ')
                        alt++;
                for (char *end = alt + strlen(alt); end > alt && end[-1] == ' ';)
                        *--end = '\0';
                if (strncmp(alt, "prefix ", 7) == 0) {
                        *ret_prefix = true;
                        alt += 7;
                }
                if (strncmp(alt, "header ", 7) == 0)
                        v = hook_header(hr, alt + 7);
                else if (strncmp(alt, "body ", 5) == 0)
                        v = doc_string(doc, alt + 5);
                else if (strncmp(alt, "literal ", 8) == 0)
                        v = alt + 8;
                else if (strcmp(alt, "sha256") == 0 && sha256_hex(hr->body, hr->body_len, buf) == 0)
                        return buf;
                if (v) {
                        snprintf(buf, size, "%s", v);
                        return buf;
                }
        }
        return NULL;
}

/* The id or event identify() found against what the rule says it must be. */
static void expect_rule(const char *what, const char *rule, const struct hook_request *hr,
                        json_t *doc, const char *found) {
        char buf[512];
        bool prefix;
        const char *want = rule_value(rule, hr, doc, buf, sizeof(buf), &prefix);

        CHECK(found && *found);
        if (!*rule)
                return;
        if (!want) {
                fprintf(stderr, "%s: no alternative of '%s' is present\n", what, rule);
                checks_failed++;
        } else if (prefix) {
                CHECK(found && strncmp(found, want, strlen(want)) == 0);
        } else {
                CHECK_STR(found, want);
        }
}

/* "Basic " and base64 of "doraloop:<secret>" (RFC 7617: any user name), into buf. */
static void basic_credentials(const char *secret, char *buf, size_t size) {
        static const char digits[] =
                "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        char plain[160];
        size_t n = (size_t) snprintf(plain, sizeof(plain), "doraloop:%s", secret), k;

        k = (size_t) snprintf(buf, size, "Basic ");
        for (size_t i = 0; i < n && k + 4 < size; i += 3) {
                unsigned v = (unsigned char) plain[i] << 16;

                v |= i + 1 < n ? (unsigned char) plain[i + 1] << 8 : 0;
                v |= i + 2 < n ? (unsigned char) plain[i + 2] : 0;
                buf[k++] = digits[v >> 18 & 63];
                buf[k++] = digits[v >> 12 & 63];
                buf[k++] = i + 1 < n ? digits[v >> 6 & 63] : '=';
                buf[k++] = i + 2 < n ? digits[v & 63] : '=';
        }
        buf[k] = '\0';
}

/* Whether the fixture carries a credential of its own (a signature, a token header). */
static bool carries_credential(const struct fixture *fx) {
        for (size_t i = 0; i < fx->n_headers; i++)
                if (strcasestr(fx->headers[i].name, "signature") ||
                    strcasestr(fx->headers[i].name, "token") ||
                    strcasecmp(fx->headers[i].name, "Authorization") == 0)
                        return true;
        return false;
}

static void test_fixture(const struct source *s, const char *dir, const char *name) {
        struct fixture fx;
        struct hook_request hr;
        struct error err = { 0 };
        struct rules rules;
        char bearer[256], *id = NULL, *event = NULL;
        bool own_credential;
        json_t *doc = NULL;

        rules_load(s->name, dir, &rules);
        if (fixture_load(dir, name, &fx) < 0) {
                fprintf(stderr, "cannot load %s/%s\n", dir, name);
                checks_failed++;
                return;
        }
        own_credential = carries_credential(&fx);
        if (!own_credential && strcmp(rules.unsigned_by, "bearer") == 0) {
                snprintf(bearer, sizeof(bearer), "Bearer %s", rules.secret);
                fixture_add_header(&fx, "Authorization", bearer);
        }
        if (!own_credential && strcmp(rules.unsigned_by, "basic") == 0) {
                basic_credentials(rules.secret, bearer, sizeof(bearer));
                fixture_add_header(&fx, "Authorization", bearer);
        }
        hr = (struct hook_request) { fx.body, fx.len, fx.headers, fx.n_headers, NULL };
        /* JSM automation rules cannot sign; they pass ?token= instead. */
        if (!own_credential && strcmp(rules.unsigned_by, "query") == 0)
                hr.query_token = rules.secret;

        CHECK(s->verify(&hr, rules.secret, &err) == 0);
        /* Rotation: the right secret second in the list still verifies. */
        {
                char two[160];

                snprintf(two, sizeof(two), "old-secret, %s", rules.secret);
                CHECK(s->verify(&hr, two, &err) == 0);
        }
        CHECK(s->verify(&hr, "wrong-secret", &err) == -EACCES);
        CHECK(err.code != NULL);

        /* A changed body no longer matches an HMAC. */
        if (s->verify_reads_body && own_credential) {
                fx.body[fx.len / 2] ^= 1;
                CHECK(s->verify(&hr, rules.secret, &err) == -EACCES);
                CHECK_STR(err.code, "bad_signature");
                fx.body[fx.len / 2] ^= 1;
        }

        CHECK(doc_parse(fx.body, fx.len, &doc, &err) == 0);
        CHECK(s->identify(&hr, doc, &id, &event, &err) == 0);
        if (!id)
                fprintf(stderr, "%s/%s: %s\n", dir, name, err.msg);
        expect_rule("delivery_id", rules.delivery_id, &hr, doc, id);
        expect_rule("event", rules.event, &hr, doc, event);
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

/* The registry: each source's rows are well formed, its secret key is one of them, its
 * defaults parse, and no key name is used twice (the config table takes them all). */
static void test_registry(void) {
        char names[SOURCE_MAX * 24];
        struct normalize_options o = normalize_defaults();
        struct normalize_settings ns;

        CHECK(source_count() > 0 && source_count() <= SOURCE_MAX);
        for (size_t i = 0; source_table[i]; i++) {
                const struct source *s = source_table[i];
                bool has_secret = false;
                unsigned char scratch[SOURCE_OPTIONS_MAX];

                CHECK(source_index(s) == i);
                CHECK(s->options_size <= SOURCE_OPTIONS_MAX);
                CHECK(confkey_defaults(s->keys, s->n_keys, scratch) == NULL);
                for (size_t k = 0; k < s->n_keys; k++) {
                        const struct confkey *row = &s->keys[k];

                        CHECK(row->name && row->help && row->offset < s->options_size);
                        if (row->type == KEY_STRING)
                                CHECK(row->def != NULL);        /* never NULL for normalize() */
                        has_secret |= row->type == KEY_SECRET &&
                                      strcmp(row->name, s->secret_key) == 0;
                        for (size_t j = 0; source_table[j]; j++)
                                for (size_t m = 0; m < source_table[j]->n_keys; m++)
                                        if (j != i || m != k)
                                                CHECK(strcmp(row->name,
                                                             source_table[j]->keys[m].name) != 0);
                        for (size_t m = 0; m < normalize_n_keys; m++)
                                CHECK(strcmp(row->name, normalize_keys[m].name) != 0);
                }
                CHECK(has_secret);
                CHECK(source_options(&o, s) == source_defaults(i));
        }
        /* A zeroed options struct falls back to the defaults. */
        CHECK(source_options(&(struct normalize_options) { 0 }, source_find("jenkins")) ==
              source_defaults(source_index(source_find("jenkins"))));
        source_names(names, sizeof(names), "|");
        CHECK(strncmp(names, "github|gitlab|", 14) == 0);
        for (size_t i = 0; source_table[i]; i++)
                CHECK(strstr(names, source_table[i]->name) != NULL);
        source_names(names, 8, ",");            /* cut short, never overrun */
        CHECK_STR(names, "github,");
        /* Settings by name reach a source's own struct; unknown names are refused. */
        normalize_settings_init(&ns);
        CHECK(normalize_settings_set(&ns, "jenkins_deploy_pattern", "ship") == 0);
        CHECK(normalize_settings_set(&ns, "service_map", "a=b") == 0);
        CHECK_STR(ns.o.service_map, "a=b");
        CHECK(normalize_settings_set(&ns, "no_such_key", "x") == -ENOENT);
        CHECK(source_options(&ns.o, source_find("jenkins")) !=
              source_defaults(source_index(source_find("jenkins"))));
}

/* normalize_epoch() tells seconds, ms, us and ns apart by size and refuses the rest. */
static void test_epoch(void) {
        static const struct { const char *json; int r; int64_t us; } cases[] = {
                { "{\"t\":1420452191}", 0, 1420452191000000LL },                  /* s */
                { "{\"t\":1420452191104}", 0, 1420452191104000LL },               /* ms */
                { "{\"t\":1420452191104001}", 0, 1420452191104001LL },            /* us */
                { "{\"t\":1420452374669001603}", 0, 1420452374669001LL },         /* ns */
                { "{\"t\":0}", 0, 0 },
                { "{\"t\":4102444800000000000}", 0, TIMEFMT_MAX_US },             /* 2100 */
                { "{\"t\":4102444800000000001}", -ERANGE, TIME_UNSET },
                { "{\"t\":-1}", -ERANGE, TIME_UNSET },
                { "{\"t\":\"2015-01-05T10:03:11Z\"}", -EBADMSG, TIME_UNSET },
                { "{\"t\":1.5}", -EBADMSG, TIME_UNSET },
                { "{\"t\":null}", 0, TIME_UNSET },
                { "{}", 0, TIME_UNSET },
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct error err = { 0 };
                json_t *doc = json_loads(cases[i].json, 0, NULL);
                int64_t us = 7;

                CHECK(doc != NULL);
                CHECK(normalize_epoch(doc, "t", false, &us, &err) == cases[i].r);
                CHECK(us == cases[i].us);
                if (cases[i].r < 0)
                        CHECK_STR(err.field, "t");
                json_decref(doc);
        }
        {
                struct error err = { 0 };
                json_t *doc = json_object();
                int64_t us;

                CHECK(normalize_epoch(doc, "t", true, &us, &err) == -EBADMSG);  /* required */
                json_decref(doc);
        }
}

int main(int argc, char **argv) {
        const char *fixtures = argc > 1 ? argv[1] : "tests/fixtures";

        CHECK(fixture_walk(fixtures, visit, NULL) >= 40);
        test_identify_errors();
        test_registry();
        test_epoch();
        return check_summary();
}
