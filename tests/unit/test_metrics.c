/* Unit tests for lib/metrics.c (buckets, the 1% bound, quantiles, merging, bands, figures)
 * and lib/cube.c (whole days from rollups plus exact edges, against brute force). */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "cube.h"
#include "metrics.h"

#define NEAR(a, b, rel) (fabs((double) (a) - (double) (b)) <= (rel) * fabs((double) (b)) + 1e-9)

/* A small deterministic generator (xorshift64*), so runs are reproducible. */
static uint64_t rng_state = 0x9e3779b97f4a7c15u;

static uint64_t rnd(void) {
        rng_state ^= rng_state >> 12;
        rng_state ^= rng_state << 25;
        rng_state ^= rng_state >> 27;
        return rng_state * 0x2545f4914f6cdd1du;
}

static double rnd_unit(void) {
        return (double) (rnd() >> 11) / (double) (1ull << 53);
}

/* A duration spread log-uniformly from 1 s to ~100 days, with some exact repeats. */
static double rnd_duration(void) {
        if (rnd() % 10 == 0)
                return 3600;
        return exp(rnd_unit() * log(8.64e6));
}

static int cmp_double(const void *a, const void *b) {
        double x = *(const double *) a, y = *(const double *) b;

        return (x > y) - (x < y);
}

/* percentile_cont over sorted values, as PostgreSQL computes it. */
static double exact_quantile(const double *sorted, size_t n, double q) {
        double pos = q * (double) (n - 1);
        size_t k = (size_t) floor(pos);

        if (k + 1 >= n)
                return sorted[k];
        return sorted[k] + (pos - (double) k) * (sorted[k + 1] - sorted[k]);
}

static void test_bucket_bound(void) {
        double worst = 0;

        /* Every value from 1 ms to 30 years, in fine steps: its bucket's value is within
         * 1% (in fact 1/101). */
        for (double x = 0.001; x < 1e9; x *= 1.0007) {
                double v = metrics_bucket_value(metrics_bucket(x));
                double rel = fabs(v - x) / x;

                if (rel > worst)
                        worst = rel;
        }
        CHECK(worst <= 0.01);
        CHECK(worst < 1.0 / 100.5);
        CHECK(metrics_bucket(0) == METRICS_ZERO_BUCKET);
        CHECK(metrics_bucket(-5) == METRICS_ZERO_BUCKET);
        CHECK(metrics_bucket(NAN) == METRICS_ZERO_BUCKET);
        CHECK(metrics_bucket_value(METRICS_ZERO_BUCKET) == 0);
        CHECK(metrics_bucket(1e30) == METRICS_MAX_BUCKET);
        /* bucket i holds (1.02^(i-1), 1.02^i]: 1 s is bucket 0, just above it bucket 1 */
        CHECK(metrics_bucket(1.0) == 0);
        CHECK(metrics_bucket(1.01) == 1);
        CHECK(metrics_bucket(1.02 * 1.0001) == 2);
}

static void test_quantiles(void) {
        static double vals[5001];
        static struct metrics_hist h;

        for (int round = 0; round < 200; round++) {
                size_t n = 1 + rnd() % (round < 100 ? 12 : 5000); /* small odd and even counts too */

                memset(&h, 0, sizeof(h));
                for (size_t i = 0; i < n; i++) {
                        vals[i] = rnd_duration();
                        metrics_hist_add(&h, metrics_bucket(vals[i]), 1);
                }
                qsort(vals, n, sizeof(vals[0]), cmp_double);
                CHECK(h.total == n);
                CHECK(NEAR(metrics_hist_quantile(&h, 0.5), exact_quantile(vals, n, 0.5), 0.01));
                CHECK(NEAR(metrics_hist_quantile(&h, 0.9), exact_quantile(vals, n, 0.9), 0.01));
                CHECK(NEAR(metrics_hist_quantile(&h, 0.0), vals[0], 0.01));
                CHECK(NEAR(metrics_hist_quantile(&h, 1.0), vals[n - 1], 0.01));
        }
        /* Even count: the mean of the two middle values (percentile_cont). 100 and 300 ->
         * 200, each neighbour within 1%, so the mean is too. */
        memset(&h, 0, sizeof(h));
        metrics_hist_add(&h, metrics_bucket(100), 1);
        metrics_hist_add(&h, metrics_bucket(300), 1);
        CHECK(NEAR(metrics_hist_quantile(&h, 0.5), 200, 0.01));
        /* Zeros are exact. */
        memset(&h, 0, sizeof(h));
        metrics_hist_add(&h, metrics_bucket(0), 3);
        CHECK(metrics_hist_quantile(&h, 0.5) == 0);
        memset(&h, 0, sizeof(h));
        CHECK(isnan(metrics_hist_quantile(&h, 0.5)));
}

/* Merging per-day histograms is the histogram of all the values: a median over a window
 * is never a median of daily medians. */
static void test_merge(void) {
        static struct metrics_hist days[10], merged, all;
        static double vals[1000];
        int32_t sparse[8];
        size_t n = 0;

        memset(days, 0, sizeof(days));
        memset(&merged, 0, sizeof(merged));
        memset(&all, 0, sizeof(all));
        for (int d = 0; d < 10; d++)
                for (int i = 0; i < 1 + d * 20; i++) {
                        double v = (d + 1) * 1000.0 + rnd_duration() / 100;

                        vals[n++] = v;
                        metrics_hist_add(&days[d], metrics_bucket(v), 1);
                        metrics_hist_add(&all, metrics_bucket(v), 1);
                }
        for (int d = 0; d < 10; d++)
                metrics_hist_merge(&merged, &days[d]);
        CHECK(memcmp(&merged, &all, sizeof(all)) == 0);
        qsort(vals, n, sizeof(vals[0]), cmp_double);
        CHECK(NEAR(metrics_hist_quantile(&merged, 0.5), exact_quantile(vals, n, 0.5), 0.01));

        /* The sparse form dl_rollups stores: {bucket, count, ...}. */
        memset(&merged, 0, sizeof(merged));
        sparse[0] = metrics_bucket(60), sparse[1] = 2;
        sparse[2] = METRICS_ZERO_BUCKET, sparse[3] = 1;
        sparse[4] = metrics_bucket(7200), sparse[5] = 1;
        sparse[6] = 99; /* odd trailing integer: ignored */
        metrics_hist_add_sparse(&merged, sparse, 7);
        CHECK(merged.total == 4 && merged.zero == 1);
        /* 0, 60, 60, 7200: median = (60 + 60) / 2 */
        CHECK(NEAR(metrics_hist_quantile(&merged, 0.5), 60, 0.01));
}

static void test_bands(void) {
        enum metrics_bands b;

        CHECK(metrics_bands_parse("2021", &b) == 0 && b == METRICS_BANDS_2021);
        CHECK(metrics_bands_parse("2023", &b) == 0 && b == METRICS_BANDS_2023);
        CHECK(metrics_bands_parse("2024", &b) == 0 && b == METRICS_BANDS_2024);
        CHECK(metrics_bands_parse("2022", &b) == -EINVAL);
        CHECK(metrics_bands_parse(NULL, &b) == -EINVAL);
        CHECK_STR(metrics_bands_name(METRICS_BANDS_2024), "2024");

        /* Deployment frequency: 2/day elite; 1/week high (2023) but low... no: 2021's high
         * starts at once a month, so 1/week is high there too; 1/20 days: 2023 medium, 2021
         * high; 1/100 days: 2021 medium, 2023 low. */
        CHECK_STR(metrics_band_deployment_frequency(METRICS_BANDS_2023, 2), "elite");
        CHECK_STR(metrics_band_deployment_frequency(METRICS_BANDS_2023, 1.0 / 7), "high");
        CHECK_STR(metrics_band_deployment_frequency(METRICS_BANDS_2023, 1.0 / 20), "medium");
        CHECK_STR(metrics_band_deployment_frequency(METRICS_BANDS_2021, 1.0 / 20), "high");
        CHECK_STR(metrics_band_deployment_frequency(METRICS_BANDS_2021, 1.0 / 100), "medium");
        CHECK_STR(metrics_band_deployment_frequency(METRICS_BANDS_2023, 1.0 / 100), "low");
        CHECK_STR(metrics_band_deployment_frequency(METRICS_BANDS_2024, 1.0 / 100), "low");
        CHECK(metrics_band_deployment_frequency(METRICS_BANDS_2023, NAN) == NULL);

        /* Lead time: 2 h is elite in 2023 (< 1 day) but high in 2021 (elite < 1 hour). */
        CHECK_STR(metrics_band_lead_time(METRICS_BANDS_2023, 7200), "elite");
        CHECK_STR(metrics_band_lead_time(METRICS_BANDS_2021, 7200), "high");
        CHECK_STR(metrics_band_lead_time(METRICS_BANDS_2023, 3 * 86400), "high");
        CHECK_STR(metrics_band_lead_time(METRICS_BANDS_2023, 10 * 86400), "medium");
        CHECK_STR(metrics_band_lead_time(METRICS_BANDS_2023, 40 * 86400), "low");
        CHECK_STR(metrics_band_lead_time(METRICS_BANDS_2021, 40 * 86400), "medium");
        CHECK_STR(metrics_band_lead_time(METRICS_BANDS_2021, 200 * 86400), "low");

        /* Change failure rate: 8% is high in 2023 (<= 10%), high in 2024 (<= 20%), elite in
         * 2021 (<= 15%); 12% medium in 2023; 25% low in 2024. */
        CHECK_STR(metrics_band_change_failure_rate(METRICS_BANDS_2023, 0.05), "elite");
        CHECK_STR(metrics_band_change_failure_rate(METRICS_BANDS_2023, 0.08), "high");
        CHECK_STR(metrics_band_change_failure_rate(METRICS_BANDS_2024, 0.08), "high");
        CHECK_STR(metrics_band_change_failure_rate(METRICS_BANDS_2021, 0.08), "elite");
        CHECK_STR(metrics_band_change_failure_rate(METRICS_BANDS_2023, 0.12), "medium");
        CHECK_STR(metrics_band_change_failure_rate(METRICS_BANDS_2024, 0.25), "low");
        CHECK_STR(metrics_band_change_failure_rate(METRICS_BANDS_2021, 0.5), "low");

        /* Recovery: 30 min elite; 5 h high; 3 days medium (2023) but low (2024). */
        CHECK_STR(metrics_band_recovery_time(METRICS_BANDS_2023, 1800), "elite");
        CHECK_STR(metrics_band_recovery_time(METRICS_BANDS_2023, 5 * 3600), "high");
        CHECK_STR(metrics_band_recovery_time(METRICS_BANDS_2023, 3 * 86400), "medium");
        CHECK_STR(metrics_band_recovery_time(METRICS_BANDS_2024, 3 * 86400), "low");
        CHECK_STR(metrics_band_recovery_time(METRICS_BANDS_2021, 30 * 86400), "low");
}

static void test_figures(void) {
        static struct metrics_acc acc;
        struct metrics_figures f;

        memset(&acc, 0, sizeof(acc));
        metrics_figures(&acc, 30 * 86400.0, &f);
        /* No data: every figure is NAN (null in JSON), never 0. */
        CHECK(f.deployments == 0 && isnan(f.per_day) && isnan(f.failure_rate) &&
              isnan(f.rework_rate) && isnan(f.lead_median) && isnan(f.lead_p90) &&
              isnan(f.restore_median) && isnan(f.recovery_median));
        CHECK(f.days == 30);

        /* 12 deployments over 30 days, 1 failed, 1 rework: 0.4/day, 1/12 and 1/12. */
        acc.deployments = 12;
        acc.failed = 1;
        acc.rework = 1;
        metrics_figures(&acc, 30 * 86400.0, &f);
        CHECK(NEAR(f.per_day, 0.4, 1e-12));
        CHECK(NEAR(f.failure_rate, 1.0 / 12, 1e-12));
        CHECK(NEAR(f.rework_rate, 1.0 / 12, 1e-12));

        /* Change control: no verdict, no share; 10 of 12 approved is 5/6; the verdicts
         * name themselves both ways. */
        CHECK(f.controlled == 0 && isnan(f.approved_rate) && isnan(f.approval_median));
        acc.control[METRICS_APPROVED] = 10;
        acc.control[METRICS_UNAUTHORIZED] = 1;
        acc.control[METRICS_AUTO_CREATED] = 1;
        acc.emergency = 1;
        metrics_hist_add(&acc.approval, metrics_bucket(3600), 1);
        metrics_figures(&acc, 30 * 86400.0, &f);
        CHECK(f.controlled == 12 && f.control[METRICS_UNRECORDED] == 0 && f.emergency == 1);
        CHECK(NEAR(f.approved_rate, 10.0 / 12, 1e-12));
        CHECK(NEAR(f.approval_median, 3600, 36));
        for (int c = 0; c < _METRICS_CONTROL_MAX; c++)
                CHECK(metrics_control_parse(metrics_control_name((enum metrics_control) c)) ==
                      (enum metrics_control) c);
        CHECK(metrics_control_parse(NULL) == METRICS_NO_CONTROL);
        CHECK(metrics_control_parse("approve") == METRICS_NO_CONTROL);
        CHECK(metrics_control_name(METRICS_NO_CONTROL) == NULL);
}

/* ------------------------------------------------------------------ cube */

#define DAY CUBE_DAY_US

struct ev {
        int service, env;       /* env 2 = "" (incident linked to nothing) */
        char kind;              /* 'd', 'c', 'i' or 'a' (an approval latency) */
        bool failed, rework, emergency;
        enum metrics_control control;
        double seconds;
        int64_t at;
};

static const char *const services[] = { "a", "b", "c" };
static const char *const envs[] = { "production", "staging", "" };

/* Brute force over the events, as the reference computation would. */
static void brute(const struct ev *e, size_t n, const struct cube_query *q, struct metrics_acc *acc) {
        memset(acc, 0, sizeof(*acc));
        for (size_t i = 0; i < n; i++) {
                bool env_ok = false;

                if (q->service && strcmp(services[e[i].service], q->service) != 0)
                        continue;
                if (e[i].at < q->from_us || e[i].at >= q->to_us)
                        continue;
                for (size_t j = 0; j < q->n_envs; j++)
                        env_ok |= strcmp(envs[e[i].env], q->envs[j]) == 0;
                if (e[i].env == 2)
                        env_ok = q->unlinked;
                if (!env_ok)
                        continue;
                if (e[i].kind == 'd') {
                        acc->deployments++;
                        acc->failed += e[i].failed;
                        acc->rework += e[i].rework;
                        if (!isnan(e[i].seconds)) {
                                acc->recovered++;
                                metrics_hist_add(&acc->recovery, metrics_bucket(e[i].seconds), 1);
                        }
                        if (e[i].control != METRICS_NO_CONTROL)
                                acc->control[e[i].control]++;
                        acc->emergency += e[i].emergency;
                } else if (e[i].kind == 'a') {
                        metrics_hist_add(&acc->approval, metrics_bucket(e[i].seconds), 1);
                } else if (e[i].kind == 'c') {
                        acc->changes++;
                        metrics_hist_add(&acc->lead, metrics_bucket(e[i].seconds), 1);
                } else {
                        acc->incidents++;
                        metrics_hist_add(&acc->restore, metrics_bucket(e[i].seconds), 1);
                }
        }
}

/* Rolls the events of one (service, env, day) up the way dl_rollup_rows does. */
static int rollup(struct cube *c, const struct ev *e, size_t n, int s, int env, int32_t day,
                  int64_t rev) {
        static struct metrics_hist h[CUBE_HISTS];
        static int32_t sparse[CUBE_HISTS][2 * METRICS_BUCKETS + 2];
        struct cube_row r = { .service = services[s], .environment = envs[env], .day = day,
                              .rev = rev };
        bool any = false;

        memset(h, 0, sizeof(h));
        for (size_t i = 0; i < n; i++) {
                if (e[i].service != s || e[i].env != env || e[i].at / DAY != day)
                        continue;
                any = true;
                if (e[i].kind == 'd') {
                        r.deployments++;
                        r.failed += e[i].failed;
                        r.rework += e[i].rework;
                        if (!isnan(e[i].seconds)) {
                                r.recovered++;
                                metrics_hist_add(&h[CUBE_RECOVERY], metrics_bucket(e[i].seconds), 1);
                        }
                        if (e[i].control != METRICS_NO_CONTROL)
                                r.control[e[i].control]++;
                        r.emergency += e[i].emergency;
                } else if (e[i].kind == 'a') {
                        metrics_hist_add(&h[CUBE_APPROVAL], metrics_bucket(e[i].seconds), 1);
                } else if (e[i].kind == 'c') {
                        r.changes++;
                        metrics_hist_add(&h[CUBE_LEAD], metrics_bucket(e[i].seconds), 1);
                } else {
                        r.incidents++;
                        metrics_hist_add(&h[CUBE_RESTORE], metrics_bucket(e[i].seconds), 1);
                }
        }
        if (!any)
                return 0;
        for (int k = 0; k < CUBE_HISTS; k++) {
                size_t m = 0;

                if (h[k].zero) {
                        sparse[k][m++] = METRICS_ZERO_BUCKET;
                        sparse[k][m++] = (int32_t) h[k].zero;
                }
                for (int b = 0; b < METRICS_BUCKETS; b++)
                        if (h[k].counts[b]) {
                                sparse[k][m++] = b + METRICS_MIN_BUCKET;
                                sparse[k][m++] = (int32_t) h[k].counts[b];
                        }
                r.hist[k] = sparse[k];
                r.n_hist[k] = m;
        }
        return cube_apply(c, &r);
}

static int load_detail(struct cube *c, const struct ev *e, size_t n, int32_t day) {
        static struct cube_event_in in[4000];
        size_t m = 0;
        uint64_t token = cube_detail_token(c, day);

        for (size_t i = 0; i < n; i++)
                if (e[i].at / DAY == day)
                        in[m++] = (struct cube_event_in) {
                                .service = services[e[i].service], .environment = envs[e[i].env],
                                .kind = e[i].kind, .failed = e[i].failed, .rework = e[i].rework,
                                .control = e[i].control, .emergency = e[i].emergency,
                                .seconds = e[i].seconds, .at_us = e[i].at };
        return cube_set_detail(c, day, token, in, m);
}

static bool same(const struct metrics_acc *a, const struct metrics_acc *b) {
        return a->deployments == b->deployments && a->failed == b->failed &&
               a->rework == b->rework && a->changes == b->changes &&
               a->incidents == b->incidents && a->recovered == b->recovered &&
               memcmp(&a->lead, &b->lead, sizeof(a->lead)) == 0 &&
               memcmp(&a->restore, &b->restore, sizeof(a->restore)) == 0 &&
               memcmp(&a->recovery, &b->recovery, sizeof(a->recovery)) == 0 &&
               memcmp(a->control, b->control, sizeof(a->control)) == 0 &&
               a->emergency == b->emergency &&
               memcmp(&a->approval, &b->approval, sizeof(a->approval)) == 0;
}

static void test_cube(void) {
        static struct ev e[3000];
        static struct metrics_acc got, want;
        const int64_t base = 19700 * DAY; /* some day in 2023 */
        struct cube *c = cube_new();
        size_t n = 0;
        int mismatches = 0, loads = 0;

        CHECK(c != NULL);
        if (!c)
                return;
        cube_reset(c, 1);
        for (n = 0; n < 3000; n++) {
                int kind = (int) (rnd() % 4);

                e[n] = (struct ev) {
                        .service = (int) (rnd() % 3),
                        .env = kind == 2 ? (int) (rnd() % 3) : (int) (rnd() % 2),
                        .kind = "dcia"[kind],
                        .failed = rnd() % 4 == 0, .rework = rnd() % 5 == 0,
                        .control = kind == 0 ? (int) (rnd() % (_METRICS_CONTROL_MAX + 1)) - 1
                                             : METRICS_NO_CONTROL,
                        .seconds = kind == 0 && rnd() % 3 ? NAN : rnd_duration(),
                        .at = base + (int64_t) (rnd() % (uint64_t) (60 * DAY)),
                };
                e[n].emergency = e[n].control != METRICS_NO_CONTROL && rnd() % 6 == 0;
        }
        for (int s = 0; s < 3; s++)
                for (int env = 0; env < 3; env++)
                        for (int32_t d = 19700; d < 19760; d++)
                                CHECK(rollup(c, e, n, s, env, d, 1) == 0);

        for (int round = 0; round < 300; round++) {
                const char *qenvs[2] = { "production", "staging" };
                int64_t from = base - DAY + (int64_t) (rnd() % (uint64_t) (62 * DAY));
                int64_t to = from + 1 + (int64_t) (rnd() % (uint64_t) (round % 3 ? 40 * DAY : DAY / 2));
                struct cube_query q = {
                        .service = rnd() % 2 ? NULL : services[rnd() % 3],
                        .envs = qenvs, .n_envs = 1 + rnd() % 2, .unlinked = rnd() % 2,
                        .from_us = from, .to_us = to, .cache = rnd() % 2,
                };
                int32_t missing;
                int r;

                if (round % 7 == 0) /* whole days only */
                        q.from_us = from / DAY * DAY, q.to_us = (to / DAY + 1) * DAY;
                while ((r = cube_sum(c, &q, &got, &missing)) == -ENOENT) {
                        CHECK(load_detail(c, e, n, missing) == 0);
                        loads++;
                }
                CHECK(r == 0);
                brute(e, n, &q, &want);
                if (!same(&got, &want))
                        mismatches++;
        }
        CHECK(mismatches == 0);
        CHECK(loads > 0);

        /* A later revision of a row replaces it; an older one is ignored; applying a row
         * drops that day's events, which must then be loaded again. */
        {
                const char *qenvs[1] = { "production" };
                struct cube_query q = { .service = "a", .envs = qenvs, .n_envs = 1,
                                        .from_us = 19710 * DAY, .to_us = 19711 * DAY,
                                        .cache = true };
                struct cube_row r = { .service = "a", .environment = "production",
                                      .day = 19710, .deployments = 1000, .rev = 2 };
                int32_t missing = 0;

                CHECK(cube_apply(c, &r) == 0);
                CHECK(cube_sum(c, &q, &got, &missing) == 0 && got.deployments == 1000);
                r.deployments = 5, r.rev = 1;
                CHECK(cube_apply(c, &r) == 0);
                CHECK(cube_sum(c, &q, &got, &missing) == 0 && got.deployments == 1000);
                q.from_us += DAY / 2; /* now an edge day */
                CHECK(cube_sum(c, &q, &got, &missing) == -ENOENT && missing == 19710);
                /* a token taken before a row of that day changed: events kept for one use */
                {
                        uint64_t token = cube_detail_token(c, 19710);

                        r.rev = 3;
                        CHECK(cube_apply(c, &r) == 0);
                        CHECK(cube_set_detail(c, 19710, token, NULL, 0) == 0);
                        CHECK(cube_sum(c, &q, &got, &missing) == 0);
                        CHECK(cube_sum(c, &q, &got, &missing) == -ENOENT);
                }
        }
        cube_free(c);
}

/* Label values: kept as they are when short; else cut at a character, never inside one,
 * with a suffix that tells apart names sharing the prefix. */
static void test_labels(void) {
        char out[METRICS_LABEL_MAX], other[METRICS_LABEL_MAX], name[600];
        size_t n;

        CHECK(metrics_label("checkout", out) == 0);
        CHECK_STR(out, "checkout");
        CHECK(metrics_label("a\"b\\c\nd", out) == 0);
        CHECK_STR(out, "a\\\"b\\\\c\\nd");
        /* 229 ASCII bytes then 'é' (2 bytes): the cut falls before it, not inside it. */
        memset(name, 'x', 229);
        memcpy(name + 229, "\xc3\xa9\xc3\xa9", 5);
        CHECK(metrics_label(name, out) == 0);
        n = strlen(out);
        CHECK(n <= METRICS_LABEL_MAX - 1 && n == 229 + METRICS_LABEL_SUFFIX);
        CHECK(out[229] == '~');
        /* The same prefix, another ending: another suffix. */
        name[233] = 'z';
        name[234] = '\0';
        CHECK(metrics_label(name, other) == 0);
        CHECK(strncmp(out, other, 230) == 0 && strcmp(out, other) != 0);
        /* A value written as it is never looks like a cut one: those are longer. */
        memset(name, 'y', METRICS_LABEL_KEEP);
        name[METRICS_LABEL_KEEP] = '\0';
        CHECK(metrics_label(name, out) == 0 && strlen(out) == METRICS_LABEL_KEEP);
        name[METRICS_LABEL_KEEP] = 'y';
        name[METRICS_LABEL_KEEP + 1] = '\0';
        CHECK(metrics_label(name, out) == 0 && strlen(out) > METRICS_LABEL_KEEP);
        /* Bytes that are not UTF-8 become U+FFFD, and mark the value as altered. */
        CHECK(metrics_label("a\xff", out) == 0);
        CHECK(strncmp(out, "a\xef\xbf\xbd~", 5) == 0);
}

int main(void) {
        test_labels();
        test_bucket_bound();
        test_quantiles();
        test_merge();
        test_bands();
        test_figures();
        test_cube();
        return check_summary();
}
