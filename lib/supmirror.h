/* supmirror: an in-memory mirror of the observations (support load), one compact record
 * per (source, key), answering GET /api/v1/support's figures without the database: one
 * pass over the records, no sort (the median is a weighted selection, the distinct
 * customers a stamp per interned customer). Pure C, no I/O, no clock; not thread-safe: the
 * caller serializes every call on one mirror (daemon/mirror.c holds it under its lock). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SUPMIRROR_OPEN INT64_MIN        /* resolved_us of an open observation */

/* One stored state of an observation (a row of observations); borrowed for the call. */
struct sup_obs {
        const char *source, *key, *kind, *service;
        const char *feature, *customer;         /* NULL: none */
        int64_t count, occurred_us, resolved_us;
        bool linked;                            /* links at least one incident */
        bool deleted;
};

struct sup_query {
        const char *service, *feature;          /* NULL: all */
        int64_t from_us, to_us;
};

struct sup_feature {
        const char *feature;                    /* the mirror's, valid until its next call */
        int64_t opened, customers;
};

/* The figures of dl_support_figures and dl_support_features (sql/functions/61_support.sql
 * defines them; docs/metrics.md, "Support load"). */
struct sup_figures {
        int64_t opened, resolved, open_now, customers, linked;
        int64_t kinds[4];                       /* support, feedback, usage, ux */
        double median_seconds;                  /* NAN when none was resolved */
        const struct sup_feature *features;     /* most opened first, then by name */
        size_t n_features;
};

struct supmirror *supmirror_new(void);
struct supmirror *supmirror_free(struct supmirror *m);

/* Where the mirror stands: the observations' epoch (bumped by a TRUNCATE) and the snapshot
 * xmin up to which it holds every committed row. epoch 0: never loaded. */
int64_t supmirror_epoch(const struct supmirror *m);
uint64_t supmirror_xmin(const struct supmirror *m);
void supmirror_set_xmin(struct supmirror *m, uint64_t xmin);

/* Forgets every record and starts the given epoch. */
void supmirror_reset(struct supmirror *m, int64_t epoch);

/* Stores o as the state of (source, key), replacing what it held. 0, -EINVAL for an
 * unknown kind, or -ENOMEM. */
int supmirror_apply(struct supmirror *m, const struct sup_obs *o)
        __attribute__((warn_unused_result));

/* How many records it holds (deleted ones included). */
size_t supmirror_size(const struct supmirror *m);

/* The figures of q into *ret. 0 or -ENOMEM. */
int supmirror_figures(struct supmirror *m, const struct sup_query *q, struct sup_figures *ret)
        __attribute__((warn_unused_result));
