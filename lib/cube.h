/* cube: an in-memory mirror of the daily rollups (dl_rollups) and of the events of a few
 * edge days, answering "what are the sums over [from, to) for these services and
 * environments" in O(days in the window), exactly at the edges: whole UTC days come from
 * the rollups, the partial days at either end from their events. Pure C, no I/O, no clock;
 * not thread-safe: the caller serializes every call on one cube. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "metrics.h"

#define CUBE_DAY_US INT64_C(86400000000)

/* The histograms of a rollup row, in this order: {bucket, count, ...} each. */
enum { CUBE_LEAD, CUBE_RESTORE, CUBE_RECOVERY, CUBE_APPROVAL, CUBE_HISTS };

/* One dl_rollups row; borrowed for the call. */
struct cube_row {
        const char *service, *environment;
        int32_t day;                    /* days since 1970-01-01 (UTC) */
        int32_t deployments, failed, rework, changes, incidents, recovered;
        int32_t control[_METRICS_CONTROL_MAX], emergency;
        const int32_t *hist[CUBE_HISTS];
        size_t n_hist[CUBE_HISTS];      /* integers in each */
        int64_t rev;
};

/* One event of an edge day (a row of dl_events); borrowed for the call. */
struct cube_event_in {
        const char *service, *environment;
        char kind;                      /* 'd' deployment, 'c' shipped change, 'i' incident,
                                         * 'a' an approved deployment's approval latency */
        bool failed, rework, emergency;
        enum metrics_control control;   /* of a 'd' */
        double seconds;                 /* NAN when it has none */
        int64_t at_us;
};

struct cube_query {
        const char *service;            /* NULL: every service */
        const char *const *envs;
        size_t n_envs;
        bool unlinked;                  /* count incidents linked to no deployment (env "") */
        int64_t from_us, to_us;         /* [from, to), to > from */
        bool cache;                     /* keep the whole-day sum for the next such query */
};

struct cube *cube_new(void);
struct cube *cube_free(struct cube *c);

/* Where the mirror stands: the rollups' epoch and the snapshot xmin up to which it holds
 * every committed row. epoch 0 means never loaded. */
int64_t cube_epoch(const struct cube *c);
uint64_t cube_xmin(const struct cube *c);
void cube_set_xmin(struct cube *c, uint64_t xmin);

/* Forgets everything and starts a new epoch. */
void cube_reset(struct cube *c, int64_t epoch);

/* Stores a row unless the mirror holds a later revision of it. Returns 0 or -ENOMEM. */
int cube_apply(struct cube *c, const struct cube_row *r) __attribute__((warn_unused_result));

/* A token for loading day's events: take it before reading them from the database, and
 * hand it to cube_set_detail(), which keeps them only if no row of that day was applied
 * in between (they might then be older than the rollups). */
uint64_t cube_detail_token(const struct cube *c, int32_t day);

/* Keeps the events of one day (any order). Returns 0 or -ENOMEM. */
int cube_set_detail(struct cube *c, int32_t day, uint64_t token, const struct cube_event_in *ev,
                    size_t n) __attribute__((warn_unused_result));

/* Sums q into *ret (which it zeroes first). Returns 0; -ENOENT with *ret_missing_day when
 * the events of an edge day are needed first (load them, cube_set_detail(), call again);
 * or -ENOMEM. */
int cube_sum(struct cube *c, const struct cube_query *q, struct metrics_acc *ret,
             int32_t *ret_missing_day) __attribute__((warn_unused_result));

/* Calls fn for each (service, environment) the mirror knows, in no particular order. */
void cube_series(const struct cube *c, void (*fn)(void *ctx, const char *service,
                                                  const char *environment), void *ctx);
