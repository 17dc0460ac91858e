/* upload: import bodies to the daemon and their answers (upload.h). */
#include "upload.h"

#include <stdio.h>
#include <stdlib.h>

#include "progress.h"

struct ticking {
        struct progress bar;
        const struct upload_source *source;
};

static void tick(void *arg) {
        struct ticking *t = arg;

        progress_update(&t->bar, *t->source->pos, 0);
}

static int by_line(const void *a, const void *b) {
        json_int_t x = json_integer_value(json_object_get(*(json_t *const *) a, "line"));
        json_int_t y = json_integer_value(json_object_get(*(json_t *const *) b, "line"));

        return (x > y) - (x < y);
}

/* The daemon's errors and ours, in the order of their lines: a new array. */
static json_t *merged(json_t *theirs, json_t *ours) {
        size_t n = json_array_size(theirs) + json_array_size(ours), k = 0;
        json_t **items = calloc(n ? n : 1, sizeof(*items)), *all = json_array(), *e;
        size_t i;

        if (!items || !all) {
                free(items);
                json_decref(all);
                return NULL;
        }
        json_array_foreach(theirs, i, e)
                items[k++] = e;
        json_array_foreach(ours, i, e)
                items[k++] = e;
        qsort(items, n, sizeof(*items), by_line);
        for (i = 0; i < n; i++)
                json_array_append(all, items[i]);
        free(items);
        return all;
}

int upload_import(const struct ctl *c, const struct upload_source *s, json_t *local_errors) {
        struct ticking t = { .source = s };
        struct client_answer a;
        json_t *errors, *e;
        char err[512];
        size_t i;
        int r;

        progress_start(&t.bar, "import", "bytes", c->tty, s->total);
        r = client_upload(c, "/api/v1/import", CTL_TOKEN_ADMIN, "application/x-ndjson",
                          s->produce, s->arg, tick, &t, &a, err, sizeof(err));
        t.bar.done = *s->pos;
        progress_end(&t.bar);
        if (r < 0) {
                ctl_error("import: %s", err);
                return CTL_ERROR;
        }
        if (a.status != 200 || !json_is_array(json_object_get(a.doc, "errors"))) {
                r = client_print_failure(c, "import", &a);
                client_answer_free(&a);
                return r;
        }
        errors = merged(json_object_get(a.doc, "errors"), local_errors);
        if (!errors) {
                client_answer_free(&a);
                ctl_error("import: out of memory");
                return CTL_ERROR;
        }
        json_object_set(a.doc, "errors", errors);
        if (c->json) {
                char *text = json_dumps(a.doc, JSON_COMPACT | JSON_PRESERVE_ORDER);

                if (text)
                        printf("%s\n", text);
                free(text);
        } else {
                printf("import: %lld lines, %lld accepted, %lld duplicates, %zu refused\n",
                       (long long) json_integer_value(json_object_get(a.doc, "lines")),
                       (long long) json_integer_value(json_object_get(a.doc, "accepted")),
                       (long long) json_integer_value(json_object_get(a.doc, "duplicates")),
                       json_array_size(errors));
        }
        json_array_foreach(errors, i, e)
                fprintf(stderr, "line %lld: %s: %s\n",
                        (long long) json_integer_value(json_object_get(e, "line")),
                        json_string_value(json_object_get(e, "code")),
                        json_string_value(json_object_get(e, "message")));
        r = json_array_size(errors) ? CTL_NO : CTL_OK;
        json_decref(errors);
        client_answer_free(&a);
        return r;
}
