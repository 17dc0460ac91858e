/* cube: the in-memory mirror of dl_rollups plus edge-day events. */
#include "cube.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"

#define DETAIL_SLOTS 8
#define SUM_CACHE 16
#define DAY_TOKENS 64

struct cell {
        int64_t rev;
        int32_t deployments, failed, rework, changes, incidents, recovered;
        int32_t control[_METRICS_CONTROL_MAX], emergency;
        int32_t n_hist[CUBE_HISTS];
        int32_t *hist[CUBE_HISTS];      /* into one allocation starting at hist[0] */
};

struct series {
        char *service, *environment;
        int32_t first_day;
        size_t n_days;
        struct cell **cells;    /* [day - first_day], NULL where no row */
};

struct event {
        uint32_t series;
        char kind;
        bool failed, rework, emergency;
        int8_t control;
        int32_t bucket;
        int64_t at_us;
};

struct detail {
        bool used, once;        /* once: possibly older than the rollups, use one time */
        int32_t day;
        uint64_t last_use;
        struct event *ev;       /* sorted by at_us */
        size_t n;
};

struct sum_entry {
        bool used;
        char *key;              /* service \x1f envs \x1f unlinked */
        int32_t first, last;    /* whole days [first, last) */
        uint64_t gen, last_use;
        struct metrics_acc *acc;
};

struct cube {
        int64_t epoch;
        uint64_t xmin, gen, clock;
        struct series *series;
        size_t n_series, cap_series;
        uint64_t day_tokens[DAY_TOKENS];
        struct detail details[DETAIL_SLOTS];
        struct sum_entry sums[SUM_CACHE];
};

struct cube *cube_new(void) {
        return calloc(1, sizeof(struct cube));
}

static void clear(struct cube *c) {
        for (size_t i = 0; i < c->n_series; i++) {
                struct series *s = &c->series[i];

                for (size_t d = 0; d < s->n_days; d++)
                        if (s->cells[d]) {
                                free(s->cells[d]->hist[0]);
                                free(s->cells[d]);
                        }
                free(s->cells);
                free(s->service);
                free(s->environment);
        }
        free(c->series);
        c->series = NULL;
        c->n_series = c->cap_series = 0;
        for (size_t i = 0; i < DETAIL_SLOTS; i++) {
                free(c->details[i].ev);
                c->details[i] = (struct detail) { .used = false };
        }
        for (size_t i = 0; i < SUM_CACHE; i++) {
                free(c->sums[i].key);
                free(c->sums[i].acc);
                c->sums[i] = (struct sum_entry) { .used = false };
        }
        for (size_t i = 0; i < DAY_TOKENS; i++)
                c->day_tokens[i]++;
        c->gen++;
}

struct cube *cube_free(struct cube *c) {
        if (!c)
                return NULL;
        clear(c);
        free(c);
        return NULL;
}

int64_t cube_epoch(const struct cube *c) {
        return c->epoch;
}

uint64_t cube_xmin(const struct cube *c) {
        return c->xmin;
}

void cube_set_xmin(struct cube *c, uint64_t xmin) {
        if (xmin > c->xmin)
                c->xmin = xmin;
}

void cube_reset(struct cube *c, int64_t epoch) {
        clear(c);
        c->epoch = epoch;
        c->xmin = 0;
}

/* The series of (service, environment), made if missing; its index, or -ENOMEM. */
static long find_series(struct cube *c, const char *service, const char *environment,
                        bool create) {
        struct series *s;

        for (size_t i = 0; i < c->n_series; i++)
                if (strcmp(c->series[i].service, service) == 0 &&
                    strcmp(c->series[i].environment, environment) == 0)
                        return (long) i;
        if (!create)
                return -ENOENT;
        if (c->n_series == c->cap_series) {
                size_t cap = c->cap_series ? 2 * c->cap_series : 16;
                struct series *n = realloc(c->series, cap * sizeof(*n));

                if (!n)
                        return -ENOMEM;
                c->series = n;
                c->cap_series = cap;
        }
        s = &c->series[c->n_series];
        *s = (struct series) { .service = strdup(service), .environment = strdup(environment) };
        if (!s->service || !s->environment) {
                free(s->service);
                free(s->environment);
                return -ENOMEM;
        }
        return (long) c->n_series++;
}

/* The cell slot of day in s, growing the day range to hold it. */
static struct cell **cell_slot(struct series *s, int32_t day) {
        if (s->n_days == 0) {
                s->cells = calloc(1, sizeof(*s->cells));
                if (!s->cells)
                        return NULL;
                s->first_day = day;
                s->n_days = 1;
        } else if (day < s->first_day) {
                size_t grow = (size_t) (s->first_day - day);
                struct cell **n = calloc(s->n_days + grow, sizeof(*n));

                if (!n)
                        return NULL;
                memcpy(n + grow, s->cells, s->n_days * sizeof(*n));
                free(s->cells);
                s->cells = n;
                s->n_days += grow;
                s->first_day = day;
        } else if ((size_t) (day - s->first_day) >= s->n_days) {
                size_t want = (size_t) (day - s->first_day) + 1;
                size_t cap = want + 31; /* days come in order: grow a month at a time */
                struct cell **n = realloc(s->cells, cap * sizeof(*n));

                if (!n)
                        return NULL;
                memset(n + s->n_days, 0, (cap - s->n_days) * sizeof(*n));
                s->cells = n;
                s->n_days = cap;
        }
        return &s->cells[day - s->first_day];
}

int cube_apply(struct cube *c, const struct cube_row *r) {
        long si = find_series(c, r->service, r->environment, true);
        struct cell **slot, *cell;
        size_t total = 0;
        int32_t *mem = NULL;

        if (si < 0)
                return (int) si;
        slot = cell_slot(&c->series[si], r->day);
        if (!slot)
                return -ENOMEM;
        if (*slot && (*slot)->rev >= r->rev)
                return 0;
        for (int h = 0; h < CUBE_HISTS; h++)
                total += r->n_hist[h];
        cell = calloc(1, sizeof(*cell));
        if (total)
                mem = malloc(total * sizeof(*mem));
        if (!cell || (total && !mem)) {
                free(cell);
                free(mem);
                return -ENOMEM;
        }
        *cell = (struct cell) { .rev = r->rev, .deployments = r->deployments,
                                .failed = r->failed, .rework = r->rework,
                                .changes = r->changes, .incidents = r->incidents,
                                .recovered = r->recovered, .emergency = r->emergency };
        memcpy(cell->control, r->control, sizeof(cell->control));
        for (int h = 0, at = 0; h < CUBE_HISTS; h++) {
                cell->hist[h] = mem ? mem + at : NULL;
                cell->n_hist[h] = (int32_t) r->n_hist[h];
                if (r->n_hist[h])
                        memcpy(mem + at, r->hist[h], r->n_hist[h] * sizeof(*mem));
                at += (int) r->n_hist[h];
        }
        if (*slot) {
                free((*slot)->hist[0]);
                free(*slot);
        }
        *slot = cell;
        c->gen++;
        c->day_tokens[(uint32_t) r->day % DAY_TOKENS]++;
        for (size_t i = 0; i < DETAIL_SLOTS; i++)
                if (c->details[i].used && c->details[i].day == r->day) {
                        free(c->details[i].ev);
                        c->details[i] = (struct detail) { .used = false };
                }
        return 0;
}

uint64_t cube_detail_token(const struct cube *c, int32_t day) {
        return c->day_tokens[(uint32_t) day % DAY_TOKENS];
}

static int cmp_event(const void *a, const void *b) {
        const struct event *x = a, *y = b;

        return (x->at_us > y->at_us) - (x->at_us < y->at_us);
}

int cube_set_detail(struct cube *c, int32_t day, uint64_t token, const struct cube_event_in *ev,
                    size_t n) {
        struct event *out = n ? malloc(n * sizeof(*out)) : NULL;
        struct detail *slot = NULL;

        if (n && !out)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                long si = find_series(c, ev[i].service, ev[i].environment, true);

                if (si < 0) {
                        free(out);
                        return (int) si;
                }
                out[i] = (struct event) {
                        .series = (uint32_t) si, .kind = ev[i].kind, .failed = ev[i].failed,
                        .rework = ev[i].rework, .at_us = ev[i].at_us,
                        .emergency = ev[i].emergency, .control = (int8_t) ev[i].control,
                        .bucket = isnan(ev[i].seconds) ? METRICS_NO_VALUE
                                                       : metrics_bucket(ev[i].seconds),
                };
        }
        if (n > 1)
                qsort(out, n, sizeof(*out), cmp_event);
        for (size_t i = 0; i < DETAIL_SLOTS; i++) {
                struct detail *d = &c->details[i];

                if (d->used && d->day == day) {
                        slot = d;
                        break;
                }
                if (!slot || !d->used || (slot->used && d->last_use < slot->last_use))
                        slot = d;
        }
        free(slot->ev);
        *slot = (struct detail) { .used = true, .day = day, .ev = out, .n = n,
                                  .once = token != cube_detail_token(c, day),
                                  .last_use = ++c->clock };
        return 0;
}

static struct detail *find_detail(struct cube *c, int32_t day) {
        for (size_t i = 0; i < DETAIL_SLOTS; i++)
                if (c->details[i].used && c->details[i].day == day)
                        return &c->details[i];
        return NULL;
}

static bool series_matches(const struct series *s, const struct cube_query *q) {
        if (q->service && strcmp(s->service, q->service) != 0)
                return false;
        if (!*s->environment)
                return q->unlinked;
        for (size_t i = 0; i < q->n_envs; i++)
                if (strcmp(s->environment, q->envs[i]) == 0)
                        return true;
        return false;
}

static void add_cell(struct metrics_acc *a, const struct cell *cell) {
        a->deployments += cell->deployments;
        a->failed += cell->failed;
        a->rework += cell->rework;
        a->changes += cell->changes;
        a->incidents += cell->incidents;
        a->recovered += cell->recovered;
        for (int i = 0; i < _METRICS_CONTROL_MAX; i++)
                a->control[i] += cell->control[i];
        a->emergency += cell->emergency;
        metrics_hist_add_sparse(&a->lead, cell->hist[CUBE_LEAD],
                                (size_t) cell->n_hist[CUBE_LEAD]);
        metrics_hist_add_sparse(&a->restore, cell->hist[CUBE_RESTORE],
                                (size_t) cell->n_hist[CUBE_RESTORE]);
        metrics_hist_add_sparse(&a->recovery, cell->hist[CUBE_RECOVERY],
                                (size_t) cell->n_hist[CUBE_RECOVERY]);
        metrics_hist_add_sparse(&a->approval, cell->hist[CUBE_APPROVAL],
                                (size_t) cell->n_hist[CUBE_APPROVAL]);
}

static void add_event(struct metrics_acc *a, const struct event *e) {
        switch (e->kind) {
        case 'd':
                a->deployments++;
                a->failed += e->failed;
                a->rework += e->rework;
                if (e->bucket != METRICS_NO_VALUE) {
                        a->recovered++;
                        metrics_hist_add(&a->recovery, e->bucket, 1);
                }
                if (e->control != METRICS_NO_CONTROL)
                        a->control[e->control]++;
                a->emergency += e->emergency;
                break;
        case 'a':
                if (e->bucket != METRICS_NO_VALUE)
                        metrics_hist_add(&a->approval, e->bucket, 1);
                break;
        case 'c':
                a->changes++;
                if (e->bucket != METRICS_NO_VALUE)
                        metrics_hist_add(&a->lead, e->bucket, 1);
                break;
        case 'i':
                a->incidents++;
                if (e->bucket != METRICS_NO_VALUE)
                        metrics_hist_add(&a->restore, e->bucket, 1);
                break;
        }
}

/* The cache key of a query's series selection, or NULL on OOM. */
static char *sum_key(const struct cube_query *q) {
        size_t len = (q->service ? strlen(q->service) : 0) + 8;
        char *k, *p;

        for (size_t i = 0; i < q->n_envs; i++)
                len += strlen(q->envs[i]) + 1;
        k = p = malloc(len);
        if (!k)
                return NULL;
        p += q->service ? (size_t) (stpcpy(p, q->service) - p) : 0;
        *p++ = q->service ? '\x1f' : '\x1e';
        for (size_t i = 0; i < q->n_envs; i++) {
                p = stpcpy(p, q->envs[i]);
                *p++ = '\x1f';
        }
        *p++ = q->unlinked ? 'u' : '-';
        *p = '\0';
        return k;
}

/* Sums the whole days [first, last) of the matching series into acc. */
static void sum_days(const struct cube *c, const bool *match, int32_t first, int32_t last,
                     struct metrics_acc *acc) {
        for (size_t i = 0; i < c->n_series; i++) {
                const struct series *s = &c->series[i];
                int64_t lo, hi;

                if (!match[i] || !s->n_days)
                        continue;
                lo = first > s->first_day ? first : s->first_day;
                hi = (int64_t) s->first_day + (int64_t) s->n_days;
                if (last < hi)
                        hi = last;
                for (int64_t d = lo; d < hi; d++)
                        if (s->cells[d - s->first_day])
                                add_cell(acc, s->cells[d - s->first_day]);
        }
}

/* Whole-day sum through the cache: 0, or -ENOMEM. */
static int cached_days(struct cube *c, const struct cube_query *q, const bool *match,
                       int32_t first, int32_t last, struct metrics_acc *acc) {
        struct sum_entry *e = NULL, *victim = &c->sums[0];
        char *key;

        if (!q->cache) {
                sum_days(c, match, first, last, acc);
                return 0;
        }
        key = sum_key(q);
        if (!key)
                return -ENOMEM;
        for (size_t i = 0; i < SUM_CACHE; i++) {
                struct sum_entry *s = &c->sums[i];

                if (s->used && s->gen == c->gen && s->first == first && s->last == last &&
                    strcmp(s->key, key) == 0) {
                        e = s;
                        break;
                }
                if (!s->used || (victim->used && s->last_use < victim->last_use))
                        victim = s;
        }
        if (e) {
                free(key);
                e->last_use = ++c->clock;
                metrics_acc_merge(acc, e->acc);
                return 0;
        }
        if (!victim->acc)
                victim->acc = malloc(sizeof(*victim->acc));
        if (!victim->acc) {
                free(key);
                return -ENOMEM;
        }
        memset(victim->acc, 0, sizeof(*victim->acc));
        sum_days(c, match, first, last, victim->acc);
        free(victim->key);
        victim->key = key;
        victim->used = true;
        victim->gen = c->gen;
        victim->first = first;
        victim->last = last;
        victim->last_use = ++c->clock;
        metrics_acc_merge(acc, victim->acc);
        return 0;
}

static int64_t floor_div(int64_t a, int64_t b) {
        return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

/* Adds the events of day in [lo, hi) from the matching series. */
static void sum_edge(struct cube *c, struct detail *d, const bool *match, int64_t lo,
                     int64_t hi, struct metrics_acc *acc) {
        size_t a = 0, b = d->n;

        while (a < b) { /* first event at or after lo */
                size_t m = a + (b - a) / 2;

                if (d->ev[m].at_us < lo)
                        a = m + 1;
                else
                        b = m;
        }
        for (size_t i = a; i < d->n && d->ev[i].at_us < hi; i++)
                if (d->ev[i].series < c->n_series && match[d->ev[i].series])
                        add_event(acc, &d->ev[i]);
        d->last_use = ++c->clock;
}

int cube_sum(struct cube *c, const struct cube_query *q, struct metrics_acc *ret,
             int32_t *ret_missing_day) {
        int64_t first = floor_div(q->from_us + CUBE_DAY_US - 1, CUBE_DAY_US);
        int64_t last = floor_div(q->to_us, CUBE_DAY_US);
        int64_t edge_day[2] = { INT64_MIN, INT64_MIN }, edge_lo[2], edge_hi[2];
        struct detail *edge[2] = { NULL, NULL };
        bool *match;
        int r = 0;

        memset(ret, 0, sizeof(*ret));
        if (q->from_us < first * CUBE_DAY_US) { /* the part of the day before the first whole one */
                edge_day[0] = first - 1;
                edge_lo[0] = q->from_us;
                edge_hi[0] = first * CUBE_DAY_US < q->to_us ? first * CUBE_DAY_US : q->to_us;
        }
        if (last >= first && q->to_us > last * CUBE_DAY_US) { /* after the last whole one */
                edge_day[1] = last;
                edge_lo[1] = last * CUBE_DAY_US;
                edge_hi[1] = q->to_us;
        }
        for (int i = 0; i < 2; i++) {
                if (edge_day[i] == INT64_MIN)
                        continue;
                edge[i] = find_detail(c, (int32_t) edge_day[i]);
                if (!edge[i]) {
                        *ret_missing_day = (int32_t) edge_day[i];
                        return -ENOENT;
                }
        }
        match = calloc(c->n_series + 1, sizeof(*match));
        if (!match)
                return -ENOMEM;
        for (size_t i = 0; i < c->n_series; i++)
                match[i] = series_matches(&c->series[i], q);
        if (last > first)
                r = cached_days(c, q, match, (int32_t) first, (int32_t) last, ret);
        for (int i = 0; i < 2 && r == 0; i++)
                if (edge[i])
                        sum_edge(c, edge[i], match, edge_lo[i], edge_hi[i], ret);
        for (int i = 0; i < 2; i++)
                if (edge[i] && edge[i]->once) {
                        free(edge[i]->ev);
                        *edge[i] = (struct detail) { .used = false };
                }
        free(match);
        return r;
}

void cube_series(const struct cube *c, void (*fn)(void *ctx, const char *service,
                                                  const char *environment), void *ctx) {
        for (size_t i = 0; i < c->n_series; i++)
                fn(ctx, c->series[i].service, c->series[i].environment);
}
