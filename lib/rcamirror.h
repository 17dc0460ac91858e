/* rcamirror: an in-memory mirror of rca_daily (sql/015_root_causes.sql) and of the
 * incidents' factors on a few edge days, answering GET /api/v1/rca's figures of a window
 * in O(days in it), exactly at the edges as dl_rca_fast does: whole UTC days from the
 * daily rows, the partial days at either end from the incidents opened on them. Downtime
 * is kept in whole microseconds (every stored figure has at most 6 decimals), so the sums
 * are exact and the answer is dl_rca_json's, byte for byte. Pure C, no I/O, no clock; not
 * thread-safe: the caller serializes every call on one mirror. */
#pragma once

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define RCAMIRROR_OPEN INT64_MIN        /* resolved_us of an open incident */

/* One rca_daily row of a (service, day); borrowed for the call. */
struct rca_row {
        const char *dimension, *category;       /* '' all, '*' with factors; category '' */
        int64_t incidents, primaries, resolved_us, open_incidents, open_opened_us;
};

/* One row of dl_rca_incident_factors: an incident and one of its factors (dimension NULL
 * when it has none); borrowed for the call. */
struct rca_fact {
        int64_t incident_id;
        const char *service;
        int64_t opened_us, resolved_us;         /* resolved - opened; RCAMIRROR_OPEN */
        const char *dimension, *category, *role;
};

struct rcamirror *rcamirror_new(void);
struct rcamirror *rcamirror_free(struct rcamirror *m);

/* Where it stands, as cube.h's: epoch 0 is never loaded. */
int64_t rcamirror_epoch(const struct rcamirror *m);
uint64_t rcamirror_xmin(const struct rcamirror *m);
void rcamirror_set_xmin(struct rcamirror *m, uint64_t xmin);
void rcamirror_reset(struct rcamirror *m, int64_t epoch);

/* Replaces the rows of (service, day) by rows[0, n) (n 0: none left), and forgets that
 * day's incidents. 0, -EINVAL (an unknown dimension) or -ENOMEM. */
int rcamirror_set_day(struct rcamirror *m, const char *service, int32_t day,
                      const struct rca_row *rows, size_t n) __attribute__((warn_unused_result));

/* As cube_detail_token()/cube_set_detail(): the incidents opened on day (every service),
 * kept only if no row of that day was set in between. 0, -EINVAL or -ENOMEM. */
uint64_t rcamirror_detail_token(const struct rcamirror *m, int32_t day);
int rcamirror_set_detail(struct rcamirror *m, int32_t day, uint64_t token,
                         const struct rca_fact *f, size_t n) __attribute__((warn_unused_result));

/* The sums of dl_rca_fast(service, from, to) into *ret, a copy that needs nothing of m, so
 * that the caller can build the JSON after unlocking it. 0; -ENOENT with *ret_missing_day
 * when an edge day's incidents are needed first; or -ENOMEM. */
struct rca_sums;
int rcamirror_sums(struct rcamirror *m, const char *service, int64_t from_us, int64_t to_us,
                   struct rca_sums **ret, int32_t *ret_missing_day)
        __attribute__((warn_unused_result));

/* The members of dl_rca_fast's object of s ("incidents":..,"incidents_with_factors":..,
 * "dimensions":[..]) as JSON text, without the braces, appended to b. 0, -E2BIG or -ENOMEM.
 * Thread-safe. */
struct buf;
int rca_sums_text(const struct rca_sums *s, struct buf *b) __attribute__((warn_unused_result));

/* NULL-safe. */
void rca_sums_free(struct rca_sums *s);

/* rcamirror_sums() and rca_sums_text() in one, parsed: dl_rca_fast(service, from, to) into
 * *ret (a new object), for the tests. */
int rcamirror_json(struct rcamirror *m, const char *service, int64_t from_us, int64_t to_us,
                   json_t **ret, int32_t *ret_missing_day) __attribute__((warn_unused_result));
