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
#include "../lib/supmirror.h"
#include "dora.h"
#include "gauge.h"
#include "mirror.h"
#include "params.h"
#include "reply.h"

/* The DORA deployment count of the window (deployment_frequency.deployments) and the
 * support figures, both from the mirror in one session. */
static int read_mirror(const struct api *api, const struct params_window *p,
                       const struct sup_query *q, struct mirror_session *s,
                       struct sup_figures *ret, int64_t *ret_deployments) {
        struct cube_query cq = { .service = p->service, .envs = p->envs, .n_envs = p->n_envs,
                                 .unlinked = p->unlinked, .from_us = p->from_us,
                                 .to_us = p->to_us, .cache = true };
        struct metrics_acc *acc = malloc(sizeof(*acc));
        int r;

        *s = (struct mirror_session) { .mirror = NULL };
        if (!acc)
                return -ENOMEM;
        r = mirror_begin(s, api->mirror);
        if (r == 0) {
                r = mirror_sum(s, &cq, acc);
                if (r == 0)
                        r = mirror_support(s, q, ret);
                if (r < 0)
                        mirror_end(s);
        }
        *ret_deployments = r == 0 ? acc->deployments : 0;
        free(acc);
        return r;
}

static json_t *number_or_null(double v) {
        return isnan(v) ? json_null() : json_real(v);
}

static json_t *figures_json(const struct params_window *p, const struct sup_figures *f,
                            int64_t n_deployments) {
        json_t *kinds = json_object(), *features = json_array();

        for (size_t i = 0; kinds && i < 4; i++)
                if (json_object_set_new(kinds, store_support_kinds[i],
                                        json_integer((json_int_t) f->kinds[i])) < 0) {
                        json_decref(kinds);
                        kinds = NULL;
                }
        for (size_t i = 0; features && i < f->n_features; i++) {
                json_t *o = json_pack("{s:s,s:I,s:I}", "feature", f->features[i].feature,
                                      "opened", (json_int_t) f->features[i].opened,
                                      "customers", (json_int_t) f->features[i].customers);

                if (!o || json_array_append_new(features, o) < 0) {
                        json_decref(features);
                        features = NULL;
                }
        }
        return json_pack("{s:o,s:o,s:{s:I,s:I,s:I,s:o,s:I,s:I},s:o,s:o,s:o}",
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
                         "kinds", kinds, "features", features);
}

int support_figures(const struct api *api, const struct api_request *req, json_t **ret_body,
                    struct error *err) {
        const char *feature = req->arg(req->ctx, "feature");
        struct mirror_session s;
        struct sup_figures f;
        struct params_window p;
        struct sup_query q;
        int64_t n_deployments;
        int r;

        r = params_window(req, &p, err);
        if (r)
                return r;
        if (feature && strlen(feature) > EVENT_NAME_MAX)
                return params_bad(err, "feature", "is longer than any stored feature");
        q = (struct sup_query) { .from_us = p.from_us, .to_us = p.to_us, .service = p.service,
                                 .feature = feature && *feature ? feature : NULL };
        r = read_mirror(api, &p, &q, &s, &f, &n_deployments);
        if (r == -ENOMEM && !s.mirror)
                return reply_oom(err);
        if (r < 0)
                return reply_unavailable(err, &s.err, "the support figures");
        *ret_body = figures_json(&p, &f, n_deployments);  /* f is the mirror's till the end */
        mirror_end(&s);
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
