/* supmirror: observations in memory, summed per request (supmirror.h). */
#include "supmirror.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const kinds[4] = { "support", "feedback", "usage", "ux" };

/* Strings by id and ids by string (open addressing, power-of-two slots of id + 1). */
struct intern {
        char **names;
        size_t n, cap;
        int32_t *slots;
        size_t n_slots;
};

#define DAY_US INT64_C(86400000000)
#define N_CACHE 8

/* One observation, its strings interned; -1 is none. pos: where it is in its days' lists. */
struct rec {
        int64_t count, occurred_us, resolved_us;
        int32_t service, feature, customer;
        uint32_t occ_pos, res_pos;
        uint8_t kind;
        bool linked, deleted;
};

/* The records (by id) that occurred, or were resolved, on one UTC day. */
struct bucket {
        int32_t *ids;
        uint32_t n, cap;
};

struct weighted {
        int64_t us, w;
};

/* The figures of one scope's whole days [d0, d1) (none when d0 >= d1), and what open_now
 * needs of every day before d1: kept until a record of a day before d1 changes, so that a
 * request only reads its edge days' records. */
struct cache {
        bool valid;
        int32_t svc, feat;              /* -1: any */
        int32_t d0, d1;
        int64_t opened, resolved, linked, kinds[4], before;  /* before: open at d1 */
        int32_t *custs;                 /* sorted customer ids */
        size_t n_custs;
        struct weighted *vals;          /* sorted resolution times, weights summed in cum */
        int64_t *cum;
        size_t n_vals;
        size_t n_feat;                  /* the features when made */
        int64_t *feat_opened;
        bool *feat_present;
        uint64_t *pairs;                /* sorted feature << 32 | customer */
        size_t n_pairs;
        size_t *pair_start;             /* per feature, into pairs; n_feat + 1 */
};

struct supmirror {
        int64_t epoch;
        uint64_t xmin;
        struct intern services, features, customers, keys;     /* keys: source "\n" key */
        struct rec *recs;               /* by the key's id */
        size_t n_recs, cap_recs;
        int32_t base;                   /* occ[i] and res[i] are day base + i */
        size_t n_days;
        struct bucket *occ, *res;
        struct cache cache[N_CACHE];
        size_t next_cache;
        /* scratch of supmirror_figures() */
        uint32_t *stamp;                /* per customer */
        size_t n_stamp;
        uint32_t gen;
        struct weighted *edge;
        size_t cap_edge;
        uint64_t *edge_pairs;
        size_t cap_edge_pairs;
        int64_t *feat_opened;
        bool *feat_present;
        int32_t *feat_slot;             /* a feature's place in out */
        struct sup_feature *out;
        size_t cap_feat;
};

static uint64_t hash(const char *s, size_t n) {
        uint64_t h = 1469598103934665603u;

        for (size_t i = 0; i < n; i++)
                h = (h ^ (unsigned char) s[i]) * 1099511628211u;
        return h;
}

static void intern_free(struct intern *t) {
        for (size_t i = 0; i < t->n; i++)
                free(t->names[i]);
        free(t->names);
        free(t->slots);
        *t = (struct intern) { .n = 0 };
}

/* The slot where s is, or the empty one where it would go. */
static size_t intern_slot(const struct intern *t, const char *s, size_t len) {
        size_t mask = t->n_slots - 1, i = hash(s, len) & mask;

        while (t->slots[i] && (strlen(t->names[t->slots[i] - 1]) != len ||
                               memcmp(t->names[t->slots[i] - 1], s, len) != 0))
                i = (i + 1) & mask;
        return i;
}

static int32_t intern_find(const struct intern *t, const char *s) {
        if (!s || !t->n_slots)
                return -1;
        return t->slots[intern_slot(t, s, strlen(s))] - 1;
}

static int intern_grow(struct intern *t) {
        size_t n_slots = t->n_slots ? 2 * t->n_slots : 64;
        int32_t *slots = calloc(n_slots, sizeof(*slots));

        if (!slots)
                return -ENOMEM;
        free(t->slots);
        t->slots = slots;
        t->n_slots = n_slots;
        for (size_t id = 0; id < t->n; id++)
                t->slots[intern_slot(t, t->names[id], strlen(t->names[id]))] = (int32_t) id + 1;
        return 0;
}

/* The id of s (len bytes), added when new; -ENOMEM. *ret_new tells whether it was. */
static int32_t intern_add(struct intern *t, const char *s, size_t len, bool *ret_new) {
        size_t i;

        *ret_new = false;
        if ((t->n + 1) * 2 > t->n_slots && intern_grow(t) < 0)
                return -ENOMEM;
        i = intern_slot(t, s, len);
        if (t->slots[i])
                return t->slots[i] - 1;
        if (t->n == t->cap) {
                size_t cap = t->cap ? 2 * t->cap : 64;
                char **names = realloc(t->names, cap * sizeof(*names));

                if (!names)
                        return -ENOMEM;
                t->names = names;
                t->cap = cap;
        }
        t->names[t->n] = malloc(len + 1);
        if (!t->names[t->n])
                return -ENOMEM;
        memcpy(t->names[t->n], s, len);
        t->names[t->n][len] = '\0';
        t->slots[i] = (int32_t) ++t->n;
        *ret_new = true;
        return (int32_t) t->n - 1;
}

static int32_t intern_str(struct intern *t, const char *s) {
        bool fresh;

        return s ? intern_add(t, s, strlen(s), &fresh) : -1;
}

static int grow(void **p, size_t *cap, size_t need, size_t size) {
        void *n;

        if (need <= *cap)
                return 0;
        if (need < 2 * *cap)
                need = 2 * *cap;
        n = realloc(*p, need * size);
        if (!n)
                return -ENOMEM;
        *p = n;
        *cap = need;
        return 0;
}


static int32_t day_of(int64_t us) {
        return (int32_t) (us / DAY_US - (us % DAY_US < 0));
}

static void cache_free(struct cache *c) {
        free(c->custs), free(c->vals), free(c->cum), free(c->feat_opened);
        free(c->feat_present), free(c->pairs), free(c->pair_start);
        *c = (struct cache) { .valid = false };
}

struct supmirror *supmirror_new(void) {
        return calloc(1, sizeof(struct supmirror));
}

void supmirror_reset(struct supmirror *m, int64_t epoch) {
        intern_free(&m->services), intern_free(&m->features), intern_free(&m->customers);
        intern_free(&m->keys);
        free(m->recs);
        for (size_t i = 0; i < m->n_days; i++)
                free(m->occ[i].ids), free(m->res[i].ids);
        free(m->occ), free(m->res);
        for (size_t i = 0; i < N_CACHE; i++)
                cache_free(&m->cache[i]);
        free(m->stamp), free(m->edge), free(m->edge_pairs), free(m->feat_opened);
        free(m->feat_present), free(m->out), free(m->feat_slot);
        *m = (struct supmirror) { .epoch = epoch };
}

struct supmirror *supmirror_free(struct supmirror *m) {
        if (m) {
                supmirror_reset(m, 0);
                free(m);
        }
        return NULL;
}

int64_t supmirror_epoch(const struct supmirror *m) {
        return m->epoch;
}

uint64_t supmirror_xmin(const struct supmirror *m) {
        return m->xmin;
}

void supmirror_set_xmin(struct supmirror *m, uint64_t xmin) {
        m->xmin = xmin;
}

size_t supmirror_size(const struct supmirror *m) {
        return m->n_recs;
}

/* The days arrays grown to hold day. */
static int cover_day(struct supmirror *m, int32_t day) {
        size_t lo = 0, hi = 0, n;
        struct bucket *occ, *res;

        if (m->n_days && day >= m->base && (size_t) (day - m->base) < m->n_days)
                return 0;
        if (!m->n_days)
                m->base = day;
        if (day < m->base)
                lo = (size_t) (m->base - day) + 64;     /* room for more on that side */
        else if ((size_t) (day - m->base) >= m->n_days)
                hi = (size_t) (day - m->base) + 1 - m->n_days + 64;
        n = m->n_days + lo + hi;
        occ = calloc(n, sizeof(*occ));
        res = calloc(n, sizeof(*res));
        if (!occ || !res) {
                free(occ), free(res);
                return -ENOMEM;
        }
        if (m->n_days) {
                memcpy(occ + lo, m->occ, m->n_days * sizeof(*occ));
                memcpy(res + lo, m->res, m->n_days * sizeof(*res));
        }
        free(m->occ), free(m->res);
        m->occ = occ, m->res = res;
        m->base -= (int32_t) lo;
        m->n_days = n;
        return 0;
}

static struct bucket *bucket_of(struct bucket *b, const struct supmirror *m, int32_t day) {
        return day >= m->base && (size_t) (day - m->base) < m->n_days ? &b[day - m->base] : NULL;
}

static int bucket_add(struct bucket *b, int32_t id, uint32_t *ret_pos) {
        if (b->n == b->cap) {
                uint32_t cap = b->cap ? 2 * b->cap : 16;
                int32_t *n = realloc(b->ids, cap * sizeof(*n));

                if (!n)
                        return -ENOMEM;
                b->ids = n;
                b->cap = cap;
        }
        *ret_pos = b->n;
        b->ids[b->n++] = id;
        return 0;
}

/* Takes the record at pos out of b, moving the last one into its place. */
static void bucket_remove(struct supmirror *m, struct bucket *b, uint32_t pos, bool res) {
        int32_t last = b->ids[--b->n];

        if (pos < b->n) {
                b->ids[pos] = last;
                if (res)
                        m->recs[last].res_pos = pos;
                else
                        m->recs[last].occ_pos = pos;
        }
}

/* Forgets the whole-day figures that a record of these days may change. */
static void invalidate(struct supmirror *m, const struct rec *r) {
        int32_t day = day_of(r->occurred_us);

        if (r->resolved_us != SUPMIRROR_OPEN && day_of(r->resolved_us) < day)
                day = day_of(r->resolved_us);
        for (size_t i = 0; i < N_CACHE; i++)
                if (m->cache[i].valid && day < m->cache[i].d1)
                        cache_free(&m->cache[i]);
}

static void unindex(struct supmirror *m, int32_t id) {
        const struct rec *r = &m->recs[id];

        if (r->deleted)
                return;
        invalidate(m, r);
        bucket_remove(m, bucket_of(m->occ, m, day_of(r->occurred_us)), r->occ_pos, false);
        if (r->resolved_us != SUPMIRROR_OPEN)
                bucket_remove(m, bucket_of(m->res, m, day_of(r->resolved_us)), r->res_pos,
                              true);
}

/* Files the record under its days; a deleted one under none. On failure it is kept as
 * deleted (in no figure): the caller resets the mirror. */
static int index_rec(struct supmirror *m, int32_t id) {
        struct rec *r = &m->recs[id];
        int32_t od = day_of(r->occurred_us);
        bool resolved = r->resolved_us != SUPMIRROR_OPEN;

        if (r->deleted)
                return 0;
        invalidate(m, r);
        if (cover_day(m, od) < 0 || (resolved && cover_day(m, day_of(r->resolved_us)) < 0) ||
            bucket_add(bucket_of(m->occ, m, od), id, &r->occ_pos) < 0) {
                r->deleted = true;
                return -ENOMEM;
        }
        if (resolved && bucket_add(bucket_of(m->res, m, day_of(r->resolved_us)), id,
                                   &r->res_pos) < 0) {
                bucket_remove(m, bucket_of(m->occ, m, od), r->occ_pos, false);
                r->deleted = true;
                return -ENOMEM;
        }
        return 0;
}

int supmirror_apply(struct supmirror *m, const struct sup_obs *o) {
        size_t ls = strlen(o->source), lk = strlen(o->key);
        char *key = malloc(ls + lk + 2);
        struct rec r = { .count = o->count, .occurred_us = o->occurred_us,
                         .resolved_us = o->resolved_us, .linked = o->linked,
                         .deleted = o->deleted };
        int32_t id, kind = -1;
        bool fresh;

        for (int k = 0; k < 4; k++)
                if (strcmp(o->kind, kinds[k]) == 0)
                        kind = k;
        if (kind < 0) {
                free(key);
                return -EINVAL;
        }
        if (!key)
                return -ENOMEM;
        /* source then key, split by a byte neither holds (sources are names) */
        memcpy(key, o->source, ls);
        key[ls] = '\n';
        memcpy(key + ls + 1, o->key, lk + 1);
        r.kind = (uint8_t) kind;
        r.service = intern_str(&m->services, o->service);
        r.feature = intern_str(&m->features, o->feature);
        /* an empty customer counts as none, as in dl_support_customers */
        r.customer = o->customer && *o->customer ? intern_str(&m->customers, o->customer) : -1;
        if (r.service < 0 || (o->feature && r.feature < 0) ||
            (o->customer && *o->customer && r.customer < 0) ||
            grow((void **) &m->recs, &m->cap_recs, m->keys.n + 1, sizeof(*m->recs)) < 0) {
                free(key);
                return -ENOMEM;
        }
        id = intern_add(&m->keys, key, ls + lk + 1, &fresh);
        free(key);
        if (id < 0)
                return -ENOMEM;
        if (fresh)
                m->n_recs = m->keys.n;
        else
                unindex(m, id);
        m->recs[id] = r;
        return index_rec(m, id);
}

static bool matches(const struct rec *r, int32_t svc, int32_t feat) {
        return !r->deleted && (svc < 0 || r->service == svc) && (feat < 0 || r->feature == feat);
}

static int by_weighted(const void *a, const void *b) {
        const struct weighted *x = a, *y = b;

        return (x->us > y->us) - (x->us < y->us);
}

static int by_u64(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;

        return (x > y) - (x < y);
}

static int by_i32(const void *a, const void *b) {
        int32_t x = *(const int32_t *) a, y = *(const int32_t *) b;

        return (x > y) - (x < y);
}

/* Sorts and removes duplicates; returns the new length. */
static size_t unique_u64(uint64_t *v, size_t n) {
        size_t k = 0;

        if (n)
                qsort(v, n, sizeof(*v), by_u64);
        for (size_t i = 0; i < n; i++)
                if (k == 0 || v[k - 1] != v[i])
                        v[k++] = v[i];
        return k;
}

/* One pass over every record: the whole days' figures of the scope. */
static int cache_make(struct supmirror *m, struct cache *c) {
        size_t n_feat = m->features.n, cap_vals = 0, cap_pairs = 0, cap_custs = 0;
        bool whole = c->d0 < c->d1;
        int r = 0;

        c->n_feat = n_feat;
        c->feat_opened = calloc(n_feat + 1, sizeof(*c->feat_opened));
        c->feat_present = calloc(n_feat + 1, sizeof(*c->feat_present));
        c->pair_start = calloc(n_feat + 2, sizeof(*c->pair_start));
        if (!c->feat_opened || !c->feat_present || !c->pair_start)
                return -ENOMEM;
        for (size_t i = 0; i < m->n_recs && r == 0; i++) {
                const struct rec *x = &m->recs[i];
                int32_t od = day_of(x->occurred_us);
                bool resolved = x->resolved_us != SUPMIRROR_OPEN;
                int32_t rd = resolved ? day_of(x->resolved_us) : 0;

                if (!matches(x, c->svc, c->feat))
                        continue;
                if (x->kind == 0) {
                        if (od < c->d1)
                                c->before += x->count;
                        if (resolved && rd < c->d1)
                                c->before -= x->count;
                }
                if (whole && od >= c->d0 && od < c->d1) {
                        c->kinds[x->kind] += x->count;
                        if (x->kind == 0) {
                                c->opened += x->count;
                                c->linked += x->linked ? x->count : 0;
                                if (x->feature >= 0) {
                                        c->feat_opened[x->feature] += x->count;
                                        c->feat_present[x->feature] = true;
                                }
                                if (x->count > 0 && x->customer >= 0) {
                                        r = grow((void **) &c->custs, &cap_custs, c->n_custs + 1,
                                                 sizeof(*c->custs));
                                        if (r == 0)
                                                c->custs[c->n_custs++] = x->customer;
                                        if (r == 0 && x->feature >= 0)
                                                r = grow((void **) &c->pairs, &cap_pairs,
                                                         c->n_pairs + 1, sizeof(*c->pairs));
                                        if (r == 0 && x->feature >= 0)
                                                c->pairs[c->n_pairs++] =
                                                        (uint64_t) x->feature << 32 |
                                                        (uint32_t) x->customer;
                                }
                        }
                }
                if (whole && x->kind == 0 && resolved && rd >= c->d0 && rd < c->d1) {
                        c->resolved += x->count;
                        if (x->count > 0) {
                                r = grow((void **) &c->vals, &cap_vals, c->n_vals + 1,
                                         sizeof(*c->vals));
                                if (r == 0)
                                        c->vals[c->n_vals++] = (struct weighted) {
                                                x->resolved_us - x->occurred_us, x->count };
                        }
                }
        }
        if (r < 0)
                return r;
        /* the customers, distinct and sorted; the pairs likewise, indexed by feature */
        if (c->n_custs) {
                size_t k = 0;

                qsort(c->custs, c->n_custs, sizeof(*c->custs), by_i32);
                for (size_t i = 0; i < c->n_custs; i++)
                        if (k == 0 || c->custs[k - 1] != c->custs[i])
                                c->custs[k++] = c->custs[i];
                c->n_custs = k;
        }
        c->n_pairs = c->n_pairs ? unique_u64(c->pairs, c->n_pairs) : 0;
        for (size_t i = 0; i < c->n_pairs; i++)
                c->pair_start[(c->pairs[i] >> 32) + 1]++;
        for (size_t f = 0; f < n_feat; f++)
                c->pair_start[f + 1] += c->pair_start[f];
        if (c->n_vals)          /* vals is NULL when empty: qsort must not see it */
                qsort(c->vals, c->n_vals, sizeof(*c->vals), by_weighted);
        c->cum = malloc((c->n_vals + 1) * sizeof(*c->cum));
        if (!c->cum)
                return -ENOMEM;
        for (size_t i = 0, w = 0; i < c->n_vals; i++) {
                w += (size_t) c->vals[i].w;
                c->cum[i] = (int64_t) w;        /* weight up to and with i */
        }
        c->valid = true;
        return 0;
}

static struct cache *cache_for(struct supmirror *m, int32_t svc, int32_t feat, int32_t d0,
                               int32_t d1, int *ret) {
        struct cache *c;

        *ret = 0;
        for (size_t i = 0; i < N_CACHE; i++) {
                c = &m->cache[i];
                if (c->valid && c->svc == svc && c->feat == feat && c->d0 == d0 && c->d1 == d1)
                        return c;
        }
        c = &m->cache[m->next_cache];
        m->next_cache = (m->next_cache + 1) % N_CACHE;
        cache_free(c);
        *c = (struct cache) { .svc = svc, .feat = feat, .d0 = d0, .d1 = d1 };
        *ret = cache_make(m, c);
        if (*ret < 0) {
                cache_free(c);
                return NULL;
        }
        return c;
}

static bool has_i32(const int32_t *v, size_t n, int32_t x) {
        size_t lo = 0, hi = n;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;

                if (v[mid] < x)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return lo < n && v[lo] == x;
}

static bool has_u64(const uint64_t *v, size_t n, uint64_t x) {
        size_t lo = 0, hi = n;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;

                if (v[mid] < x)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return lo < n && v[lo] == x;
}

/* The weight of the values <= x in a sorted list with cumulative weights. */
static int64_t weight_upto(const struct weighted *v, const int64_t *cum, size_t n, int64_t x) {
        size_t lo = 0, hi = n;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;

                if (v[mid].us <= x)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return lo ? cum[lo - 1] : 0;
}

/* The value at position k (0-based) of the union of two sorted weighted lists: the least
 * value of either whose weight up to it in both exceeds k. */
static int64_t kth(const struct weighted *a, const int64_t *ca, size_t na,
                   const struct weighted *b, const int64_t *cb, size_t nb, int64_t k) {
        int64_t best = INT64_MAX;
        const struct weighted *lists[2] = { a, b };
        size_t ns[2] = { na, nb };

        for (int l = 0; l < 2; l++) {
                size_t lo = 0, hi = ns[l];

                while (lo < hi) {
                        size_t mid = lo + (hi - lo) / 2;
                        int64_t x = lists[l][mid].us;

                        if (weight_upto(a, ca, na, x) + weight_upto(b, cb, nb, x) > k)
                                hi = mid;
                        else
                                lo = mid + 1;
                }
                if (lo < ns[l] && lists[l][lo].us < best)
                        best = lists[l][lo].us;
        }
        return best;
}

static int by_opened_then_name(const void *a, const void *b) {
        const struct sup_feature *x = a, *y = b;

        if (x->opened != y->opened)
                return x->opened > y->opened ? -1 : 1;
        return strcmp(x->feature, y->feature);
}

static int scratch(struct supmirror *m) {
        size_t n_feat = m->features.n + 1;

        if (m->n_stamp < m->customers.n + 1) {
                free(m->stamp);
                m->n_stamp = m->customers.n + 1;
                m->stamp = calloc(m->n_stamp, sizeof(*m->stamp));
                m->gen = 0;
                if (!m->stamp) {
                        m->n_stamp = 0;
                        return -ENOMEM;
                }
        }
        if (m->cap_feat < n_feat) {
                free(m->feat_opened), free(m->feat_present), free(m->out), free(m->feat_slot);
                m->feat_opened = calloc(n_feat, sizeof(*m->feat_opened));
                m->feat_present = calloc(n_feat, sizeof(*m->feat_present));
                m->feat_slot = calloc(n_feat, sizeof(*m->feat_slot));
                m->out = calloc(n_feat, sizeof(*m->out));
                m->cap_feat = m->feat_opened && m->feat_present && m->out && m->feat_slot
                              ? n_feat : 0;
                if (!m->cap_feat)
                        return -ENOMEM;
        }
        if (++m->gen == 0) {
                if (m->n_stamp)
                        memset(m->stamp, 0, m->n_stamp * sizeof(*m->stamp));
                m->gen = 1;
        }
        return 0;
}

int supmirror_figures(struct supmirror *m, const struct sup_query *q, struct sup_figures *ret) {
        int32_t svc = q->service ? intern_find(&m->services, q->service) : -1;
        int32_t feat = q->feature ? intern_find(&m->features, q->feature) : -1;
        /* the first midnight at or after from, the last at or before to, as days */
        int32_t d0 = day_of(q->from_us - 1) + 1, d1 = day_of(q->to_us);
        int64_t d1_us = (int64_t) d1 * DAY_US, d0_us = (int64_t) d0 * DAY_US;
        /* the parts outside whole days; [d1, to) feeds open_now too, and within one day
         * (d0 > d1) it is read for that alone */
        int64_t parts[3][2] = { { q->from_us, d0 <= d1 ? d0_us : q->to_us },
                                { d0 <= d1 ? d1_us : q->to_us, q->to_us },
                                { d0 <= d1 ? q->to_us : d1_us, q->to_us } };
        size_t n_edge = 0, n_pairs = 0, n_out = 0, n_feat = m->features.n;
        int64_t n_weight, *edge_cum;
        struct cache *c;
        int r;

        *ret = (struct sup_figures) { .median_seconds = NAN };
        if ((q->service && svc < 0) || (q->feature && feat < 0))
                return 0;       /* nothing stored matches */
        c = cache_for(m, svc, feat, d0, d1, &r);
        if (!c || scratch(m) < 0)
                return -ENOMEM;
        ret->opened = c->opened, ret->resolved = c->resolved, ret->linked = c->linked;
        memcpy(ret->kinds, c->kinds, sizeof(ret->kinds));
        ret->open_now = c->before;
        ret->customers = (int64_t) c->n_custs;
        if (n_feat) {           /* the arrays are NULL while no feature is known */
                memset(m->feat_opened, 0, n_feat * sizeof(*m->feat_opened));
                memset(m->feat_present, 0, n_feat * sizeof(*m->feat_present));
        }
        for (int p = 0; p < 3; p++) {
                int64_t a = parts[p][0], b = parts[p][1];
                const struct bucket *bo, *br;

                if (a >= b)
                        continue;
                bo = bucket_of(m->occ, m, day_of(a));
                br = bucket_of(m->res, m, day_of(a));
                for (uint32_t i = 0; bo && i < bo->n; i++) {
                        const struct rec *x = &m->recs[bo->ids[i]];

                        if (!matches(x, svc, feat) || x->occurred_us < a || x->occurred_us >= b)
                                continue;
                        if (p == 2) {
                                ret->open_now += x->kind == 0 ? x->count : 0;
                                continue;
                        }
                        ret->kinds[x->kind] += x->count;
                        if (x->kind != 0)
                                continue;
                        ret->opened += x->count;
                        ret->linked += x->linked ? x->count : 0;
                        if (p >= 1)
                                ret->open_now += x->count;
                        if (x->feature >= 0) {
                                m->feat_opened[x->feature] += x->count;
                                m->feat_present[x->feature] = true;
                        }
                        if (x->count <= 0 || x->customer < 0)
                                continue;
                        if (!has_i32(c->custs, c->n_custs, x->customer) &&
                            m->stamp[x->customer] != m->gen) {
                                m->stamp[x->customer] = m->gen;
                                ret->customers++;
                        }
                        if (x->feature >= 0) {
                                if (grow((void **) &m->edge_pairs, &m->cap_edge_pairs,
                                         n_pairs + 1, sizeof(*m->edge_pairs)) < 0)
                                        return -ENOMEM;
                                m->edge_pairs[n_pairs++] = (uint64_t) x->feature << 32 |
                                                           (uint32_t) x->customer;
                        }
                }
                for (uint32_t i = 0; br && i < br->n; i++) {
                        const struct rec *x = &m->recs[br->ids[i]];

                        if (!matches(x, svc, feat) || x->kind != 0 || x->resolved_us < a ||
                            x->resolved_us >= b)
                                continue;
                        if (p >= 1)
                                ret->open_now -= x->count;
                        if (p == 2)
                                continue;
                        ret->resolved += x->count;
                        if (x->count <= 0)
                                continue;
                        if (grow((void **) &m->edge, &m->cap_edge, n_edge + 1,
                                 sizeof(*m->edge)) < 0)
                                return -ENOMEM;
                        m->edge[n_edge++] = (struct weighted) {
                                x->resolved_us - x->occurred_us, x->count };
                }
        }
        /* the median over the whole days' sorted values and the edges' */
        if (n_edge)
                qsort(m->edge, n_edge, sizeof(*m->edge), by_weighted);
        edge_cum = malloc((n_edge + 1) * sizeof(*edge_cum));
        if (!edge_cum)
                return -ENOMEM;
        for (size_t i = 0; i < n_edge; i++)
                edge_cum[i] = (i ? edge_cum[i - 1] : 0) + m->edge[i].w;
        n_weight = (c->n_vals ? c->cum[c->n_vals - 1] : 0) + (n_edge ? edge_cum[n_edge - 1] : 0);
        if (n_weight > 0) {
                /* percentile_cont(0.5): the mean of the two middle values */
                int64_t a = kth(c->vals, c->cum, c->n_vals, m->edge, edge_cum, n_edge,
                                (n_weight - 1) / 2);
                int64_t b = kth(c->vals, c->cum, c->n_vals, m->edge, edge_cum, n_edge,
                                n_weight / 2);

                ret->median_seconds = ((double) a / 1e6 + (double) b / 1e6) / 2;
        }
        free(edge_cum);
        /* the features: the whole days' plus the edges' pairs not among them */
        n_pairs = n_pairs ? unique_u64(m->edge_pairs, n_pairs) : 0;
        for (size_t f = 0; f < n_feat; f++) {
                bool cached = f < c->n_feat;

                if (!m->feat_present[f] && !(cached && c->feat_present[f]))
                        continue;
                m->feat_slot[f] = (int32_t) n_out;
                m->out[n_out++] = (struct sup_feature) {
                        .feature = m->features.names[f],
                        .opened = m->feat_opened[f] + (cached ? c->feat_opened[f] : 0),
                        .customers = cached ? (int64_t) (c->pair_start[f + 1] -
                                                         c->pair_start[f]) : 0 };
        }
        for (size_t i = 0; i < n_pairs; i++)
                if (!has_u64(c->pairs, c->n_pairs, m->edge_pairs[i]))
                        m->out[m->feat_slot[m->edge_pairs[i] >> 32]].customers++;
        if (n_out)
                qsort(m->out, n_out, sizeof(*m->out), by_opened_then_name);
        ret->features = m->out;
        ret->n_features = n_out;
        return 0;
}
