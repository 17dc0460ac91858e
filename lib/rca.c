/* rca: contributing factors as the sources read them. */
#include "rca.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "error.h"
#include "normalize.h"

static const char *const dimensions[] = { "organizational", "technological", "partner",
                                          "process" };

const char *rca_dimension(const char *s) {
        for (size_t i = 0; s && i < sizeof(dimensions) / sizeof(dimensions[0]); i++)
                if (strcasecmp(s, dimensions[i]) == 0)
                        return dimensions[i];
        return NULL;
}

static int bad(struct error *err, const char *field, const char *what, const char *value) {
        return error_set(err, EBADMSG, "invalid_payload", field, "%s: %s '%.40s' is not one "
                         "of organizational, technological, partner, process", field, what,
                         value ? value : "");
}

/* A lower-cased copy of the category, NULL for none, or refuses an overlong one. */
static int category_of(const char *category, const char *field, char **ret,
                       struct error *err) {
        size_t n = category ? strlen(category) : 0;

        *ret = NULL;
        while (n && category[n - 1] == ' ')
                n--;
        while (n && *category == ' ')
                category++, n--;
        if (n == 0)
                return 0;
        if (n > EVENT_CATEGORY_MAX)
                return error_set(err, EBADMSG, "invalid_payload", field, "%s: a category is "
                                 "at most %d bytes, this one %zu", field, EVENT_CATEGORY_MAX,
                                 n);
        *ret = strndup(category, n);
        if (!*ret)
                return -ENOMEM;
        for (char *c = *ret; *c; c++)
                *c = (char) tolower((unsigned char) *c);
        return 0;
}

static bool same(const char *a, const char *b) {
        return a == b || (a && b && strcmp(a, b) == 0);
}

int rca_add(struct event_factors *set, const char *dimension, const char *category,
            const char *role, const char *field, struct error *err) {
        const char *dim = rca_dimension(dimension);
        struct event_factor *items;
        bool primary, ok = true;
        char *cat;
        int r;

        if (!dim)
                return bad(err, field, "dimension", dimension);
        if (role && strcmp(role, "primary") != 0 && strcmp(role, "contributing") != 0)
                return error_set(err, EBADMSG, "invalid_payload", field, "%s: role '%.40s' "
                                 "is not primary or contributing", field, role);
        primary = !role || strcmp(role, "primary") == 0;
        r = category_of(category, field, &cat, err);
        if (r < 0)
                return r;
        for (size_t i = 0; i < set->n; i++)
                if (same(set->items[i].dimension, dim) && same(set->items[i].category, cat)) {
                        if (primary && strcmp(set->items[i].role, "primary") != 0) {
                                free(set->items[i].role);
                                set->items[i].role = event_strdup("primary", &ok);
                        }
                        free(cat);
                        return ok ? 0 : -ENOMEM;
                }
        if (set->n >= RCA_FACTORS_MAX) {
                free(cat);
                return error_set(err, EBADMSG, "invalid_payload", field, "%s: more than %d "
                                 "contributing factors", field, RCA_FACTORS_MAX);
        }
        items = realloc(set->items, (set->n + 1) * sizeof(*items));
        if (!items) {
                free(cat);
                return -ENOMEM;
        }
        set->items = items;
        items[set->n] = (struct event_factor) {
                .dimension = event_strdup(dim, &ok), .category = cat,
                .role = event_strdup(primary ? "primary" : "contributing", &ok),
        };
        set->n++;
        return ok ? 0 : -ENOMEM;
}

int rca_from_array(json_t *array, const char *field, struct event_factors *set,
                   struct error *err) {
        for (size_t i = 0; i < json_array_size(array); i++) {
                json_t *f = json_array_get(array, i);
                const char *dim, *cat, *role;
                int r;

                if (!json_is_object(f))
                        return error_set(err, EBADMSG, "invalid_payload", field,
                                         "%s[%zu] must be an object", field, i);
                if ((r = normalize_string(f, "dimension", true, &dim, err)) < 0 ||
                    (r = normalize_string(f, "category", false, &cat, err)) < 0 ||
                    (r = normalize_string(f, "role", false, &role, err)) < 0)
                        return normalize_element_error(r, err, field, i);
                r = rca_add(set, dim, cat, role, field, err);
                if (r < 0)
                        return r;
        }
        return 0;
}

int rca_from_text(const char *text, const char *field, struct event_factors *set,
                  struct error *err) {
        const char *colon = text ? strchr(text, ':') : NULL;
        char dim[32];
        size_t n;

        if (!text)
                return 0;
        n = colon ? (size_t) (colon - text) : strlen(text);
        if (n >= sizeof(dim))
                return bad(err, field, "dimension", text);
        memcpy(dim, text, n);
        dim[n] = '\0';
        /* "technological::capacity" (a GitLab scoped label) is "technological:capacity" */
        return rca_add(set, dim, colon ? colon + 1 + (colon[1] == ':') : NULL, NULL, field,
                       err);
}

int rca_from_labels(json_t *labels, const char *member, const char *field,
                    struct event_factors *set, struct error *err) {
        for (size_t i = 0; i < json_array_size(labels); i++) {
                json_t *l = json_array_get(labels, i);
                const char *name = json_string_value(member ? json_object_get(l, member) : l);
                int r;

                if (!name || strncasecmp(name, "rca:", 4) != 0)
                        continue;
                r = rca_from_text(name + 4 + (name[4] == ':'), field, set, err);
                if (r < 0)
                        return r;
        }
        return 0;
}

void rca_clear(struct event_factors *set) {
        for (size_t i = 0; i < set->n; i++)
                free(set->items[i].dimension), free(set->items[i].category),
                        free(set->items[i].role);
        free(set->items);
        for (size_t i = 0; i < set->n_links; i++)
                free(set->links[i]);
        free(set->links);
        *set = (struct event_factors) { 0 };
}

int rca_emit(struct event_list *out, const char *subject, const char *key,
             const char *service, int64_t updated_at, struct event_factors *set) {
        struct event *e = event_list_add(out, EVENT_FACTORS);
        bool ok = true;

        if (!e) {
                rca_clear(set);
                return -ENOMEM;
        }
        e->factors = *set;
        *set = (struct event_factors) { 0 };
        e->factors.subject = event_strdup(subject, &ok);
        e->factors.key = event_strdup(key, &ok);
        e->factors.service = event_strdup(service, &ok);
        e->factors.updated_at = updated_at;
        return ok ? 0 : -ENOMEM;
}
