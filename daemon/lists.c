/* lists: every list of the read API and its one-item views (deployments, incidents,
 * services, deliveries, change requests, observations and problems), each JSON object made by
 * row_json from the store's typed rows. */
#include "lists.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/error.h"
#include "../lib/store.h"
#include "../lib/store_changes.h"
#include "../lib/store_dora.h"
#include "../lib/store_problems.h"
#include "../lib/store_support.h"
#include "../lib/timefmt.h"
#include "params.h"
#include "reply.h"

/* A row as a JSON object: each column named as the store names it, read by its kind.
 * Returns 0, -ENOMEM, or -EPROTO for a JSON column that does not parse (the database
 * built it, so not the client's fault). */
static int row_json(const struct store_row *r, json_t **ret) {
        json_t *o = json_object();

        *ret = NULL;
        if (!o)
                return -ENOMEM;
        for (int c = 0; c < r->n; c++) {
                const char *v = r->values[c];
                json_t *j;

                if (!v)
                        j = json_null();
                else if (r->kinds[c] == STORE_KIND_NUMBER)
                        j = strchr(v, '.') || strchr(v, 'e') ? json_real(strtod(v, NULL))
                                                             : json_integer(strtoll(v, NULL, 10));
                else if (r->kinds[c] == STORE_KIND_BOOL)
                        j = json_boolean(v[0] == 't');
                else if (r->kinds[c] == STORE_KIND_JSON) {
                        j = json_loads(v, JSON_DECODE_ANY, NULL);
                        if (!j) {
                                json_decref(o);
                                return -EPROTO;
                        }
                } else
                        j = json_string(v);
                if (!j || json_object_set_new(o, r->names[c], j) < 0) {
                        json_decref(o);
                        return -ENOMEM;
                }
        }
        *ret = o;
        return 0;
}

/* What a list read gathers: its rows as objects in items, or a one-item view's row. */
struct list {
        json_t *items;          /* NULL for a one-item view */
        json_t *one;            /* the first row of a one-item view */
        json_t *last;           /* the last row given, borrowed from items */
        int page;               /* a page's rows: one more is asked for, and only tells */
        bool more;              /* that a next page has rows */
};

static int add_item(void *ctx, const struct store_row *r) {
        struct list *l = ctx;
        json_t *o;
        int e = row_json(r, &o);

        if (e < 0)
                return e;
        if (l->items && l->page > 0 && json_array_size(l->items) == (size_t) l->page) {
                l->more = true;
                json_decref(o);
                return 0;
        }
        if (l->items) {
                if (json_array_append_new(l->items, o) < 0)
                        return -ENOMEM;
                l->last = o;
        } else {
                json_decref(l->one);
                l->one = o;
        }
        return 0;
}

/* One store read giving its rows to row(): each list's call into the store. */
typedef int list_read(struct store *s, const void *args, store_row_fn *row, void *ctx,
                      struct error *err);

struct list_call {
        list_read *read;
        const void *args;
        struct list *list;
        int rows;
};

static int run_list(struct store *store, void *ctx, struct error *err) {
        struct list_call *c = ctx;
        int r;

        /* A retry on a fresh connection starts the list again. */
        if (c->list->items)
                json_array_clear(c->list->items);
        json_decref(c->list->one);
        c->list->one = c->list->last = NULL;
        c->list->more = false;
        r = c->read(store, c->args, add_item, c->list, err);
        if (r >= 0)
                c->rows = r;
        return r < 0 ? r : 0;
}

/* Runs a list read on a pooled connection (not under the mirror's lock). */
static int list_query(const struct api *api, struct list_call *c, struct error *err) {
        int r = api_with_store(api, run_list, c, err);

        if (r == -ENOMEM)
                error_set(err, ENOMEM, "unavailable", NULL, "Out of memory");
        else if (r == -EPROTO)
                error_set(err, EIO, "unavailable", NULL, "Malformed answer");
        return r;
}

/* {"items":[...],"next_cursor":...} of l, the cursor the last item's column when more
 * follows (a number's digits or a string as it is), or null. Takes l->items. */
static json_t *page_json(struct list *l, const char *column, bool more) {
        const json_t *last = more && l->last ? json_object_get(l->last, column) : NULL;
        json_t *cursor;

        if (json_is_integer(last))
                cursor = json_sprintf("%" JSON_INTEGER_FORMAT, json_integer_value(last));
        else if (json_is_string(last))
                cursor = json_string(json_string_value(last));
        else
                cursor = json_null();
        return json_pack("{s:o,s:o}", "items", l->items, "next_cursor", cursor);
}

/* ---------------------------------------------------------------- the DORA lists */

struct dora_args {
        enum store_dora_list which;
        const char *const *params;
};

static int read_dora(struct store *s, const void *args, store_row_fn *row, void *ctx,
                     struct error *err) {
        const struct dora_args *a = args;

        return store_dora_list(s, a->which, a->params, row, ctx, err);
}

/* An environment list as a PostgreSQL array literal into buf. */
static void env_array(const struct params_window *p, char *buf, size_t len) {
        size_t at = 0;

        at += (size_t) snprintf(buf, len, "{");
        for (size_t i = 0; i < p->n_envs && at < len; i++) {
                at += (size_t) snprintf(buf + at, len - at, "%s\"", i ? "," : "");
                for (const char *c = p->envs[i]; *c && at + 3 < len; c++) {
                        if (*c == '"' || *c == '\\')
                                buf[at++] = '\\';
                        buf[at++] = *c;
                }
                at += (size_t) snprintf(buf + at, len - at, "\"");
        }
        if (at < len)
                snprintf(buf + at, len - at, "}");
}

/* GET /api/v1/deployments and /api/v1/incidents */
static int list(const struct api *api, const struct api_request *req, bool deployments,
                json_t **ret_body, struct error *err) {
        const char *cursor = req->arg(req->ctx, "cursor");
        const char *since = req->arg(req->ctx, "since"), *service = req->arg(req->ctx, "service");
        char envs[1200], since_buf[24], cursor_buf[24], limit_buf[24];
        struct list l = { .items = json_array() };
        struct dora_args a = { .params = NULL };
        struct list_call c = { .read = read_dora, .args = &a, .list = &l };
        const char *params[5];
        struct params_window p;
        int64_t before = 0, since_us;
        int n = PARAMS_LIMIT_DEFAULT;
        int r;

        if (!l.items)
                return reply_oom(err);
        /* The window parameters do not apply to lists; the environment ones do. */
        {
                const struct api_request plain = { .cfg = req->cfg, .arg = req->arg, .ctx = req->ctx };

                r = params_window(&plain, &p, err);
        }
        if (r == 0)
                r = params_limit(req, &n, err);
        if (r == 0)
                r = params_cursor(req, &before, err);
        if (r == 0 && since && (r = timefmt_parse(since, &since_us)) < 0)
                r = params_bad_time(err, "since", r);
        if (r < 0) {
                json_decref(l.items);
                return r;
        }
        if (service && !*service)
                service = NULL;
        if (since)
                snprintf(since_buf, sizeof(since_buf), "%" PRId64, since_us);
        snprintf(cursor_buf, sizeof(cursor_buf), "%" PRId64, before);
        snprintf(limit_buf, sizeof(limit_buf), "%d", n + 1);
        l.page = n;
        env_array(&p, envs, sizeof(envs));
        if (deployments) {
                params[0] = service, params[1] = envs, params[2] = since ? since_buf : NULL;
                params[3] = cursor ? cursor_buf : NULL, params[4] = limit_buf;
                a.which = STORE_DORA_DEPLOYMENTS;
        } else {
                params[0] = service, params[1] = since ? since_buf : NULL;
                params[2] = cursor ? cursor_buf : NULL, params[3] = limit_buf;
                a.which = STORE_DORA_INCIDENTS;
        }
        a.params = params;
        r = list_query(api, &c, err);
        if (r < 0) {
                json_decref(l.items);
                return reply_unavailable(err, err, deployments ? "a deployment list"
                                                         : "an incident list");
        }
        *ret_body = page_json(&l, "id", l.more);
        return *ret_body ? 0 : reply_oom(err);
}

int lists_deployments(const struct api *api, const struct api_request *req, json_t **ret_body,
                     struct error *err) {
        return list(api, req, true, ret_body, err);
}

int lists_incidents(const struct api *api, const struct api_request *req, json_t **ret_body,
                   struct error *err) {
        return list(api, req, false, ret_body, err);
}

int lists_deployment(const struct api *api, const struct api_request *req, json_t **ret_body,
                    struct error *err) {
        struct list l = { .items = NULL };
        char id[PARAMS_KEY_MAX + 1];
        const char *params[1] = { id };
        struct dora_args a = { .which = STORE_DORA_DEPLOYMENT, .params = params };
        struct list_call c = { .read = read_dora, .args = &a, .list = &l };
        long long n;
        int r;

        if (params_key(req, id, "deployment", err) < 0)
                return -ENOENT;
        if (!params_positive(id, INT64_MAX, &n))
                return error_set(err, ENOENT, "not_found", NULL, "No such deployment");
        r = list_query(api, &c, err);
        if (r < 0) {
                json_decref(l.one);
                return reply_unavailable(err, err, "a deployment");
        }
        if (!l.one)
                return error_set(err, ENOENT, "not_found", NULL, "No such deployment");
        *ret_body = l.one;
        return 0;
}

int lists_services(const struct api *api, const struct api_request *req, json_t **ret_body,
                  struct error *err) {
        struct list l = { .items = json_array() };
        char prod_buf[512], envs[1200];
        struct params_window p = { .n_envs = 0 };
        const char *params[1] = { envs };
        struct dora_args a = { .which = STORE_DORA_SERVICES, .params = params };
        struct list_call c = { .read = read_dora, .args = &a, .list = &l };
        int r;

        if (!l.items)
                return reply_oom(err);
        p.n_envs = params_production(req->cfg, prod_buf, sizeof(prod_buf), p.envs);
        env_array(&p, envs, sizeof(envs));
        r = list_query(api, &c, err);
        if (r < 0) {
                json_decref(l.items);
                return reply_unavailable(err, err, "the service list");
        }
        *ret_body = json_pack("{s:o}", "services", l.items);
        return *ret_body ? 0 : reply_oom(err);
}

/* ---------------------------------------------------------------- deliveries */

static int read_deliveries(struct store *s, const void *args, store_row_fn *row, void *ctx,
                           struct error *err) {
        return store_list_deliveries(s, args, row, ctx, err);
}

static int check_status(const char *status, struct error *err) {
        static const char *const statuses[] = { "received", "normalized", "ignored", "error" };

        if (!status)
                return 0;
        for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++)
                if (strcmp(status, statuses[i]) == 0)
                        return 0;
        return error_set(err, EBADMSG, "invalid_parameter", "status",
                         "status: must be received, normalized, ignored or error");
}

int lists_deliveries(const struct api *api, const struct api_request *req, json_t **ret_body,
                     struct error *err) {
        struct delivery_filter f = { .limit = PARAMS_LIMIT_DEFAULT };
        struct list l = { .items = NULL };
        struct list_call c = { .read = read_deliveries, .args = &f, .list = &l };
        int r;

        f.source = req->arg(req->ctx, "source");
        f.status = req->arg(req->ctx, "status");
        r = check_status(f.status, err);
        if (r == 0)
                r = params_limit(req, &f.limit, err);
        if (r == 0)
                r = params_cursor(req, &f.before_id, err);
        if (r < 0)
                return r;
        l.items = json_array();
        if (!l.items)
                return reply_oom(err);
        l.page = f.limit++;
        r = list_query(api, &c, err);
        if (r < 0) {
                json_decref(l.items);
                return reply_unavailable(err, err, "the delivery list");
        }
        *ret_body = page_json(&l, "id", l.more);
        return *ret_body ? 0 : reply_oom(err);
}

/* ---------------------------------------------------------- change requests */

static int read_changes(struct store *s, const void *args, store_row_fn *row, void *ctx,
                        struct error *err) {
        return store_changes(s, args, row, ctx, err);
}

static int read_change(struct store *s, const void *args, store_row_fn *row, void *ctx,
                       struct error *err) {
        return store_change(s, args, row, ctx, err);
}

int lists_changes(const struct api *api, const struct api_request *req, json_t **ret_body,
                  struct error *err) {
        static const char *const statuses[] = { "pending", "approved", "declined",
                                                "implementing", "completed", "canceled" };
        const char *since = req->arg(req->ctx, "since");
        struct change_filter f = { .since_us = INT64_MIN };
        struct list l = { .items = NULL };
        struct list_call c = { .read = read_changes, .args = &f, .list = &l };

        f.service = req->arg(req->ctx, "service");
        f.status = req->arg(req->ctx, "status");
        f.after = req->arg(req->ctx, "cursor");
        if (f.status) {
                bool known = false;

                for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++)
                        known |= strcmp(f.status, statuses[i]) == 0;
                if (!known)
                        return error_set(err, EBADMSG, "invalid_parameter", "status",
                                         "status: must be pending, approved, declined, "
                                         "implementing, completed or canceled");
        }
        if (params_limit(req, &f.limit, err) < 0)
                return -EBADMSG;
        if (since && timefmt_parse(since, &f.since_us) < 0)
                return error_set(err, EBADMSG, "invalid_parameter", "since",
                                 "since: must be an RFC 3339 time");
        l.items = json_array();
        if (!l.items)
                return reply_oom(err);
        if (list_query(api, &c, err) < 0) {
                json_decref(l.items);
                return reply_unavailable(err, err, "change requests");
        }
        /* The store counts one row past the page when there is more. */
        *ret_body = page_json(&l, "key", c.rows > f.limit);
        return *ret_body ? 0 : reply_oom(err);
}

int lists_change(const struct api *api, const struct api_request *req, json_t **ret_body,
                 struct error *err) {
        char key[PARAMS_KEY_MAX + 1];
        struct list l = { .items = NULL };
        struct list_call c = { .read = read_change, .args = key, .list = &l };

        if (params_key(req, key, "change request", err) < 0)
                return -ENOENT;
        if (list_query(api, &c, err) < 0) {
                json_decref(l.one);
                return reply_unavailable(err, err, "change requests");
        }
        if (!l.one)
                return error_set(err, ENOENT, "not_found", NULL, "No such change request");
        *ret_body = l.one;
        return 0;
}

/* ---------------------------------------------------------- observations */

static int read_observations(struct store *s, const void *args, store_row_fn *row, void *ctx,
                             struct error *err) {
        return store_support_observations(s, args, row, ctx, err);
}

static int check_kind(const char *kind, struct error *err) {
        if (!kind)
                return 0;
        for (size_t i = 0; i < sizeof(store_support_kinds) / sizeof(store_support_kinds[0]); i++)
                if (strcmp(kind, store_support_kinds[i]) == 0)
                        return 0;
        return params_bad(err, "kind", "must be support, feedback, usage or ux");
}

/* GET /api/v1/observations: newest first, paged by id like deployments. */
int lists_observations(const struct api *api, const struct api_request *req, json_t **ret_body,
                       struct error *err) {
        const char *since = req->arg(req->ctx, "since"), *cursor = req->arg(req->ctx, "cursor");
        const char *service = req->arg(req->ctx, "service");
        const char *feature = req->arg(req->ctx, "feature"), *kind = req->arg(req->ctx, "kind");
        char since_buf[24], cursor_buf[24], limit_buf[24];
        struct list l = { .items = NULL };
        const char *params[6];
        struct list_call c = { .read = read_observations, .args = params, .list = &l };
        int64_t before = 0, since_us = 0;
        int n = PARAMS_LIMIT_DEFAULT, r;

        if ((r = check_kind(kind, err)) < 0 || (r = params_limit(req, &n, err)) < 0 ||
            (r = params_cursor(req, &before, err)) < 0)
                return r;
        if (since && (r = timefmt_parse(since, &since_us)) < 0)
                return params_bad_time(err, "since", r);
        snprintf(since_buf, sizeof(since_buf), "%" PRId64, since_us);
        snprintf(cursor_buf, sizeof(cursor_buf), "%" PRId64, before);
        snprintf(limit_buf, sizeof(limit_buf), "%d", n + 1);
        l.page = n;
        params[0] = service && *service ? service : NULL;
        params[1] = feature && *feature ? feature : NULL;
        params[2] = kind, params[3] = since ? since_buf : NULL;
        params[4] = cursor ? cursor_buf : NULL, params[5] = limit_buf;
        l.items = json_array();
        if (!l.items)
                return reply_oom(err);
        if (list_query(api, &c, err) < 0) {
                json_decref(l.items);
                return reply_unavailable(err, err, "an observation list");
        }
        *ret_body = page_json(&l, "id", l.more);
        return *ret_body ? 0 : reply_oom(err);
}

/* ---------------------------------------------------------- problems */

static int read_problems(struct store *s, const void *args, store_row_fn *row, void *ctx,
                         struct error *err) {
        return store_problems(s, args, row, ctx, err);
}

static int read_problem(struct store *s, const void *args, store_row_fn *row, void *ctx,
                        struct error *err) {
        return store_problem(s, args, row, ctx, err);
}

/* GET /api/v1/problems: newest first, paged by id like deployments. */
int lists_problems(const struct api *api, const struct api_request *req, json_t **ret_body,
                   struct error *err) {
        const char *service = req->arg(req->ctx, "service"), *status = req->arg(req->ctx, "status");
        const char *cursor = req->arg(req->ctx, "cursor");
        char cursor_buf[24], limit_buf[24];
        struct list l = { .items = NULL };
        const char *params[4];
        struct list_call c = { .read = read_problems, .args = params, .list = &l };
        int64_t before = 0;
        int n = PARAMS_LIMIT_DEFAULT, r;

        if (status && strcmp(status, "open") != 0 && strcmp(status, "known_error") != 0 &&
            strcmp(status, "resolved") != 0)
                return params_bad(err, "status", "must be open, known_error or resolved");
        if ((r = params_limit(req, &n, err)) < 0 || (r = params_cursor(req, &before, err)) < 0)
                return r;
        snprintf(cursor_buf, sizeof(cursor_buf), "%" PRId64, before);
        snprintf(limit_buf, sizeof(limit_buf), "%d", n);
        params[0] = service && *service ? service : NULL;
        params[1] = status, params[2] = cursor ? cursor_buf : NULL, params[3] = limit_buf;
        l.items = json_array();
        if (!l.items)
                return reply_oom(err);
        if (list_query(api, &c, err) < 0) {
                json_decref(l.items);
                return reply_unavailable(err, err, "the problem list");
        }
        *ret_body = page_json(&l, "id", c.rows == n);
        return *ret_body ? 0 : reply_oom(err);
}

/* GET /api/v1/problems/{key}: keys are the sources' own, so two sources may hold one;
 * source= picks, else the first by source name. */
int lists_problem(const struct api *api, const struct api_request *req, json_t **ret_body,
                  struct error *err) {
        char key[PARAMS_KEY_MAX + 1];
        const char *source = req->arg(req->ctx, "source");
        const char *params[2] = { key, source && *source ? source : NULL };
        struct list l = { .items = NULL };
        struct list_call c = { .read = read_problem, .args = params, .list = &l };

        if (params_key(req, key, "problem", err) < 0)
                return -ENOENT;
        if (list_query(api, &c, err) < 0) {
                json_decref(l.one);
                return reply_unavailable(err, err, "a problem");
        }
        if (!l.one)
                return error_set(err, ENOENT, "not_found", NULL, "No such problem");
        *ret_body = l.one;
        return 0;
}
