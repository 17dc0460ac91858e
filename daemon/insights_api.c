/* insights_api: GET /api/v1/insights, GET /api/v1/insights/{id} and the /metrics gauge. */
#include "insights_api.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/buf.h"
#include "../lib/error.h"
#include "../lib/store_insights.h"
#include "config.h"
#include "gauge.h"
#include "params.h"
#include "reply.h"

static const char *const statuses[] = { "new", "accepted", "dismissed", "delivered" };
static const char *const rules[] = { "recurring_cause", "known_error", "support_spike",
                                     "failing_changes", "slow_restore",
                                     "unauthorized_changes" };

static bool one_of(const char *v, const char *const *set, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (strcmp(v, set[i]) == 0)
                        return true;
        return false;
}

/* What a list read gathers. */
struct list_read {
        struct store_insight_query q;
        json_t *items;
        size_t page;            /* the page's length: the store is asked for one row more */
        bool more;              /* that row came: there is a next page */
        char last[PARAMS_KEY_MAX + 1];
};

static int add_item(void *ctx, const struct store_row *r) {
        struct list_read *l = ctx;
        json_t *item;

        if (json_array_size(l->items) == l->page) {
                l->more = true;
                return 0;
        }
        item = r->values[1] ? json_loads(r->values[1], 0, NULL) : NULL;
        if (!item)
                return -EPROTO;
        snprintf(l->last, sizeof(l->last), "%s", r->values[0]);
        return json_array_append_new(l->items, item) == 0 ? 0 : -ENOMEM;
}

static int read_list(struct store *s, void *ctx, struct error *err) {
        struct list_read *l = ctx;

        json_array_clear(l->items);     /* a retry on a fresh connection starts again */
        l->more = false;
        return store_insights_list(s, &l->q, add_item, l, err);
}

/* Whether the request names a window other than insight_window: then it is computed. */
static int scope(const struct api_request *req, struct list_read *l, struct error *err) {
        const char *window = req->arg(req->ctx, "window");
        bool other = req->arg(req->ctx, "from") || req->arg(req->ctx, "to");
        struct params_window p;
        int r;

        if (window && !other)
                other = strtol(window, NULL, 10) != config_insight_window_days(req->cfg) ||
                        strcmp(window + strspn(window, "0123456789"), "d") != 0;
        if (!window && !other)
                return 0;
        r = params_window(req, &p, err);
        if (r < 0)
                return r;
        l->q.live = other;
        l->q.from_us = p.from_us;
        l->q.to_us = p.to_us;
        return 0;
}

int insights_list(const struct api *api, const struct api_request *req, json_t **ret_body,
                  struct error *err) {
        const char *service = req->arg(req->ctx, "service"), *cursor = req->arg(req->ctx, "cursor");
        const struct config *cfg = req->cfg;
        struct store_insight_weights w = { .window_days = config_insight_window_days(cfg),
                                           .support_hours = cfg->insight_support_hours,
                                           .failure_hours = cfg->insight_failure_hours };
        struct list_read l = { .q = { .weights = &w } };
        int n = PARAMS_LIMIT_DEFAULT, r;

        l.q.status = req->arg(req->ctx, "status");
        l.q.rule = req->arg(req->ctx, "rule");
        if (l.q.status && !one_of(l.q.status, statuses, 4))
                return params_bad(err, "status", "must be new, accepted, dismissed or delivered");
        if (l.q.rule && !one_of(l.q.rule, rules, 6))
                return params_bad(err, "rule", "must be recurring_cause, known_error, "
                                  "support_spike, failing_changes, slow_restore or "
                                  "unauthorized_changes");
        if ((r = params_limit(req, &n, err)) < 0 || (r = scope(req, &l, err)) < 0)
                return r;
        l.q.service = service && *service ? service : NULL;
        l.q.after = cursor && *cursor ? cursor : NULL;
        l.page = (size_t) n;
        l.q.limit = n + 1;
        l.items = json_array();
        if (!l.items)
                return reply_oom(err);
        r = api_with_store(api, read_list, &l, err);
        if (r < 0) {
                json_decref(l.items);
                if (r == -ENOMEM)
                        return reply_oom(err);
                return reply_unavailable(err, err, "the insights");
        }
        *ret_body = json_pack("{s:o,s:o}", "items", l.items, "next_cursor",
                              l.more ? json_string(l.last) : json_null());
        return *ret_body ? 0 : reply_oom(err);
}

/* ------------------------------------------------------------------ one insight */

struct one_read {
        const char *id;
        json_t *item;
};

static int take_item(void *ctx, const struct store_row *r) {
        struct one_read *o = ctx;

        json_decref(o->item);
        o->item = r->values[0] ? json_loads(r->values[0], 0, NULL) : NULL;
        return o->item ? 0 : -EPROTO;
}

static int read_one(struct store *s, void *ctx, struct error *err) {
        struct one_read *o = ctx;

        json_decref(o->item);
        o->item = NULL;
        return store_insight_get(s, o->id, take_item, o, err);
}

int insights_one(const struct api *api, const struct api_request *req, json_t **ret_body,
                 struct error *err) {
        char id[PARAMS_KEY_MAX + 1];
        struct one_read o = { .id = id };
        int r;

        if (params_key(req, id, "insight", err) < 0)
                return -ENOENT;
        r = api_with_store(api, read_one, &o, err);
        if (r < 0) {
                json_decref(o.item);
                return r == -ENOMEM ? reply_oom(err) : reply_unavailable(err, err, "an insight");
        }
        if (!o.item)
                return error_set(err, ENOENT, "not_found", NULL, "No such insight");
        *ret_body = o.item;
        return 0;
}

/* ------------------------------------------------------------------ /metrics */

static int by_status(struct store *s, const void *args, store_row_fn *row, void *ctx,
                     struct error *err) {
        (void) args;
        return store_insights_by_status(s, row, ctx, err);
}

static int status_line(struct buf *out, const struct store_row *r) {
        char line[96];

        snprintf(line, sizeof(line), "doraloop_insights{status=\"%s\"} %s\n", r->values[0],
                 r->values[1]);
        return buf_puts(out, line);
}

int insights_metrics(const struct api *api, struct buf *out, struct error *err) {
        static const struct gauge g = {
                .help = "# HELP doraloop_insights Insights that hold in insight_window, by "
                        "status.\n# TYPE doraloop_insights gauge\n",
                .query = by_status,
                .lines = status_line,
        };

        return gauge_write(api, &g, out, err);
}
