/* mirror: the in-memory mirror of the daily rollups (lib/cube.c) that the DORA figures and
 * /metrics are summed from, brought up to date with one small query per request burst, so
 * a figure costs O(days in the window) and never scans events but those of its two edge
 * days. One per API context (struct api owns it); no state outside it. */
#pragma once

#include <stdint.h>

#include "../lib/error.h"

struct cube_query;
struct dbpool;
struct metrics_acc;
struct mirror;
struct store;
struct sup_figures;
struct sup_query;

/* A use of the mirror: locked from mirror_begin() to mirror_end(). */
struct mirror_session {
        struct mirror *mirror;
        struct store *store;    /* pooled, acquired when an edge day must be read */
        struct error err;       /* why a call failed */
};

/* An empty mirror reading through pool (borrowed; it must outlive the mirror), looking for
 * rows others wrote every poll_ms at most. NULL on OOM. */
struct mirror *mirror_new(struct dbpool *pool, long poll_ms);

/* NULL-safe; returns NULL. No session may be open. */
struct mirror *mirror_free(struct mirror *m);

/* Tells the mirror that this process committed a delivery (call it after COMMIT, before
 * acknowledging), or that another daemon did (a NOTIFY), so the next session reads the
 * rollups again. Lock-free, thread-safe. */
void mirror_data_changed(struct mirror *m);

/* How many syncs have read the rollups (for /metrics). Lock-free. */
uint64_t mirror_syncs(struct mirror *m);

/* Brings m up to date as mirror.c says, then locks it. Returns 0 (locked: call
 * mirror_end()) or a negative errno (unlocked) with s->err filled. Thread-safe. */
int mirror_begin(struct mirror_session *s, struct mirror *m)
        __attribute__((warn_unused_result));

/* Unlocks and gives back the session's connection. */
void mirror_end(struct mirror_session *s);

/* Sums q into acc, reading edge days from the database as needed. 0 or a negative errno
 * with s->err filled. */
int mirror_sum(struct mirror_session *s, const struct cube_query *q, struct metrics_acc *acc)
        __attribute__((warn_unused_result));

/* Calls fn for every (service, environment) the mirror holds. */
void mirror_series(struct mirror_session *s,
                   void (*fn)(void *ctx, const char *service, const char *environment),
                   void *ctx);

/* The support figures of q (lib/supmirror.h), from the mirror of the observations; what
 * *ret points to is the mirror's until mirror_end(). 0 or a negative errno with s->err. */
int mirror_support(struct mirror_session *s, const struct sup_query *q, struct sup_figures *ret)
        __attribute__((warn_unused_result));

/* The sums of dl_rca_fast(service, from, to) (lib/rcamirror.h) into *ret, the caller's to
 * free with rca_sums_free(), reading edge days from the database as needed. Their JSON is
 * built after mirror_end(), so that readers do not queue on it. 0 or a negative errno with
 * s->err. */
struct rca_sums;
int mirror_rca(struct mirror_session *s, const char *service, int64_t from_us, int64_t to_us,
               struct rca_sums **ret) __attribute__((warn_unused_result));
