/* prometheus: GET /metrics, the Prometheus text: the DORA gauges of every (service,
 * environment) over the last 30 days, summed from the mirror, then the support, root-cause
 * and open-problem gauges (daemon/support.h, rca.h, problems.h) and the daemon's counters. */
#include "prometheus.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../lib/buf.h"
#include "../lib/cube.h"
#include "../lib/error.h"
#include "../lib/metrics.h"
#include "cluster_metrics.h"
#include "config.h"
#include "insights_api.h"
#include "mirror.h"
#include "params.h"
#include "problems.h"
#include "rca.h"
#include "reply.h"
#include "sender.h"
#include "stats.h"
#include "support.h"
#include "writer.h"

#define DAY_US CUBE_DAY_US
#define METRICS_TAIL_MAX_BYTES (4u << 20) /* the counters and per-service gauges after the
                                              * DORA gauges: ~400 bytes a service */

static int64_t now_us(void) {
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

struct metric_series {
        char *service, *environment;
};

struct series_list {
        struct metric_series *items;
        size_t n, cap;
        int r;
};

static void add_series(void *ctx, const char *service, const char *environment) {
        struct series_list *l = ctx;

        if (!*environment || l->r < 0)
                return; /* unlinked incidents count within each production environment */
        if (l->n == l->cap) {
                size_t cap = l->cap ? 2 * l->cap : 64;
                struct metric_series *n = realloc(l->items, cap * sizeof(*n));

                if (!n) {
                        l->r = -ENOMEM;
                        return;
                }
                l->items = n;
                l->cap = cap;
        }
        l->items[l->n].service = strdup(service);
        l->items[l->n].environment = strdup(environment);
        l->n++;
        if (!l->items[l->n - 1].service || !l->items[l->n - 1].environment)
                l->r = -ENOMEM;
}

static int cmp_series(const void *a, const void *b) {
        const struct metric_series *x = a, *y = b;
        int c = strcmp(x->service, y->service);

        return c ? c : strcmp(x->environment, y->environment);
}

enum { G_DEPLOYMENTS, G_PER_DAY, G_LEAD_MEDIAN, G_LEAD_P90, G_CFR, G_RESTORE, G_RECOVERY,
       G_REWORK, G_CHANGES, G_INCIDENTS, G_FAILED, G_APPROVED_RATIO, G_APPROVED, G_UNAUTHORIZED,
       G_AUTO_CREATED, G_UNRECORDED, G_EMERGENCY, G_APPROVAL_LATENCY, _G_MAX };

static const struct gauge {
        const char *name, *help;
} gauges[_G_MAX] = {
        [G_DEPLOYMENTS] = { "doraloop_deployments", "Successful deployments in the last 30 days." },
        [G_PER_DAY] = { "doraloop_deployment_frequency_per_day",
                        "Successful deployments per day over the last 30 days." },
        [G_LEAD_MEDIAN] = { "doraloop_lead_time_for_changes_median_seconds",
                            "Median lead time for changes shipped in the last 30 days." },
        [G_LEAD_P90] = { "doraloop_lead_time_for_changes_p90_seconds",
                         "90th percentile lead time for changes shipped in the last 30 days." },
        [G_CFR] = { "doraloop_change_failure_ratio",
                    "Change failure rate over the last 30 days (0 to 1)." },
        [G_RESTORE] = { "doraloop_time_to_restore_median_seconds",
                        "Median time to restore service, incidents resolved in the last 30 days." },
        [G_RECOVERY] = { "doraloop_failed_deployment_recovery_median_seconds",
                         "Median failed deployment recovery time over the last 30 days." },
        [G_REWORK] = { "doraloop_rework_ratio",
                       "Rework rate over the last 30 days: rollback, hotfix or emergency-change "
                       "deployments (0 to 1)." },
        [G_CHANGES] = { "doraloop_changes_shipped", "Changes shipped in the last 30 days." },
        [G_INCIDENTS] = { "doraloop_incidents_resolved",
                          "Incidents resolved in the last 30 days." },
        [G_FAILED] = { "doraloop_failed_deployments",
                       "Failed deployments among those of the last 30 days." },
        /* change control: only where production deployments had a verdict */
        [G_APPROVED_RATIO] = { "doraloop_change_approved_ratio",
                               "Share of the last 30 days' production deployments that ran "
                               "under an approved change (0 to 1)." },
        [G_APPROVED] = { "doraloop_change_approved_deployments",
                         "Production deployments of the last 30 days under an approved change." },
        [G_UNAUTHORIZED] = { "doraloop_change_unauthorized_deployments",
                             "Production deployments of the last 30 days that named a change "
                             "not approved when they started." },
        [G_AUTO_CREATED] = { "doraloop_change_auto_created_deployments",
                             "Production deployments of the last 30 days that named no change; "
                             "a standard change was recorded." },
        [G_UNRECORDED] = { "doraloop_change_unrecorded_deployments",
                           "Production deployments of the last 30 days that named no change "
                           "(change_policy flag or off)." },
        [G_EMERGENCY] = { "doraloop_change_emergency_deployments",
                          "Production deployments of the last 30 days under an emergency change." },
        [G_APPROVAL_LATENCY] = { "doraloop_change_approval_latency_median_seconds",
                                 "Median time from a change request's first report to its "
                                 "approval, over the last 30 days' approved deployments." },
};

static double gauge_value(const struct metrics_figures *f, int g) {
        switch (g) {
        case G_DEPLOYMENTS: return (double) f->deployments;
        case G_PER_DAY: return f->per_day;
        case G_LEAD_MEDIAN: return f->lead_median;
        case G_LEAD_P90: return f->lead_p90;
        case G_CFR: return f->failure_rate;
        case G_RESTORE: return f->restore_median;
        case G_RECOVERY: return f->recovery_median;
        case G_REWORK: return f->rework_rate;
        case G_CHANGES: return (double) f->changes;
        case G_INCIDENTS: return (double) f->incidents;
        case G_FAILED: return (double) f->failed;
        }
        if (f->controlled == 0)
                return NAN;
        switch (g) {
        case G_APPROVED_RATIO: return f->approved_rate;
        case G_APPROVED: return (double) f->control[METRICS_APPROVED];
        case G_UNAUTHORIZED: return (double) f->control[METRICS_UNAUTHORIZED];
        case G_AUTO_CREATED: return (double) f->control[METRICS_AUTO_CREATED];
        case G_UNRECORDED: return (double) f->control[METRICS_UNRECORDED];
        case G_EMERGENCY: return (double) f->emergency;
        case G_APPROVAL_LATENCY: return f->approval_median;
        }
        return NAN;
}

/* GET /metrics as a stream: the figures of every series are summed up front (under the
 * mirror's lock, on a read thread), their text is written as the client reads it, a line at
 * a time, so the answer's size never lives in memory. */
struct metric_labels {
        char service[METRICS_LABEL_MAX], environment[METRICS_LABEL_MAX];
};

struct prometheus {
        size_t n;                       /* series */
        struct metric_labels *labels;
        struct metrics_figures *figs;
        struct buf tail;                /* the daemon's own counters, a few KB */
        int gauge;                      /* the next line: of this gauge, */
        size_t next;                    /* of this series; SIZE_MAX: its HELP and TYPE */
        size_t tail_at;
        char line[64 + 2 * METRICS_LABEL_MAX + 64];
        size_t line_len, line_at;
};

struct prometheus *prometheus_free(struct prometheus *m) {
        if (!m)
                return NULL;
        free(m->labels);
        free(m->figs);
        buf_free(&m->tail);
        free(m);
        return NULL;
}

static void free_series(struct series_list *l) {
        for (size_t i = 0; i < l->n; i++) {
                free(l->items[i].service);
                free(l->items[i].environment);
        }
        free(l->items);
        *l = (struct series_list) { .n = 0 };
}

/* Sums the last 30 days of every series of l into figs (under the session's lock). */
static int sum_series(struct mirror_session *s, const struct config *cfg,
                      const struct series_list *l, struct metrics_figures *figs) {
        struct metrics_acc *acc = malloc(sizeof(*acc));
        const char *prod[PARAMS_ENVS_MAX];
        char prod_buf[CONFIG_ENV_LIST_MAX_BYTES + 1];
        size_t n_prod = params_production(cfg, prod_buf, sizeof(prod_buf), prod);
        int64_t now = now_us();
        int r = 0;

        if (!acc)
                return -ENOMEM;
        for (size_t i = 0; i < l->n && r == 0; i++) {
                const char *envs[1] = { l->items[i].environment };
                struct cube_query q = { .service = l->items[i].service, .envs = envs, .n_envs = 1,
                                        .from_us = now - 30 * DAY_US, .to_us = now,
                                        .cache = false };

                for (size_t j = 0; j < n_prod; j++)
                        q.unlinked |= strcmp(prod[j], envs[0]) == 0;
                r = mirror_sum(s, &q, acc);
                if (r == 0)
                        metrics_figures(acc, 30 * 86400.0, &figs[i]);
        }
        free(acc);
        return r;
}

/* The DORA figures of every known (service, environment) over the last 30 days, and their
 * labels, into m. */
static int load_dora(const struct api *api, const struct config *cfg, struct prometheus *m,
                     struct error *err) {
        struct series_list l = { .n = 0 };
        struct mirror_session s;
        int r;

        r = mirror_begin(&s, api->mirror);
        if (r < 0) {
                *err = s.err;
                return r;
        }
        mirror_series(&s, add_series, &l);
        r = l.r;
        if (r == 0 && l.n) {
                qsort(l.items, l.n, sizeof(*l.items), cmp_series);
                m->figs = calloc(l.n, sizeof(*m->figs));
                m->labels = malloc(l.n * sizeof(*m->labels));
                if (!m->figs || !m->labels)
                        r = -ENOMEM;
        }
        if (r == 0)
                r = sum_series(&s, cfg, &l, m->figs);
        if (r < 0 && r != -ENOMEM)
                *err = s.err;
        mirror_end(&s);
        for (size_t i = 0; i < l.n && r == 0; i++) {
                r = metrics_label(l.items[i].service, m->labels[i].service);
                if (r == 0)
                        r = metrics_label(l.items[i].environment, m->labels[i].environment);
        }
        if (r == 0)
                m->n = l.n;
        free_series(&l);
        if (r == -ENOMEM || r == -EIO)
                r = error_set(err, -r, "unavailable", NULL, r == -ENOMEM ? "Out of memory" :
                              "The rollups could not be read");
        return r;
}

/* Makes m->line the next line of the gauges; false after the last one. */
static bool next_gauge_line(struct prometheus *m) {
        while (m->gauge < _G_MAX) {
                const struct gauge *g = &gauges[m->gauge];
                int n;

                if (m->next == SIZE_MAX) {
                        n = snprintf(m->line, sizeof(m->line), "# HELP %s %s\n# TYPE %s gauge\n",
                                     g->name, g->help, g->name);
                        m->next = 0;
                } else if (m->next < m->n) {
                        size_t i = m->next++;
                        double v = gauge_value(&m->figs[i], m->gauge);

                        if (isnan(v))
                                continue;
                        n = snprintf(m->line, sizeof(m->line),
                                     "%s{service=\"%s\",environment=\"%s\"} %.17g\n", g->name,
                                     m->labels[i].service, m->labels[i].environment, v);
                } else {
                        m->gauge++;
                        m->next = SIZE_MAX;
                        continue;
                }
                /* The line holds the longest name and two labels; a cut would be a bug. */
                m->line_len = n > 0 && (size_t) n < sizeof(m->line) ? (size_t) n : 0;
                m->line_at = 0;
                return true;
        }
        return false;
}

size_t prometheus_read(struct prometheus *m, char *buf, size_t max) {
        size_t out = 0;

        while (out < max) {
                size_t n;

                if (m->line_at < m->line_len) {
                        n = m->line_len - m->line_at < max - out ? m->line_len - m->line_at
                                                                 : max - out;
                        memcpy(buf + out, m->line + m->line_at, n);
                        m->line_at += n;
                        out += n;
                } else if (!next_gauge_line(m)) {
                        n = m->tail.len - m->tail_at < max - out ? m->tail.len - m->tail_at
                                                                 : max - out;
                        if (n)
                                memcpy(buf + out, m->tail.data + m->tail_at, n);
                        m->tail_at += n;
                        out += n;
                        break;
                }
        }
        return out;
}

static int put(struct buf *b, const char *s) {
        return buf_puts(b, s);
}

static int write_writer(const struct api *api, struct buf *out) {
        struct writer_stats st;
        char text[1800];
        uint64_t n_syncs = mirror_syncs(api->mirror);

        snprintf(text, sizeof(text),
                 "# HELP doraloop_dora_mirror_syncs_total Reads of the rollup rows changed since "
                 "the previous one.\n"
                 "# TYPE doraloop_dora_mirror_syncs_total counter\n"
                 "doraloop_dora_mirror_syncs_total %" PRIu64 "\n", n_syncs);
        if (buf_puts(out, text) < 0)
                return -ENOMEM;

        if (!api->writer)
                return 0;
        writer_get_stats(api->writer, &st);
        snprintf(text, sizeof(text),
                 "# HELP doraloop_deliveries_stored_total Deliveries committed to PostgreSQL.\n"
                 "# TYPE doraloop_deliveries_stored_total counter\n"
                 "doraloop_deliveries_stored_total %" PRIu64 "\n"
                 "# HELP doraloop_deliveries_duplicate_total Redeliveries recognised and not counted.\n"
                 "# TYPE doraloop_deliveries_duplicate_total counter\n"
                 "doraloop_deliveries_duplicate_total %" PRIu64 "\n"
                 "# HELP doraloop_deliveries_failed_total Deliveries whose batch failed to commit.\n"
                 "# TYPE doraloop_deliveries_failed_total counter\n"
                 "doraloop_deliveries_failed_total %" PRIu64 "\n"
                 "# HELP doraloop_batches_total Group commits.\n"
                 "# TYPE doraloop_batches_total counter\n"
                 "doraloop_batches_total %" PRIu64 "\n"
                 "# HELP doraloop_ingest_queue_depth Deliveries waiting for the writer.\n"
                 "# TYPE doraloop_ingest_queue_depth gauge\n"
                 "doraloop_ingest_queue_depth %zu\n",
                 st.stored, st.duplicates, st.failed, st.batches, st.queued);
        return put(out, text);
}

int prometheus_metrics(const struct api *api, const struct api_request *req,
                       struct prometheus **ret_metrics, struct error *err) {
        struct prometheus *m;
        int r;

        *ret_metrics = NULL;
        m = calloc(1, sizeof(*m));
        if (!m)
                return reply_oom(err);
        m->next = SIZE_MAX;
        buf_init(&m->tail, METRICS_TAIL_MAX_BYTES);
        r = load_dora(api, req->cfg, m, err);
        if (r == 0)
                r = support_metrics(api, now_us(), &m->tail, err);
        if (r == 0)
                r = rca_metrics(api, &m->tail, err);
        if (r == 0)
                r = problems_metrics(api, &m->tail, err);
        if (r == 0)
                r = insights_metrics(api, &m->tail, err);
        if (r == 0)
                r = sender_metrics(api, &m->tail, err);
        if (r == 0)
                r = stats_write(&m->tail);
        if (r == 0)
                r = write_writer(api, &m->tail);
        if (r == 0)
                r = cluster_metrics_write(api, &m->tail);
        if (r < 0) {
                prometheus_free(m);
                return reply_unavailable(err, err, "GET /metrics");
        }
        *ret_metrics = m;
        return 0;
}
