/* metrics: the DORA arithmetic: mergeable log-bucketed histograms (DDSketch-style, bucket
 * ratio 1.02, so any quantile is within 1% of the exact value), accumulators that sum days,
 * the figures of a window, and the bands of the DORA reports. Pure C: no SQL, no clock,
 * no globals; thread-safe as long as each object is used by one thread at a time. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bucket i holds values in (GAMMA^(i-1), GAMMA^i] seconds; the SQL side (dl_bucket in
 * sql/003_metrics.sql) uses the same rule. Values under 1 ms, and 0, go to the zero bucket,
 * whose value is 0. */
#define METRICS_GAMMA 1.02
#define METRICS_ZERO_BUCKET (-1000)
#define METRICS_MIN_BUCKET (-349)       /* ceil(log_1.02(0.001)) - 1 */
#define METRICS_MAX_BUCKET 1200         /* ~2.1e10 s: anything longer is clamped here */
#define METRICS_BUCKETS (METRICS_MAX_BUCKET - METRICS_MIN_BUCKET + 1)
#define METRICS_NO_VALUE INT32_MIN      /* an event without a duration */

/* The bucket of a duration in seconds (negative counts as 0). */
int32_t metrics_bucket(double seconds);

/* The value a bucket stands for: 2 GAMMA^i / (GAMMA + 1), within 1/101 of every value in
 * it; 0 for the zero bucket. */
double metrics_bucket_value(int32_t bucket);

/* A dense histogram: what a window's days merge into. */
struct metrics_hist {
        uint64_t total, zero;
        uint32_t counts[METRICS_BUCKETS];
};

/* Adds n values of one bucket (out-of-range buckets are clamped). */
void metrics_hist_add(struct metrics_hist *h, int32_t bucket, uint32_t n);

/* Adds a sparse histogram {bucket, count, bucket, count...} of n_ints integers (as stored in
 * dl_rollups); an odd trailing integer is ignored. */
void metrics_hist_add_sparse(struct metrics_hist *h, const int32_t *pairs, size_t n_ints);

void metrics_hist_merge(struct metrics_hist *dst, const struct metrics_hist *src);

/* percentile_cont(q) of the values (the two neighbours interpolated), each neighbour
 * within 1% of its exact value, so the result is too. NAN when empty. */
double metrics_hist_quantile(const struct metrics_hist *h, double q);

/* The change-control verdict of a production deployment (deployments.control). */
enum metrics_control {
        METRICS_APPROVED,
        METRICS_UNAUTHORIZED,
        METRICS_AUTO_CREATED,
        METRICS_UNRECORDED,
        _METRICS_CONTROL_MAX,
        METRICS_NO_CONTROL = -1,        /* not a production deployment */
};

/* "approved" | "unauthorized" | "auto_created" | "unrecorded" -> the verdict; anything else
 * (NULL too) -> METRICS_NO_CONTROL. Thread-safe. */
enum metrics_control metrics_control_parse(const char *s);

/* The verdict's name, a static string; NULL for METRICS_NO_CONTROL. Thread-safe. */
const char *metrics_control_name(enum metrics_control c);

/* Everything a window's figures are made of: sums of days, plus edge events. */
struct metrics_acc {
        int64_t deployments, failed, rework, changes, incidents, recovered;
        int64_t control[_METRICS_CONTROL_MAX], emergency;
        struct metrics_hist lead, restore, recovery, approval;
};

void metrics_acc_merge(struct metrics_acc *dst, const struct metrics_acc *src);

enum metrics_bands {
        METRICS_BANDS_2021,
        METRICS_BANDS_2023,
        METRICS_BANDS_2024,
        _METRICS_BANDS_MAX,
};

/* "2021" | "2023" | "2024" -> 0 and *ret, else -EINVAL. */
int metrics_bands_parse(const char *s, enum metrics_bands *ret) __attribute__((warn_unused_result));
const char *metrics_bands_name(enum metrics_bands b);

/* The band ("elite", "high", "medium", "low") of one figure in a report, or NULL for a NAN
 * figure. Time to restore and failed deployment recovery time share one scale per report
 * (2023 replaced the first with the second). */
const char *metrics_band_deployment_frequency(enum metrics_bands b, double per_day);
const char *metrics_band_lead_time(enum metrics_bands b, double seconds);
const char *metrics_band_change_failure_rate(enum metrics_bands b, double rate);
const char *metrics_band_recovery_time(enum metrics_bands b, double seconds);

/* A window's figures; NAN where there is no data (nothing to take a median or a ratio of,
 * no deployment to make a frequency). */
struct metrics_figures {
        double days;
        int64_t deployments, changes, failed, incidents, rework;
        double per_day, lead_median, lead_p90, failure_rate, restore_median, recovery_median,
               rework_rate;
        /* change control: the deployments with a verdict, split by it */
        int64_t controlled, control[_METRICS_CONTROL_MAX], emergency;
        double approved_rate, approval_median;
};

/* The figures of acc over a window of `seconds` seconds (> 0). */
void metrics_figures(const struct metrics_acc *acc, double seconds,
                     struct metrics_figures *ret);

/* Prometheus label values: METRICS_LABEL_MAX bytes with the NUL. A value written as it is
 * takes at most METRICS_LABEL_KEEP bytes; any other (longer, or not UTF-8) is cut at a
 * character boundary to at most METRICS_LABEL_KEEP bytes and ends with "~" and 24 hex digits
 * of the SHA-256 of the whole value, so it is longer than any value written as it is, and
 * two names sharing a long prefix stay two series. */
#define METRICS_LABEL_MAX 256
#define METRICS_LABEL_SUFFIX 25         /* "~" + 24 hex digits */
#define METRICS_LABEL_KEEP (METRICS_LABEL_MAX - 1 - METRICS_LABEL_SUFFIX)

/* Writes v as a label value (\\, \" and \n escaped; bytes that are not UTF-8 as U+FFFD)
 * into out, by the rule above. Returns 0 or -EIO (no SHA-256). Thread-safe. */
int metrics_label(const char *v, char out[METRICS_LABEL_MAX]) __attribute__((warn_unused_result));
