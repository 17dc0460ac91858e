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

/* One observation, its strings interned; -1 is none. */
struct rec {
        int64_t count, occurred_us, resolved_us;
        int32_t service, feature, customer;
        uint8_t kind;
        bool linked, deleted;
};

struct supmirror {
        int64_t epoch;
        uint64_t xmin;
        struct intern services, features, customers, keys;     /* keys: source "\n" key */
        struct rec *recs;               /* by the key's id */
        size_t n_recs, cap_recs;
        /* scratch of supmirror_figures() */
        uint32_t *stamp;                /* per customer */
        uint32_t gen;
        struct { int64_t us, w; } *res;
        size_t cap_res;
        int32_t *picked;                /* records counted for the features */
        size_t cap_picked;
        int64_t *feat_opened;
        int32_t *feat_start;
        struct sup_feature *out;
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

struct supmirror *supmirror_new(void) {
        return calloc(1, sizeof(struct supmirror));
}

static void scratch_free(struct supmirror *m) {
        free(m->stamp), free(m->res), free(m->picked), free(m->feat_opened);
        free(m->feat_start), free(m->out);
        m->stamp = NULL, m->res = NULL, m->picked = NULL, m->feat_opened = NULL;
        m->feat_start = NULL, m->out = NULL;
        m->cap_res = m->cap_picked = 0;
        m->gen = 0;
}

void supmirror_reset(struct supmirror *m, int64_t epoch) {
        intern_free(&m->services), intern_free(&m->features), intern_free(&m->customers);
        intern_free(&m->keys);
        free(m->recs);
        m->recs = NULL;
        m->n_recs = m->cap_recs = 0;
        scratch_free(m);
        m->epoch = epoch;
        m->xmin = 0;
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

static int by_opened_then_name(const void *a, const void *b) {
        const struct sup_feature *x = a, *y = b;

        if (x->opened != y->opened)
                return x->opened > y->opened ? -1 : 1;
        return strcmp(x->feature, y->feature);
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
        m->recs[id] = r;
        return 0;
}

/* The value at position k (0-based) of the list in which each res[i].us shows res[i].w
 * times, in ascending order: a weighted quickselect, reordering res. */
static int64_t weighted_select(struct supmirror *m, size_t n, int64_t k) {
        size_t lo = 0, hi = n;  /* the answer is within res[lo, hi) */

        for (;;) {
                int64_t pivot = m->res[lo + (hi - lo) / 2].us, w_less = 0, w_eq = 0;
                size_t lt = lo, i = lo, gt = hi;

                /* three-way partition: [lo, lt) < pivot, [lt, gt) == pivot, [gt, hi) > */
                while (i < gt) {
                        if (m->res[i].us < pivot) {
                                __typeof__(m->res[0]) t = m->res[i];

                                w_less += t.w;
                                m->res[i++] = m->res[lt];
                                m->res[lt++] = t;
                        } else if (m->res[i].us > pivot) {
                                __typeof__(m->res[0]) t = m->res[i];

                                m->res[i] = m->res[--gt];
                                m->res[gt] = t;
                        } else
                                w_eq += m->res[i++].w;
                }
                if (k < w_less)
                        hi = lt;
                else if (k < w_less + w_eq)
                        return pivot;
                else {
                        k -= w_less + w_eq;
                        lo = gt;
                }
        }
}

/* A new stamp generation: customers whose stamp differs are not yet counted. */
static uint32_t next_gen(struct supmirror *m) {
        if (++m->gen == 0) {
                memset(m->stamp, 0, m->customers.n * sizeof(*m->stamp));
                m->gen = 1;
        }
        return m->gen;
}

int supmirror_figures(struct supmirror *m, const struct sup_query *q, struct sup_figures *ret) {
        int32_t svc = q->service ? intern_find(&m->services, q->service) : -1;
        int32_t feat = q->feature ? intern_find(&m->features, q->feature) : -1;
        size_t n_feat = m->features.n, n_res = 0, n_picked = 0, n_out = 0;
        int64_t n_weight = 0;
        uint32_t gen;

        *ret = (struct sup_figures) { .median_seconds = NAN };
        if ((q->service && svc < 0) || (q->feature && feat < 0))
                return 0;       /* nothing stored matches */
        free(m->stamp);
        free(m->feat_opened), free(m->feat_start), free(m->out);
        m->stamp = calloc(m->customers.n + 1, sizeof(*m->stamp));
        m->feat_opened = calloc(n_feat + 1, sizeof(*m->feat_opened));
        m->feat_start = calloc(n_feat + 2, sizeof(*m->feat_start));
        m->out = calloc(n_feat + 1, sizeof(*m->out));
        m->gen = 0;
        if (!m->stamp || !m->feat_opened || !m->feat_start || !m->out)
                return -ENOMEM;
        if (grow((void **) &m->res, &m->cap_res, m->n_recs + 1, sizeof(*m->res)) < 0 ||
            grow((void **) &m->picked, &m->cap_picked, m->n_recs + 1, sizeof(*m->picked)) < 0)
                return -ENOMEM;
        gen = next_gen(m);
        for (size_t i = 0; i < m->n_recs; i++) {
                const struct rec *r = &m->recs[i];
                bool opened;

                if (r->deleted || (q->service && r->service != svc) ||
                    (q->feature && r->feature != feat))
                        continue;
                opened = r->occurred_us >= q->from_us && r->occurred_us < q->to_us;
                if (opened)
                        ret->kinds[r->kind] += r->count;
                if (r->kind != 0)
                        continue;
                if (opened) {
                        ret->opened += r->count;
                        if (r->linked)
                                ret->linked += r->count;
                        if (r->count > 0 && r->customer >= 0 && m->stamp[r->customer] != gen) {
                                m->stamp[r->customer] = gen;
                                ret->customers++;
                        }
                        if (r->feature >= 0) {
                                m->feat_opened[r->feature] += r->count;
                                m->feat_start[r->feature + 1]++;
                                m->picked[n_picked++] = (int32_t) i;
                        }
                }
                if (r->resolved_us != SUPMIRROR_OPEN && r->resolved_us >= q->from_us &&
                    r->resolved_us < q->to_us) {
                        ret->resolved += r->count;
                        if (r->count > 0) {
                                m->res[n_res].us = r->resolved_us - r->occurred_us;
                                m->res[n_res++].w = r->count;
                                n_weight += r->count;
                        }
                }
                if (r->occurred_us < q->to_us &&
                    (r->resolved_us == SUPMIRROR_OPEN || r->resolved_us >= q->to_us))
                        ret->open_now += r->count;
        }
        if (n_weight > 0) {
                /* percentile_cont(0.5): the mean of the two middle values */
                int64_t a = weighted_select(m, n_res, (n_weight - 1) / 2);
                int64_t b = weighted_select(m, n_res, n_weight / 2);

                ret->median_seconds = ((double) a / 1e6 + (double) b / 1e6) / 2;
        }
        /* The features: the picked records grouped by feature (a counting sort, reusing
         * res as the buffer), then each feature's distinct customers by stamps. */
        for (size_t f = 0; f < n_feat; f++)
                m->feat_start[f + 1] += m->feat_start[f];
        {
                int32_t *grouped = (int32_t *) m->res; /* res holds >= n_recs int64 pairs */
                for (size_t i = 0; i < n_picked; i++)
                        grouped[m->feat_start[m->recs[m->picked[i]].feature]++] = m->picked[i];
                /* feat_start[f] is now feature f's end; f's start is f - 1's end */
                for (size_t f = 0, start = 0; f < n_feat; f++) {
                        size_t end = (size_t) m->feat_start[f];
                        int64_t customers = 0;

                        if (end == start) {
                                continue;
                        }
                        gen = next_gen(m);
                        for (size_t j = start; j < end; j++) {
                                const struct rec *r = &m->recs[grouped[j]];

                                if (r->count > 0 && r->customer >= 0 &&
                                    m->stamp[r->customer] != gen) {
                                        m->stamp[r->customer] = gen;
                                        customers++;
                                }
                        }
                        m->out[n_out++] = (struct sup_feature) {
                                .feature = m->features.names[f],
                                .opened = m->feat_opened[f], .customers = customers };
                        start = end;
                }
        }
        qsort(m->out, n_out, sizeof(*m->out), by_opened_then_name);
        ret->features = m->out;
        ret->n_features = n_out;
        return 0;
}
