/* mirror: the in-memory mirror of the daily rollups (lib/cube.c), an object of the API
 * context: kept up to date with the database, summed under its lock. */
#include "mirror.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/cube.h"
#include "../lib/error.h"
#include "../lib/store.h"
#include "../lib/rcamirror.h"
#include "../lib/store_dora.h"
#include "../lib/store_rca.h"
#include "../lib/store_support.h"
#include "../lib/supmirror.h"
#include "dbpool.h"
#include "stats.h"

#define DAY_US CUBE_DAY_US

/* Every use of the cube holds `lock`. A sync reads the rollup rows written since the
 * mirror's last snapshot (one small query) without holding `lock`, then applies them under
 * it, so readers never wait on the database for it. Before answering, a request waits for a
 * sync whenever this process stored a delivery since the last one began, so an answer always
 * includes every delivery this instance acknowledged before the request, and likewise once
 * daemon/notify.c heard another daemon's NOTIFY; otherwise a sync starts at most every
 * poll_ns (mirror_poll_ms), in the background of the readers, which bounds how late rows
 * written by other instances show when no notification comes (a lost listener, a pooler,
 * rows written by hand). Under a steady read load that is a query per poll, not one per
 * request. */

struct mirror {
        struct dbpool *pool;                    /* borrowed */
        uint64_t poll_ns;
        pthread_mutex_t lock;
        pthread_mutex_t sync_lock;              /* one sync at a time */
        struct cube *cube;                      /* under lock; made by the first sync */
        struct supmirror *obs;                  /* likewise: the observations */
        struct rcamirror *rca;                  /* and rca_daily */
        atomic_uint_fast64_t changes;           /* bumped by mirror_data_changed() */
        atomic_uint_fast64_t synced_changes;    /* `changes` when the last good sync began */
        atomic_uint_fast64_t synced_at_ns;      /* when it began */
        atomic_uint_fast64_t syncs;
};

struct mirror *mirror_new(struct dbpool *pool, long poll_ms) {
        struct mirror *m = calloc(1, sizeof(*m));

        if (!m)
                return NULL;
        m->pool = pool;
        m->poll_ns = (uint64_t) poll_ms * 1000000u;
        pthread_mutex_init(&m->lock, NULL);
        pthread_mutex_init(&m->sync_lock, NULL);
        return m;
}

struct mirror *mirror_free(struct mirror *m) {
        if (!m)
                return NULL;
        cube_free(m->cube);
        supmirror_free(m->obs);
        rcamirror_free(m->rca);
        pthread_mutex_destroy(&m->lock);
        pthread_mutex_destroy(&m->sync_lock);
        free(m);
        return NULL;
}

void mirror_series(struct mirror_session *s,
                   void (*fn)(void *ctx, const char *service, const char *environment),
                   void *ctx) {
        cube_series(s->mirror->cube, fn, ctx);
}
/* Rows read by a sync, kept until they are applied under the lock. */
struct pending {
        int64_t reset_epoch;    /* 0: no reset */
        struct cube_row *rows;
        size_t n, cap;
};

static void pending_free(struct pending *p) {
        for (size_t i = 0; i < p->n; i++) {
                free((char *) p->rows[i].service);
                free((char *) p->rows[i].environment);
                for (int h = 0; h < CUBE_HISTS; h++)
                        free((int32_t *) p->rows[i].hist[h]);
        }
        free(p->rows);
        *p = (struct pending) { .n = 0 };
}

static void sink_reset(void *ctx, int64_t epoch) {
        struct pending *p = ctx;

        pending_free(p);
        p->reset_epoch = epoch;
}

static int sink_row(void *ctx, const struct cube_row *r) {
        struct pending *p = ctx;
        struct cube_row c = *r;
        bool ok = true;

        if (p->n == p->cap) {
                size_t cap = p->cap ? 2 * p->cap : 64;
                struct cube_row *n = realloc(p->rows, cap * sizeof(*n));

                if (!n)
                        return -ENOMEM;
                p->rows = n;
                p->cap = cap;
        }
        c.service = strdup(r->service);
        c.environment = strdup(r->environment);
        ok = c.service && c.environment;
        for (int h = 0; h < CUBE_HISTS; h++) {
                int32_t *copy = r->n_hist[h] ? malloc(r->n_hist[h] * sizeof(*copy)) : NULL;

                if (r->n_hist[h] && !copy)
                        ok = false;
                else if (copy)
                        memcpy(copy, r->hist[h], r->n_hist[h] * sizeof(*copy));
                c.hist[h] = copy;
        }
        p->rows[p->n++] = c;
        return ok ? 0 : -ENOMEM;
}

/* Observations read by a sync, likewise. */
struct pending_obs {
        int64_t reset_epoch;    /* 0: no reset */
        struct sup_obs *obs;
        size_t n, cap;
};

static void pending_obs_free(struct pending_obs *p) {
        for (size_t i = 0; i < p->n; i++) {
                free((char *) p->obs[i].source), free((char *) p->obs[i].key);
                free((char *) p->obs[i].kind), free((char *) p->obs[i].service);
                free((char *) p->obs[i].feature), free((char *) p->obs[i].customer);
        }
        free(p->obs);
        *p = (struct pending_obs) { .n = 0 };
}

static void obs_reset(void *ctx, int64_t epoch) {
        struct pending_obs *p = ctx;

        pending_obs_free(p);
        p->reset_epoch = epoch;
}

static char *dup_or_null(const char *s, bool *ok) {
        char *d = s ? strdup(s) : NULL;

        if (s && !d)
                *ok = false;
        return d;
}

static int obs_row(void *ctx, const struct sup_obs *o) {
        struct pending_obs *p = ctx;
        struct sup_obs c = *o;
        bool ok = true;

        if (p->n == p->cap) {
                size_t cap = p->cap ? 2 * p->cap : 64;
                struct sup_obs *n = realloc(p->obs, cap * sizeof(*n));

                if (!n)
                        return -ENOMEM;
                p->obs = n;
                p->cap = cap;
        }
        c.source = dup_or_null(o->source, &ok), c.key = dup_or_null(o->key, &ok);
        c.kind = dup_or_null(o->kind, &ok), c.service = dup_or_null(o->service, &ok);
        c.feature = dup_or_null(o->feature, &ok), c.customer = dup_or_null(o->customer, &ok);
        p->obs[p->n++] = c;
        return ok ? 0 : -ENOMEM;
}

/* rca_daily days read by a sync, likewise. */
struct pending_day {
        char *service;
        int32_t day;
        struct rca_row *rows;
        size_t n;
};

struct pending_rca {
        int64_t reset_epoch;
        struct pending_day *days;
        size_t n, cap;
};

static void pending_rca_free(struct pending_rca *p) {
        for (size_t i = 0; i < p->n; i++) {
                for (size_t j = 0; j < p->days[i].n; j++) {
                        free((char *) p->days[i].rows[j].dimension);
                        free((char *) p->days[i].rows[j].category);
                }
                free(p->days[i].rows);
                free(p->days[i].service);
        }
        free(p->days);
        *p = (struct pending_rca) { .n = 0 };
}

static void rca_reset(void *ctx, int64_t epoch) {
        struct pending_rca *p = ctx;

        pending_rca_free(p);
        p->reset_epoch = epoch;
}

static int rca_day(void *ctx, const char *service, int32_t day, const struct rca_row *rows,
                   size_t n) {
        struct pending_rca *p = ctx;
        struct pending_day *d;
        bool ok = true;

        if (p->n == p->cap) {
                size_t cap = p->cap ? 2 * p->cap : 64;
                struct pending_day *nd = realloc(p->days, cap * sizeof(*nd));

                if (!nd)
                        return -ENOMEM;
                p->days = nd;
                p->cap = cap;
        }
        d = &p->days[p->n++];
        *d = (struct pending_day) { .service = dup_or_null(service, &ok), .day = day,
                                    .rows = n ? calloc(n, sizeof(*d->rows)) : NULL };
        if (n && !d->rows)
                return -ENOMEM;
        d->n = n;
        for (size_t i = 0; i < n; i++) {
                d->rows[i] = rows[i];
                d->rows[i].dimension = dup_or_null(rows[i].dimension, &ok);
                d->rows[i].category = dup_or_null(rows[i].category, &ok);
        }
        return ok ? 0 : -ENOMEM;
}

void mirror_data_changed(struct mirror *m) {
        atomic_fetch_add(&m->changes, 1);
}

uint64_t mirror_syncs(struct mirror *m) {
        return atomic_load(&m->syncs);
}

/* Runs fn on the session's connection; a dead pooled connection gets one fresh retry. */
static int with_conn(struct mirror_session *s, int (*fn)(struct mirror_session *s, void *ctx),
                     void *ctx) {
        for (int attempt = 0; attempt < 2; attempt++) {
                int r;

                if (!s->store) {
                        r = dbpool_acquire(s->mirror->pool, &s->store, &s->err);
                        if (r < 0)
                                return r;
                }
                r = fn(s, ctx);
                if (r != -EIO || store_connected(s->store))
                        return r;
                dbpool_release(s->mirror->pool, s->store);
                s->store = NULL;
        }
        return -EIO;
}

struct sync_read {
        int64_t epoch, obs_epoch, rca_epoch;
        uint64_t xmin, ret_xmin, obs_xmin, ret_obs_xmin, rca_xmin, ret_rca_xmin;
        struct pending rows;
        struct pending_obs obs;
        struct pending_rca rca;
};

static int read_rollups(struct mirror_session *s, void *ctx) {
        struct sync_read *sr = ctx;
        const struct store_rollup_sink sink = { .ctx = &sr->rows, .reset = sink_reset,
                                                .row = sink_row };

        const struct store_obs_sink obs = { .ctx = &sr->obs, .reset = obs_reset,
                                            .row = obs_row };
        int r;

        pending_free(&sr->rows);
        sr->rows.reset_epoch = 0;
        const struct store_rca_sink rca = { .ctx = &sr->rca, .reset = rca_reset,
                                            .day = rca_day };

        pending_obs_free(&sr->obs);
        sr->obs.reset_epoch = 0;
        pending_rca_free(&sr->rca);
        sr->rca.reset_epoch = 0;
        r = store_dora_rollups(s->store, sr->epoch, sr->xmin, &sink, &sr->ret_xmin, &s->err);
        if (r == 0)
                r = store_support_since(s->store, sr->obs_epoch, sr->obs_xmin, &obs,
                                        &sr->ret_obs_xmin, &s->err);
        if (r == 0)
                r = store_rca_since(s->store, sr->rca_epoch, sr->rca_xmin, &rca,
                                    &sr->ret_rca_xmin, &s->err);
        return r;
}

/* One sync; the caller holds sync_lock (and not lock). Returns 0 or a negative errno. */
static int sync_mirror(struct mirror_session *s) {
        struct mirror *m = s->mirror;
        uint64_t began = stats_now_ns(), seen = atomic_load(&m->changes);
        struct sync_read sr = { .epoch = 0 };
        int r = 0;

        pthread_mutex_lock(&m->lock); /* only syncs change these, and we are the one */
        if (!m->cube)
                m->cube = cube_new();
        if (!m->obs)
                m->obs = supmirror_new();
        if (!m->rca)
                m->rca = rcamirror_new();
        if (m->cube && m->obs && m->rca) {
                sr.rca_epoch = rcamirror_epoch(m->rca);
                sr.rca_xmin = rcamirror_xmin(m->rca);
                sr.epoch = cube_epoch(m->cube);
                sr.xmin = cube_xmin(m->cube);
                sr.obs_epoch = supmirror_epoch(m->obs);
                sr.obs_xmin = supmirror_xmin(m->obs);
        }
        pthread_mutex_unlock(&m->lock);
        if (!m->cube || !m->obs || !m->rca)
                return error_set(&s->err, ENOMEM, "unavailable", NULL, "Out of memory");
        r = with_conn(s, read_rollups, &sr);
        if (r == 0) {
                pthread_mutex_lock(&m->lock);
                if (sr.rows.reset_epoch)
                        cube_reset(m->cube, sr.rows.reset_epoch);
                for (size_t i = 0; i < sr.rows.n && r == 0; i++)
                        r = cube_apply(m->cube, &sr.rows.rows[i]);
                if (r == 0)
                        cube_set_xmin(m->cube, sr.ret_xmin);
                else /* a partial apply: start over from scratch next time */
                        cube_reset(m->cube, 0);
                if (r == 0 && sr.obs.reset_epoch)
                        supmirror_reset(m->obs, sr.obs.reset_epoch);
                for (size_t i = 0; i < sr.obs.n && r == 0; i++)
                        r = supmirror_apply(m->obs, &sr.obs.obs[i]);
                if (r == 0)
                        supmirror_set_xmin(m->obs, sr.ret_obs_xmin);
                else if (r == -EINVAL || r == -ENOMEM)
                        supmirror_reset(m->obs, 0), r = -ENOMEM;
                if (r == 0 && sr.rca.reset_epoch)
                        rcamirror_reset(m->rca, sr.rca.reset_epoch);
                for (size_t i = 0; i < sr.rca.n && r == 0; i++)
                        r = rcamirror_set_day(m->rca, sr.rca.days[i].service, sr.rca.days[i].day,
                                              sr.rca.days[i].rows, sr.rca.days[i].n);
                if (r == 0)
                        rcamirror_set_xmin(m->rca, sr.ret_rca_xmin);
                else if (r == -EINVAL || r == -ENOMEM)
                        rcamirror_reset(m->rca, 0), r = -ENOMEM;
                pthread_mutex_unlock(&m->lock);
                if (r < 0)
                        r = error_set(&s->err, ENOMEM, "unavailable", NULL, "Out of memory");
        }
        pending_free(&sr.rows);
        pending_obs_free(&sr.obs);
        pending_rca_free(&sr.rca);
        dbpool_release(s->mirror->pool, s->store);
        s->store = NULL;
        if (r == 0) {
                atomic_store(&m->synced_changes, seen);
                atomic_store(&m->synced_at_ns, began);
                atomic_fetch_add(&m->syncs, 1);
        }
        return r;
}

int mirror_begin(struct mirror_session *s, struct mirror *m) {
        uint64_t now = stats_now_ns();
        int r = 0;

        *s = (struct mirror_session) { .mirror = m };
        if (atomic_load(&m->changes) != atomic_load(&m->synced_changes) ||
            atomic_load(&m->synced_at_ns) == 0) {
                uint64_t want = atomic_load(&m->changes);

                pthread_mutex_lock(&m->sync_lock);
                /* Another request may have synced meanwhile, having begun after our change. */
                if (atomic_load(&m->synced_changes) < want || atomic_load(&m->synced_at_ns) == 0)
                        r = sync_mirror(s);
                pthread_mutex_unlock(&m->sync_lock);
        } else if (now - atomic_load(&m->synced_at_ns) >= m->poll_ns &&
                   pthread_mutex_trylock(&m->sync_lock) == 0) {
                r = sync_mirror(s); /* the others read the mirror as it is meanwhile */
                pthread_mutex_unlock(&m->sync_lock);
        }
        if (r < 0)
                return r;
        pthread_mutex_lock(&m->lock);
        if (!cube_epoch(m->cube) || !supmirror_epoch(m->obs) || !rcamirror_epoch(m->rca)) { /* a failed apply reset it: not something to answer from */
                pthread_mutex_unlock(&m->lock);
                return error_set(&s->err, EIO, "unavailable", NULL, "The rollups are not loaded");
        }
        return 0;
}

void mirror_end(struct mirror_session *s) {
        struct mirror *m = s->mirror;

        dbpool_release(s->mirror->pool, s->store);
        s->store = NULL;
        pthread_mutex_unlock(&m->lock);
}

struct day_events {
        struct cube_event_in *ev;
        size_t n, cap;
};

static int collect_event(void *ctx, const struct cube_event_in *e) {
        struct day_events *d = ctx;
        struct cube_event_in c = *e;

        if (d->n == d->cap) {
                size_t cap = d->cap ? 2 * d->cap : 256;
                struct cube_event_in *n = realloc(d->ev, cap * sizeof(*n));

                if (!n)
                        return -ENOMEM;
                d->ev = n;
                d->cap = cap;
        }
        c.service = strdup(e->service);
        c.environment = strdup(e->environment);
        d->ev[d->n++] = c;
        return c.service && c.environment ? 0 : -ENOMEM;
}

static void day_events_free(struct day_events *d) {
        for (size_t i = 0; i < d->n; i++) {
                free((char *) d->ev[i].service);
                free((char *) d->ev[i].environment);
        }
        free(d->ev);
        *d = (struct day_events) { .n = 0 };
}

struct load_day {
        int32_t day;
        struct day_events events;
};

static int load_day(struct mirror_session *s, void *ctx) {
        struct load_day *l = ctx;
        int r;

        day_events_free(&l->events);
        r = store_dora_events(s->store, (int64_t) l->day * DAY_US, (int64_t) (l->day + 1) * DAY_US,
                              collect_event, &l->events, &s->err);
        return r < 0 ? r : 0;
}

int mirror_sum(struct mirror_session *s, const struct cube_query *q, struct metrics_acc *acc) {
        struct mirror *m = s->mirror;

        for (int attempt = 0; attempt < 4; attempt++) {
                struct load_day l = { .day = 0 };
                uint64_t token;
                int r = cube_sum(m->cube, q, acc, &l.day);

                if (r != -ENOENT)
                        return r == -ENOMEM ? error_set(&s->err, ENOMEM, "unavailable", NULL,
                                                        "Out of memory") : r;
                token = cube_detail_token(m->cube, l.day);
                r = with_conn(s, load_day, &l);
                if (r == 0)
                        r = cube_set_detail(m->cube, l.day, token, l.events.ev, l.events.n);
                day_events_free(&l.events);
                if (r < 0)
                        return r == -ENOMEM ? error_set(&s->err, ENOMEM, "unavailable", NULL,
                                                        "Out of memory") : r;
        }
        return error_set(&s->err, EIO, "unavailable", NULL, "Edge days keep changing");
}

int mirror_support(struct mirror_session *s, const struct sup_query *q, struct sup_figures *ret) {
        int r = supmirror_figures(s->mirror->obs, q, ret);

        return r < 0 ? error_set(&s->err, ENOMEM, "unavailable", NULL, "Out of memory") : 0;
}

/* An edge day's incidents, copied until they are handed to the mirror. */
struct rca_facts {
        int32_t day;
        struct rca_fact *f;
        size_t n, cap;
};

static void rca_facts_free(struct rca_facts *l) {
        for (size_t i = 0; i < l->n; i++) {
                free((char *) l->f[i].service), free((char *) l->f[i].dimension);
                free((char *) l->f[i].category), free((char *) l->f[i].role);
        }
        free(l->f);
        l->f = NULL;
        l->n = l->cap = 0;
}

static int collect_fact(void *ctx, const struct rca_fact *f) {
        struct rca_facts *l = ctx;
        struct rca_fact c = *f;
        bool ok = true;

        if (l->n == l->cap) {
                size_t cap = l->cap ? 2 * l->cap : 256;
                struct rca_fact *n = realloc(l->f, cap * sizeof(*n));

                if (!n)
                        return -ENOMEM;
                l->f = n;
                l->cap = cap;
        }
        c.service = dup_or_null(f->service, &ok), c.dimension = dup_or_null(f->dimension, &ok);
        c.category = dup_or_null(f->category, &ok), c.role = dup_or_null(f->role, &ok);
        l->f[l->n++] = c;
        return ok ? 0 : -ENOMEM;
}

static int load_rca_day(struct mirror_session *s, void *ctx) {
        struct rca_facts *l = ctx;

        rca_facts_free(l);
        return store_rca_day_facts(s->store, l->day, collect_fact, l, &s->err);
}

int mirror_rca(struct mirror_session *s, const char *service, int64_t from_us, int64_t to_us,
               struct rca_sums **ret) {
        struct mirror *m = s->mirror;

        for (int attempt = 0; attempt < 6; attempt++) {
                struct rca_facts l = { .day = 0 };
                uint64_t token;
                int r = rcamirror_sums(m->rca, service, from_us, to_us, ret, &l.day);

                if (r != -ENOENT)
                        return r == -ENOMEM ? error_set(&s->err, ENOMEM, "unavailable", NULL,
                                                        "Out of memory") : r;
                token = rcamirror_detail_token(m->rca, l.day);
                r = with_conn(s, load_rca_day, &l);
                if (r == 0)
                        r = rcamirror_set_detail(m->rca, l.day, token, l.f, l.n);
                rca_facts_free(&l);
                if (r < 0)
                        return r == -ENOMEM || r == -EINVAL
                               ? error_set(&s->err, ENOMEM, "unavailable", NULL,
                                           "Out of memory") : r;
        }
        return error_set(&s->err, EIO, "unavailable", NULL, "Edge days keep changing");
}
