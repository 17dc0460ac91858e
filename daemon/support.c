/* support: GET /api/v1/support. */
#include "support.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/buf.h"
#include "../lib/cube.h"
#include "../lib/error.h"
#include "../lib/event.h"
#include "../lib/metrics.h"
#include "../lib/store_support.h"
#include "dora.h"
#include "gauge.h"
#include "mirror.h"
#include "params.h"
#include "reply.h"

/* What one read gathers: the figures and the features' objects. */
struct support_read {
        struct store_support_scope scope;
        struct store_support_figures figures;
        json_t *features;
};

static int add_feature(void *ctx, const struct store_row *r) {
        struct support_read *sr = ctx;
        json_t *o = json_pack("{s:s,s:I,s:I}", "feature", r->values[0], "opened",
                              (json_int_t) strtoll(r->values[1], NULL, 10), "customers",
                              (json_int_t) strtoll(r->values[2], NULL, 10));

        return o && json_array_append_new(sr->features, o) == 0 ? 0 : -ENOMEM;
}

static int read_support(struct store *s, void *ctx, struct error *err) {
        struct support_read *sr = ctx;

        json_array_clear(sr->features);    /* a retry on a fresh connection starts again */
        return store_support_figures(s, &sr->scope, &sr->figures, add_feature, sr, err);
}

/* The DORA deployment count of the window (deployment_frequency.deployments). */
static int deployments(const struct api *api, const struct params_window *p, int64_t *ret,
                       struct error *err) {
        struct cube_query q = { .service = p->service, .envs = p->envs, .n_envs = p->n_envs,
                                .unlinked = p->unlinked, .from_us = p->from_us,
                                .to_us = p->to_us, .cache = true };
        struct metrics_acc *acc = malloc(sizeof(*acc));
        struct mirror_session s;
        int r;

        if (!acc)
                return reply_oom(err);
        r = mirror_begin(&s, api->mirror);
        if (r == 0) {
                r = mirror_sum(&s, &q, acc);
                mirror_end(&s);
        }
        *ret = r == 0 ? acc->deployments : 0;
        free(acc);
        return r < 0 ? reply_unavailable(err, &s.err, "the support deployments") : 0;
}

static json_t *number_or_null(double v) {
        return isnan(v) ? json_null() : json_real(v);
}

static json_t *figures_json(const struct params_window *p, const struct support_read *sr,
                            int64_t n_deployments) {
        const struct store_support_figures *f = &sr->figures;
        json_t *kinds = json_object();

        for (size_t i = 0; kinds && i < 4; i++)
                if (json_object_set_new(kinds, store_support_kinds[i],
                                        json_integer((json_int_t) f->kinds[i])) < 0) {
                        json_decref(kinds);
                        kinds = NULL;
                }
        return json_pack("{s:o,s:o,s:{s:I,s:I,s:I,s:o,s:I,s:I},s:o,s:o,s:O}",
                         "service", p->service ? json_string(p->service) : json_null(),
                         "window", dora_window_json(p->from_us, p->to_us),
                         "requests", "opened", (json_int_t) f->opened,
                         "resolved", (json_int_t) f->resolved,
                         "open_now", (json_int_t) f->open_now,
                         "median_resolution_seconds", number_or_null(f->median_seconds),
                         "customers", (json_int_t) f->customers,
                         "linked_to_incidents", (json_int_t) f->linked,
                         "per_deployment", n_deployments ? json_real((double) f->opened /
                                                                     (double) n_deployments)
                                                         : json_null(),
                         "kinds", kinds, "features", sr->features);
}

int support_figures(const struct api *api, const struct api_request *req, json_t **ret_body,
                    struct error *err) {
        const char *feature = req->arg(req->ctx, "feature");
        struct support_read sr = { .features = NULL };
        struct params_window p;
        int64_t n_deployments;
        int r;

        r = params_window(req, &p, err);
        if (r)
                return r;
        if (feature && strlen(feature) > EVENT_NAME_MAX)
                return params_bad(err, "feature", "is longer than any stored feature");
        sr.scope = (struct store_support_scope) { .from_us = p.from_us, .to_us = p.to_us,
                                                  .service = p.service,
                                                  .feature = feature && *feature ? feature
                                                                                 : NULL };
        r = deployments(api, &p, &n_deployments, err);
        if (r < 0)
                return r;
        sr.features = json_array();
        if (!sr.features)
                return reply_oom(err);
        r = api_with_store(api, read_support, &sr, err);
        if (r < 0) {
                json_decref(sr.features);
                if (r == -ENOMEM)
                        return reply_oom(err);
                return reply_unavailable(err, err, "the support figures");
        }
        *ret_body = figures_json(&p, &sr, n_deployments);
        json_decref(sr.features);
        return *ret_body ? 0 : reply_oom(err);
}

/* ---------------------------------------------------------------- /metrics */

struct window {
        int64_t from_us, to_us;
};

static int opened(struct store *s, const void *args, store_row_fn *row, void *ctx,
                  struct error *err) {
        const struct window *w = args;

        return store_support_opened(s, w->from_us, w->to_us, row, ctx, err);
}

static int service_line(struct buf *out, const struct store_row *r) {
        char label[METRICS_LABEL_MAX], line[METRICS_LABEL_MAX + 96];

        if (metrics_label(r->values[0], label) < 0)
                return -ENOMEM;
        snprintf(line, sizeof(line), "doraloop_support_requests_opened{service=\"%s\"} %s\n",
                 label, r->values[1]);
        return buf_puts(out, line);
}

int support_metrics(const struct api *api, int64_t now_us, struct buf *out, struct error *err) {
        const struct window w = { now_us - 30 * CUBE_DAY_US, now_us };
        const struct gauge g = {
                .help = "# HELP doraloop_support_requests_opened Support requests (JSM "
                        "requests and support observations, weighed by count) opened in the "
                        "last 30 days.\n# TYPE doraloop_support_requests_opened gauge\n",
                .query = opened,
                .args = &w,
                .lines = service_line,
        };

        return gauge_write(api, &g, out, err);
}
