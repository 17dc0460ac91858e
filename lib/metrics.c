/* metrics: histograms, quantiles, window figures and the DORA report bands. */
#include "metrics.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "hmac.h"
#include "utf8.h"

int32_t metrics_bucket(double seconds) {
        double i;

        if (!(seconds >= 0.001)) /* also NAN and negatives */
                return METRICS_ZERO_BUCKET;
        i = ceil(log(seconds) / log(METRICS_GAMMA));
        if (i > METRICS_MAX_BUCKET)
                return METRICS_MAX_BUCKET;
        if (i < METRICS_MIN_BUCKET)
                return METRICS_MIN_BUCKET;
        return (int32_t) i;
}

double metrics_bucket_value(int32_t bucket) {
        if (bucket == METRICS_ZERO_BUCKET)
                return 0;
        return 2 * pow(METRICS_GAMMA, bucket) / (METRICS_GAMMA + 1);
}

void metrics_hist_add(struct metrics_hist *h, int32_t bucket, uint32_t n) {
        if (bucket == METRICS_ZERO_BUCKET)
                h->zero += n;
        else {
                if (bucket < METRICS_MIN_BUCKET)
                        bucket = METRICS_MIN_BUCKET;
                if (bucket > METRICS_MAX_BUCKET)
                        bucket = METRICS_MAX_BUCKET;
                h->counts[bucket - METRICS_MIN_BUCKET] += n;
        }
        h->total += n;
}

void metrics_hist_add_sparse(struct metrics_hist *h, const int32_t *pairs, size_t n_ints) {
        for (size_t i = 0; i + 1 < n_ints; i += 2)
                if (pairs[i + 1] > 0)
                        metrics_hist_add(h, pairs[i], (uint32_t) pairs[i + 1]);
}

void metrics_hist_merge(struct metrics_hist *dst, const struct metrics_hist *src) {
        if (!src->total)
                return;
        dst->total += src->total;
        dst->zero += src->zero;
        for (size_t i = 0; i < METRICS_BUCKETS; i++)
                dst->counts[i] += src->counts[i];
}

/* The value of rank r (0-based) in sorted order. */
static double value_at(const struct metrics_hist *h, uint64_t r) {
        uint64_t seen = h->zero;

        if (r < seen)
                return 0;
        for (size_t i = 0; i < METRICS_BUCKETS; i++) {
                seen += h->counts[i];
                if (r < seen)
                        return metrics_bucket_value((int32_t) i + METRICS_MIN_BUCKET);
        }
        return metrics_bucket_value(METRICS_MAX_BUCKET);
}

double metrics_hist_quantile(const struct metrics_hist *h, double q) {
        double pos, frac, lo;
        uint64_t k;

        if (!h->total)
                return NAN;
        pos = q * (double) (h->total - 1);
        k = (uint64_t) floor(pos);
        frac = pos - (double) k;
        lo = value_at(h, k);
        if (frac <= 0 || k + 1 >= h->total)
                return lo;
        return lo + frac * (value_at(h, k + 1) - lo);
}

void metrics_acc_merge(struct metrics_acc *dst, const struct metrics_acc *src) {
        dst->deployments += src->deployments;
        dst->failed += src->failed;
        dst->rework += src->rework;
        dst->changes += src->changes;
        dst->incidents += src->incidents;
        dst->recovered += src->recovered;
        metrics_hist_merge(&dst->lead, &src->lead);
        metrics_hist_merge(&dst->restore, &src->restore);
        metrics_hist_merge(&dst->recovery, &src->recovery);
        for (int i = 0; i < _METRICS_CONTROL_MAX; i++)
                dst->control[i] += src->control[i];
        dst->emergency += src->emergency;
        metrics_hist_merge(&dst->approval, &src->approval);
}

static const char *const control_names[_METRICS_CONTROL_MAX] = {
        [METRICS_APPROVED] = "approved",
        [METRICS_UNAUTHORIZED] = "unauthorized",
        [METRICS_AUTO_CREATED] = "auto_created",
        [METRICS_UNRECORDED] = "unrecorded",
};

enum metrics_control metrics_control_parse(const char *s) {
        for (int i = 0; s && i < _METRICS_CONTROL_MAX; i++)
                if (strcmp(s, control_names[i]) == 0)
                        return (enum metrics_control) i;
        return METRICS_NO_CONTROL;
}

const char *metrics_control_name(enum metrics_control c) {
        return c >= 0 && c < _METRICS_CONTROL_MAX ? control_names[c] : NULL;
}

static const char *const band_names[] = { "elite", "high", "medium", "low" };
static const char *const bands_names[_METRICS_BANDS_MAX] = { "2021", "2023", "2024" };

int metrics_bands_parse(const char *s, enum metrics_bands *ret) {
        for (int i = 0; s && i < _METRICS_BANDS_MAX; i++)
                if (strcmp(s, bands_names[i]) == 0) {
                        *ret = (enum metrics_bands) i;
                        return 0;
                }
        return -EINVAL;
}

const char *metrics_bands_name(enum metrics_bands b) {
        return b < _METRICS_BANDS_MAX ? bands_names[b] : NULL;
}

#define HOUR 3600.0
#define DAY 86400.0
#define WEEK (7 * DAY)
#define MONTH (30 * DAY)
#define SIX_MONTHS (182.5 * DAY)

/* Each report describes its performance clusters in words ("between one day and one week");
 * a tier here is the bound that words put on the better side, and a figure gets the first
 * tier, elite to low, whose bound it meets (low takes the rest). Where a report gives a
 * worse tier a better bound than a better tier (it happens: the reports' clusters are not
 * monotonic per metric) that tier cannot be reached; no composite grade is made.
 *
 * Deployment frequency: deployments per day at least. */
static const double deployment_frequency[_METRICS_BANDS_MAX][3] = {
        /* 2021 Accelerate State of DevOps report, Table "Software delivery performance":
         * elite on-demand (multiple deploys per day); high between once per week and once
         * per month; medium between once per month and once every six months; low fewer
         * than once per six months. */
        [METRICS_BANDS_2021] = { 1.0, 1.0 / 30, 1.0 / 182.5 },
        /* 2023 Accelerate State of DevOps report, "Software delivery performance" clusters:
         * elite on demand; high between once per day and once per week; medium between
         * once per week and once per month; low between once per week and once per month
         * (as medium, so below once a month is low). */
        [METRICS_BANDS_2023] = { 1.0, 1.0 / 7, 1.0 / 30 },
        /* 2024 Accelerate State of DevOps report (DORA), performance levels: elite on
         * demand; high between once per day and once per week; medium between once per
         * week and once per month; low between once per month and once every six months. */
        [METRICS_BANDS_2024] = { 1.0, 1.0 / 7, 1.0 / 30 },
};

/* Lead time for changes: seconds, strictly less than. */
static const double lead_time[_METRICS_BANDS_MAX][3] = {
        /* 2021 report: elite less than one hour; high between one day and one week; medium
         * between one month and six months; low more than six months. */
        [METRICS_BANDS_2021] = { HOUR, WEEK, SIX_MONTHS },
        /* 2023 report: elite less than one day; high between one day and one week; medium
         * between one week and one month; low between one week and one month. */
        [METRICS_BANDS_2023] = { DAY, WEEK, MONTH },
        /* 2024 report: elite less than one day; high between one day and one week; medium
         * between one week and one month; low between one month and six months. */
        [METRICS_BANDS_2024] = { DAY, WEEK, MONTH },
};

/* Change failure rate: at most. */
static const double change_failure_rate[_METRICS_BANDS_MAX][3] = {
        /* 2021 report: elite 0%-15%; high, medium and low 16%-30% (above is low). */
        [METRICS_BANDS_2021] = { 0.15, 0.30, 0.30 },
        /* 2023 report: elite 5%; high 10%; medium 15%; low 64%. */
        [METRICS_BANDS_2023] = { 0.05, 0.10, 0.15 },
        /* 2024 report: elite 5%; high 20%; medium 10%; low 40% (medium is unreachable
         * under first-match: the report's medium cluster fails less often than high). */
        [METRICS_BANDS_2024] = { 0.05, 0.20, 0.10 },
};

/* Time to restore service (2021) / failed deployment recovery time (2023, 2024): seconds,
 * strictly less than. */
static const double recovery_time[_METRICS_BANDS_MAX][3] = {
        /* 2021 report, time to restore service: elite less than one hour; high less than
         * one day; medium between one day and one week; low more than six months. */
        [METRICS_BANDS_2021] = { HOUR, DAY, WEEK },
        /* 2023 report, failed deployment recovery time: elite less than one hour; high less
         * than one day; medium between one day and one week; low between one month and six
         * months. */
        [METRICS_BANDS_2023] = { HOUR, DAY, WEEK },
        /* 2024 report, failed deployment recovery time: elite less than one hour; high less
         * than one day; medium less than one day; low between one week and one month. */
        [METRICS_BANDS_2024] = { HOUR, DAY, DAY },
};

static const char *band_at_least(const double bounds[3], double v) {
        if (isnan(v))
                return NULL;
        for (int i = 0; i < 3; i++)
                if (v >= bounds[i])
                        return band_names[i];
        return band_names[3];
}

static const char *band_below(const double bounds[3], double v, bool inclusive) {
        if (isnan(v))
                return NULL;
        for (int i = 0; i < 3; i++)
                if (inclusive ? v <= bounds[i] : v < bounds[i])
                        return band_names[i];
        return band_names[3];
}

const char *metrics_band_deployment_frequency(enum metrics_bands b, double per_day) {
        return b < _METRICS_BANDS_MAX ? band_at_least(deployment_frequency[b], per_day) : NULL;
}

const char *metrics_band_lead_time(enum metrics_bands b, double seconds) {
        return b < _METRICS_BANDS_MAX ? band_below(lead_time[b], seconds, false) : NULL;
}

const char *metrics_band_change_failure_rate(enum metrics_bands b, double rate) {
        return b < _METRICS_BANDS_MAX ? band_below(change_failure_rate[b], rate, true) : NULL;
}

const char *metrics_band_recovery_time(enum metrics_bands b, double seconds) {
        return b < _METRICS_BANDS_MAX ? band_below(recovery_time[b], seconds, false) : NULL;
}

void metrics_figures(const struct metrics_acc *acc, double seconds, struct metrics_figures *ret) {
        *ret = (struct metrics_figures) {
                .days = seconds / DAY,
                .deployments = acc->deployments,
                .changes = acc->changes,
                .failed = acc->failed,
                .incidents = acc->incidents,
                .rework = acc->rework,
                .per_day = acc->deployments > 0 ? (double) acc->deployments / (seconds / DAY)
                                                : NAN,
                .lead_median = metrics_hist_quantile(&acc->lead, 0.5),
                .lead_p90 = metrics_hist_quantile(&acc->lead, 0.9),
                .failure_rate = acc->deployments > 0
                                ? (double) acc->failed / (double) acc->deployments : NAN,
                .restore_median = metrics_hist_quantile(&acc->restore, 0.5),
                .recovery_median = metrics_hist_quantile(&acc->recovery, 0.5),
                .rework_rate = acc->deployments > 0
                               ? (double) acc->rework / (double) acc->deployments : NAN,
                .emergency = acc->emergency,
                .approval_median = metrics_hist_quantile(&acc->approval, 0.5),
        };
        for (int i = 0; i < _METRICS_CONTROL_MAX; i++) {
                ret->control[i] = acc->control[i];
                ret->controlled += acc->control[i];
        }
        ret->approved_rate = ret->controlled > 0 ? (double) ret->control[METRICS_APPROVED] /
                                                   (double) ret->controlled : NAN;
}

int metrics_label(const char *v, char out[METRICS_LABEL_MAX]) {
        const unsigned char *p = (const unsigned char *) v;
        size_t at = 0, keep = 0;
        bool altered = false;
        char hex[HMAC_HEX_LEN + 1];

        while (*p) {
                char unit[4];
                size_t n = utf8_char_len((const char *) p), len = n, take = n ? n : 1;

                if (*p == '\\' || *p == '"' || *p == '\n') {
                        unit[0] = '\\', unit[1] = *p == '\n' ? 'n' : (char) *p, len = 2;
                } else if (n) {
                        memcpy(unit, p, n);
                } else {
                        memcpy(unit, "\xef\xbf\xbd", 3), len = 3; /* U+FFFD */
                        altered = true;
                }
                if (at + len > METRICS_LABEL_MAX - 1) {
                        altered = true;
                        break;
                }
                memcpy(out + at, unit, len);
                at += len;
                if (at <= METRICS_LABEL_KEEP)
                        keep = at;      /* the last character boundary that leaves room */
                p += take;
        }
        if (at > METRICS_LABEL_KEEP)
                altered = true;
        if (!altered) {
                out[at] = '\0';
                return 0;
        }
        if (sha256_hex(v, strlen(v), hex) < 0)
                return -EIO;
        snprintf(out + keep, METRICS_LABEL_MAX - keep, "~%.24s", hex);
        return 0;
}
