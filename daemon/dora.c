/* dora: the DORA figures: GET /api/v1/dora (one window) and /api/v1/dora/series (day or
 * week buckets), summed from the API context's mirror (daemon/mirror.h) as JSON. */
#include "dora.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/cube.h"
#include "../lib/error.h"
#include "../lib/metrics.h"
#include "../lib/timefmt.h"
#include "config.h"
#include "mirror.h"
#include "params.h"
#include "reply.h"

#define DAY_US CUBE_DAY_US

static json_t *number(double v) {
        return isnan(v) ? json_null() : json_real(v);
}

static json_t *string_or_null(const char *s) {
        return s ? json_string(s) : json_null();
}

static json_t *time_json(int64_t us) {
        char buf[TIMEFMT_LEN];

        return json_string(timefmt_format(us, buf));
}

/* Sets the seven metric objects of f on o. Returns 0 or -ENOMEM. */
static int set_figures(json_t *o, const struct metrics_figures *f, enum metrics_bands b) {
        int r = 0;

        r |= json_object_set_new(o, "deployment_frequency", json_pack(
                "{s:I,s:o,s:o}", "deployments", (json_int_t) f->deployments,
                "per_day", number(f->per_day),
                "band", string_or_null(metrics_band_deployment_frequency(b, f->per_day))));
        r |= json_object_set_new(o, "lead_time_for_changes", json_pack(
                "{s:I,s:o,s:o,s:o}", "changes", (json_int_t) f->changes,
                "median_seconds", number(f->lead_median), "p90_seconds", number(f->lead_p90),
                "band", string_or_null(metrics_band_lead_time(b, f->lead_median))));
        r |= json_object_set_new(o, "change_failure_rate", json_pack(
                "{s:I,s:I,s:o,s:o}", "deployments", (json_int_t) f->deployments,
                "failed_deployments", (json_int_t) f->failed, "rate", number(f->failure_rate),
                "band", string_or_null(metrics_band_change_failure_rate(b, f->failure_rate))));
        r |= json_object_set_new(o, "time_to_restore", json_pack(
                "{s:I,s:o,s:o}", "incidents", (json_int_t) f->incidents,
                "median_seconds", number(f->restore_median),
                "band", string_or_null(metrics_band_recovery_time(b, f->restore_median))));
        r |= json_object_set_new(o, "failed_deployment_recovery_time", json_pack(
                "{s:I,s:o,s:o}", "failed_deployments", (json_int_t) f->failed,
                "median_seconds", number(f->recovery_median),
                "band", string_or_null(metrics_band_recovery_time(b, f->recovery_median))));
        r |= json_object_set_new(o, "rework_rate", json_pack(
                "{s:I,s:I,s:o}", "deployments", (json_int_t) f->deployments,
                "rework_deployments", (json_int_t) f->rework, "rate", number(f->rework_rate)));
        r |= json_object_set_new(o, "change_control", json_pack(
                "{s:I,s:I,s:I,s:I,s:I,s:I,s:o}", "deployments", (json_int_t) f->controlled,
                "approved", (json_int_t) f->control[METRICS_APPROVED],
                "unauthorized", (json_int_t) f->control[METRICS_UNAUTHORIZED],
                "auto_created", (json_int_t) f->control[METRICS_AUTO_CREATED],
                "unrecorded", (json_int_t) f->control[METRICS_UNRECORDED],
                "emergency", (json_int_t) f->emergency,
                "approval_latency_median_seconds", number(f->approval_median)));
        return r ? -ENOMEM : 0;
}

json_t *dora_window_json(int64_t from_us, int64_t to_us) {
        double days = (double) (to_us - from_us) / (double) DAY_US;
        json_t *d = (to_us - from_us) % DAY_US == 0
                    ? json_integer((json_int_t) ((to_us - from_us) / DAY_US)) : json_real(days);

        return json_pack("{s:o,s:o,s:o}", "from", time_json(from_us), "to", time_json(to_us),
                         "days", d);
}

static struct cube_query query_of(const struct params_window *p, int64_t from, int64_t to, bool cache) {
        return (struct cube_query) { .service = p->service, .envs = p->envs, .n_envs = p->n_envs,
                                     .unlinked = p->unlinked, .from_us = from, .to_us = to,
                                     .cache = cache };
}


int dora_figures(const struct api *api, const struct api_request *req, json_t **ret_body,
                 struct error *err) {
        struct metrics_acc *acc = NULL;
        struct metrics_figures f;
        struct mirror_session s;
        struct params_window p;
        struct cube_query q;
        json_t *o;
        int r;

        r = params_window(req, &p, err);
        if (r)
                return r;
        acc = malloc(sizeof(*acc));
        if (!acc)
                return reply_oom(err);
        q = query_of(&p, p.from_us, p.to_us, true);
        r = mirror_begin(&s, api->mirror);
        if (r == 0) {
                r = mirror_sum(&s, &q, acc);
                mirror_end(&s);
        }
        if (r < 0) {
                free(acc);
                return reply_unavailable(err, &s.err, "a DORA query");
        }
        metrics_figures(acc, (double) (p.to_us - p.from_us) / 1e6, &f);
        free(acc);
        o = json_pack("{s:o,s:s,s:s,s:o}", "service", string_or_null(p.service),
                      "environment", p.env_label, "bands", metrics_bands_name(p.bands),
                      "window", dora_window_json(p.from_us, p.to_us));
        if (!o || set_figures(o, &f, p.bands) < 0) {
                json_decref(o);
                return reply_oom(err);
        }
        *ret_body = o;
        return 0;
}

static int64_t floor_div(int64_t a, int64_t b) {
        return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

/* Day buckets start at UTC midnight, week buckets on Monday at UTC midnight; the first and
 * last are cut to the window. */
int dora_series(const struct api *api, const struct api_request *req, json_t **ret_body,
                struct error *err) {
        const char *bucket = req->arg(req->ctx, "bucket");
        struct metrics_acc *acc = NULL;
        json_t *buckets = NULL;
        struct mirror_session s;
        struct params_window p;
        int64_t width, offset, start, n_buckets;
        int r;

        r = params_window(req, &p, err);
        if (r)
                return r;
        if (!bucket || strcmp(bucket, "day") == 0)
                width = DAY_US;
        else if (strcmp(bucket, "week") == 0)
                width = 7 * DAY_US;
        else
                return params_bad(err, "bucket", "must be day or week");
        /* 1970-01-01 was a Thursday: Mondays are 4 days after a multiple of 7. */
        offset = width == DAY_US ? 0 : 4 * DAY_US;
        start = floor_div(p.from_us - offset, width) * width + offset;
        n_buckets = (p.to_us - start + width - 1) / width;
        if (n_buckets > req->cfg->series_max_buckets) {
                char why[200];

                snprintf(why, sizeof(why), "the window holds %" PRId64 " %s buckets, more than "
                         "series_max_buckets (%ld): ask for a shorter window or wider buckets",
                         n_buckets, width == DAY_US ? "day" : "week",
                         req->cfg->series_max_buckets);
                return params_bad(err, "bucket", why);
        }
        acc = malloc(sizeof(*acc));
        buckets = json_array();
        if (!acc || !buckets) {
                free(acc);
                json_decref(buckets);
                return reply_oom(err);
        }
        r = mirror_begin(&s, api->mirror);
        if (r == 0) {
                for (int64_t b = start; b < p.to_us && r == 0; b += width) {
                        int64_t lo = b > p.from_us ? b : p.from_us;
                        int64_t hi = b + width < p.to_us ? b + width : p.to_us;
                        struct cube_query q = query_of(&p, lo, hi, false);
                        struct metrics_figures f;
                        json_t *o;

                        r = mirror_sum(&s, &q, acc);
                        if (r < 0)
                                break;
                        metrics_figures(acc, (double) (hi - lo) / 1e6, &f);
                        o = json_pack("{s:o,s:o}", "from", time_json(lo), "to", time_json(hi));
                        if (!o || set_figures(o, &f, p.bands) < 0 ||
                            json_array_append_new(buckets, o) < 0) {
                                json_decref(o);
                                r = error_set(&s.err, ENOMEM, "unavailable", NULL,
                                              "Out of memory");
                        }
                }
                mirror_end(&s);
        }
        free(acc);
        if (r < 0) {
                json_decref(buckets);
                return reply_unavailable(err, &s.err, "a DORA series");
        }
        *ret_body = json_pack("{s:o}", "buckets", buckets);
        return 0;
}
