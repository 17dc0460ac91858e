/* lists: every list of the read API and its one-item views: deployments, incidents,
 * services, deliveries and change requests. */
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
#include "../lib/timefmt.h"
#include "params.h"
#include "reply.h"

struct list {
        json_t *items;
        const char *last_id;
        char last_id_buf[24];
        json_t *one;            /* the first row as an object */
};

/* A row as a JSON object, by the kinds the store gives. */
static json_t *row_json(const struct store_dora_row *r) {
        json_t *o = json_object();

        if (!o)
                return NULL;
        for (int c = 0; c < r->n; c++) {
                const char *v = r->values[c];
                json_t *j;

                if (!v)
                        j = json_null();
                else if (r->kinds[c] == 'n')
                        j = strchr(v, '.') || strchr(v, 'e') ? json_real(strtod(v, NULL))
                                                             : json_integer(strtoll(v, NULL, 10));
                else if (r->kinds[c] == 'b')
                        j = json_boolean(v[0] == 't');
                else if (r->kinds[c] == 'j')
                        j = json_loads(v, JSON_DECODE_ANY, NULL);
                else
                        j = json_string(v);
                if (!j || json_object_set_new(o, r->names[c], j) < 0) {
                        json_decref(o);
                        return NULL;
                }
        }
        return o;
}

static int add_item(void *ctx, const struct store_dora_row *r) {
        struct list *l = ctx;
        json_t *o = row_json(r);

        if (!o)
                return -ENOMEM;
        if (l->items) {
                if (json_array_append_new(l->items, o) < 0)
                        return -ENOMEM;
        } else {
                json_decref(l->one);
                l->one = o;
        }
        snprintf(l->last_id_buf, sizeof(l->last_id_buf), "%s", r->values[0] ? r->values[0] : "");
        l->last_id = l->last_id_buf;
        return 0;
}

struct list_call {
        enum store_dora_list which;
        const char *const *params;
        struct list *list;
        int rows;
};

static int run_list(struct store *store, void *ctx, struct error *err) {
        struct list_call *c = ctx;
        int r;

        if (c->list->items)
                json_array_clear(c->list->items);
        r = store_dora_list(store, c->which, c->params, add_item, c->list, err);
        if (r >= 0)
                c->rows = r;
        return r < 0 ? r : 0;
}

/* Runs a list query on a pooled connection (not under the mirror's lock). */
static int list_query(const struct api *api, struct list_call *c, struct error *err) {
        int r = api_with_store(api, run_list, c, err);

        if (r == -ENOMEM)
                error_set(err, ENOMEM, "unavailable", NULL, "Out of memory");
        return r;
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
        struct list_call c = { .list = &l };
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
        snprintf(limit_buf, sizeof(limit_buf), "%d", n);
        env_array(&p, envs, sizeof(envs));
        if (deployments) {
                params[0] = service, params[1] = envs, params[2] = since ? since_buf : NULL;
                params[3] = cursor ? cursor_buf : NULL, params[4] = limit_buf;
                c.which = STORE_DORA_DEPLOYMENTS;
        } else {
                params[0] = service, params[1] = since ? since_buf : NULL;
                params[2] = cursor ? cursor_buf : NULL, params[3] = limit_buf;
                c.which = STORE_DORA_INCIDENTS;
        }
        c.params = params;
        r = list_query(api, &c, err);
        if (r < 0) {
                json_decref(l.items);
                return reply_unavailable(err, err, deployments ? "a deployment list"
                                                         : "an incident list");
        }
        *ret_body = json_pack("{s:o,s:o}", "items", l.items, "next_cursor",
                              c.rows == n && l.last_id ? json_string(l.last_id) : json_null());
        return 0;
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
        struct list_call c = { .which = STORE_DORA_DEPLOYMENT, .list = &l };
        char id[PARAMS_KEY_MAX + 1];
        const char *params[1] = { id };
        long long n;
        int r;

        if (params_key(req, id, "deployment", err) < 0)
                return -ENOENT;
        if (!params_positive(id, INT64_MAX, &n))
                return error_set(err, ENOENT, "not_found", NULL, "No such deployment");
        c.params = params;
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
        struct list_call c = { .which = STORE_DORA_SERVICES, .list = &l };
        char prod_buf[512], envs[1200];
        struct params_window p = { .n_envs = 0 };
        const char *params[1] = { envs };
        int r;

        if (!l.items)
                return reply_oom(err);
        p.n_envs = params_production(req->cfg, prod_buf, sizeof(prod_buf), p.envs);
        env_array(&p, envs, sizeof(envs));
        c.params = params;
        r = list_query(api, &c, err);
        if (r < 0) {
                json_decref(l.items);
                return reply_unavailable(err, err, "the service list");
        }
        *ret_body = json_pack("{s:o}", "services", l.items);
        return 0;
}

/* ---------------------------------------------------------------- deliveries */

struct delivery_list {
        struct delivery_filter filter;
        json_t *items;
        int64_t last_id;
};

static int add_delivery(void *ctx, const struct delivery_row *r) {
        struct delivery_list *c = ctx;
        json_t *item = json_pack("{s:I,s:s,s:s,s:s,s:s,s:s,s:o}", "id", (json_int_t) r->id,
                                 "source", r->source, "delivery_id", r->delivery_id, "event",
                                 r->event, "received_at", r->received_at, "status", r->status,
                                 "error", r->error ? json_string(r->error) : json_null());

        if (!item || json_array_append_new(c->items, item) < 0)
                return -ENOMEM;
        c->last_id = r->id;
        return 0;
}

static int read_deliveries(struct store *s, void *ctx, struct error *err) {
        struct delivery_list *c = ctx;

        json_array_clear(c->items);
        return store_list_deliveries(s, &c->filter, add_delivery, c, err);
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
        struct delivery_list c = { .filter = { .limit = PARAMS_LIMIT_DEFAULT } };
        char next[24];
        int r;

        c.filter.source = req->arg(req->ctx, "source");
        c.filter.status = req->arg(req->ctx, "status");
        r = check_status(c.filter.status, err);
        if (r == 0)
                r = params_limit(req, &c.filter.limit, err);
        if (r == 0)
                r = params_cursor(req, &c.filter.before_id, err);
        if (r < 0)
                return r;
        c.items = json_array();
        if (!c.items)
                return reply_oom(err);
        r = api_with_store(api, read_deliveries, &c, err);
        if (r < 0) {
                json_decref(c.items);
                return reply_unavailable(err, err, "the delivery list");
        }
        snprintf(next, sizeof(next), "%" PRId64, c.last_id);
        *ret_body = json_pack("{s:o,s:o}", "items", c.items, "next_cursor",
                              r == c.filter.limit ? json_string(next) : json_null());
        return 0;
}

/* ---------------------------------------------------------- change requests */

/* Parses JSON text the database built into the reply. */
static int json_reply(json_t **ret_body, char *text, struct error *err) {
        json_error_t jerr;

        *ret_body = json_loads(text, 0, &jerr);
        free(text);
        return *ret_body ? 0 : error_set(err, EIO, "unavailable", NULL, "Malformed answer");
}

struct change {
        const char *key;
        char *json;
        struct store_change_brief brief;
};

static int read_change(struct store *s, void *ctx, struct error *err) {
        struct change *o = ctx;

        return store_change_json(s, o->key, &o->json, err);
}

struct change_list {
        struct change_filter filter;
        char *json;
};

static int read_changes(struct store *s, void *ctx, struct error *err) {
        struct change_list *l = ctx;

        return store_changes_json(s, &l->filter, &l->json, err);
}

int lists_changes(const struct api *api, const struct api_request *req, json_t **ret_body,
                  struct error *err) {
        static const char *const statuses[] = { "pending", "approved", "declined",
                                                "implementing", "completed", "canceled" };
        const char *since = req->arg(req->ctx, "since");
        struct change_list l = { .filter = { .since_us = INT64_MIN } };

        l.filter.service = req->arg(req->ctx, "service");
        l.filter.status = req->arg(req->ctx, "status");
        l.filter.after = req->arg(req->ctx, "cursor");
        if (l.filter.status) {
                bool known = false;

                for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++)
                        known |= strcmp(l.filter.status, statuses[i]) == 0;
                if (!known)
                        return error_set(err, EBADMSG, "invalid_parameter", "status",
                                         "status: must be pending, approved, declined, "
                                         "implementing, completed or canceled");
        }
        if (params_limit(req, &l.filter.limit, err) < 0)
                return -EBADMSG;
        if (since && timefmt_parse(since, &l.filter.since_us) < 0)
                return error_set(err, EBADMSG, "invalid_parameter", "since",
                                 "since: must be an RFC 3339 time");
        if (api_with_store(api, read_changes, &l, err) < 0)
                return reply_unavailable(err, err, "change requests");
        return json_reply(ret_body, l.json, err);
}

int lists_change(const struct api *api, const struct api_request *req, json_t **ret_body,
                 struct error *err) {
        char key[PARAMS_KEY_MAX + 1];
        struct change o = { .key = key };

        if (params_key(req, key, "change request", err) < 0)
                return -ENOENT;
        if (api_with_store(api, read_change, &o, err) < 0)
                return reply_unavailable(err, err, "change requests");
        if (!o.json)
                return error_set(err, ENOENT, "not_found", NULL, "No such change request");
        return json_reply(ret_body, o.json, err);
}
