/* fixture: loading the webhook fixtures for unit tests. */
#include "fixture.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "delivery.h"
#include "doc.h"
#include "error.h"
#include "normalize.h"
#include "source.h"
#include "store.h"

char *fixture_slurp(const char *path, size_t *ret_len) {
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

int fixture_load(const char *dir, const char *name, struct fixture *fx) {
        char path[4096];
        size_t hlen, n;
        char *headers, *line, *next;

        memset(fx, 0, sizeof(*fx));
        snprintf(path, sizeof(path), "%s/%s", dir, name);
        fx->body = fixture_slurp(path, &fx->len);
        n = strlen(path);
        if (n > 5 && strcmp(path + n - 5, ".json") == 0)
                snprintf(path + n - 5, sizeof(path) - n + 5, ".headers");
        headers = fixture_slurp(path, &hlen);
        if (!fx->body || !headers) {
                free(fx->body);
                free(headers);
                return -ENOENT;
        }
        for (line = headers; line && *line && fx->n_headers < FIXTURE_MAX_HEADERS - 2;
             line = next) {
                char *colon, *copy;

                next = strchr(line, '\n');
                if (next)
                        *next++ = '\0';
                colon = strchr(line, ':');
                if (!colon || !(copy = strdup(line)))
                        continue;
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

void fixture_add_header(struct fixture *fx, const char *name, const char *value) {
        if (fx->n_headers < FIXTURE_MAX_HEADERS)
                fx->headers[fx->n_headers++] = (struct hook_header) { name, value };
}

void fixture_unload(struct fixture *fx) {
        for (size_t i = 0; i < FIXTURE_MAX_HEADERS; i++)
                free(fx->lines[i]);
        free(fx->body);
        memset(fx, 0, sizeof(*fx));
}

int fixture_walk(const char *fixtures, void (*fn)(const char *source, const char *dir,
                                                  const char *name, void *ctx), void *ctx) {
        int seen = 0;

        for (size_t i = 0; source_table[i]; i++) {
                char dir[2048];
                struct dirent **names;
                int n;

                snprintf(dir, sizeof(dir), "%s/%s", fixtures, source_table[i]->name);
                n = scandir(dir, &names, NULL, alphasort);
                for (int j = 0; j < n; j++) {
                        size_t len = strlen(names[j]->d_name);

                        if (len > 5 && strcmp(names[j]->d_name + len - 5, ".json") == 0) {
                                fn(source_table[i]->name, dir, names[j]->d_name, ctx);
                                seen++;
                        }
                        free(names[j]);
                }
                if (n > 0)
                        free(names);
        }
        return seen;
}

const char *fixture_db(int argc, char **argv) {
        return argc > 2 ? argv[2] : getenv("DORALOOP_TEST_DB");
}

struct store *fixture_store(const char *conninfo) {
        static const char *const names[] = { "production_environments" };
        static const char *const values[] = { "production" };
        struct error err = { 0 };
        struct store *s = NULL;

        if (store_open(conninfo, &s, &err) < 0 || store_migrate(s, &err) < 0 ||
            store_configure(s, names, values, 1, &err) < 0) {
                fprintf(stderr, "fixture_store: %s\n", err.msg);
                return store_close(s);
        }
        return s;
}

struct delivery *fixture_generic(const char *delivery_id, const char *body, int64_t received_us) {
        struct normalize_options o = normalize_defaults();
        struct delivery *d = calloc(1, sizeof(*d));
        struct error err = { 0 };
        json_t *doc = NULL;
        const char *type;

        if (!d)
                return NULL;
        d->source = source_find("generic");
        d->delivery_id = strdup(delivery_id);
        d->body = strdup(body);
        d->body_len = strlen(body);
        d->headers = strdup("{}");
        d->received_us = received_us;
        type = doc_parse(body, d->body_len, &doc, &err) == 0 ? doc_string(doc, "type") : NULL;
        d->event = strdup(type ? type : "unknown");
        json_decref(doc);
        if (!d->delivery_id || !d->body || !d->headers || !d->event ||
            delivery_normalize(d, NULL, &o) < 0)
                return delivery_free(d);
        return d;
}

/* conninfo and SQL travel to psql in the environment, so no shell quoting is needed. */
FILE *fixture_psql_open(const char *conninfo) {
        if (setenv("FIXTURE_CONNINFO", conninfo, 1) < 0)
                return NULL;
        return popen("exec psql -X -q -At -d \"$FIXTURE_CONNINFO\" >/dev/null 2>&1", "w");
}

int fixture_psql_send(FILE *session, const char *sql) {
        return fprintf(session, "%s\n", sql) < 0 || fflush(session) != 0 ? -1 : 0;
}

int fixture_psql_close(FILE *session) {
        return pclose(session) == 0 ? 0 : -1;
}

int fixture_psql_value(const char *conninfo, const char *sql, char *out, size_t n) {
        FILE *p;
        int ok;

        if (setenv("FIXTURE_CONNINFO", conninfo, 1) < 0 || setenv("FIXTURE_SQL", sql, 1) < 0)
                return -1;
        p = popen("exec psql -X -q -At -d \"$FIXTURE_CONNINFO\" -c \"$FIXTURE_SQL\" 2>/dev/null",
                  "r");
        if (!p)
                return -1;
        ok = fgets(out, (int) n, p) != NULL;
        if (ok)
                out[strcspn(out, "\n")] = '\0';
        return pclose(p) == 0 && ok ? 0 : -1;
}

struct store *fixture_open(int argc, char **argv, const char *test) {
        const char *conninfo = fixture_db(argc, argv);

        if (!conninfo) {
                fprintf(stderr, "%s needs an empty database: DORALOOP_TEST_DB\n", test);
                exit(2);
        }
        return fixture_store(conninfo);
}

int fixture_save(struct store *s, const char *delivery_id, const char *body,
                 int64_t received_us) {
        static const struct store_model model = { "production", 24 };
        struct delivery *d = fixture_generic(delivery_id, body, received_us);
        struct error err = { 0 };
        int r = d ? store_save_batch(s, &model, &d, 1, &err) : -ENOMEM;

        if (r < 0)
                fprintf(stderr, "save %s: %s\n", delivery_id, d ? err.msg : "out of memory");
        delivery_free(d);
        return r;
}

int fixture_save_all(struct store *s, const char *prefix, const char *const *bodies, size_t n,
                     int64_t received_us) {
        for (size_t i = 0; i < n; i++) {
                char id[64];
                int r;

                snprintf(id, sizeof(id), "%s-%zu", prefix, i);
                r = fixture_save(s, id, bodies[i], received_us);
                if (r < 0)
                        return r;
        }
        return 0;
}
