/* cube: the in-memory mirror of dl_rollups plus edge-day events. */
#include "cube.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"

#define DETAIL_SLOTS 8
#define SUM_CACHE 16
#define DAY_TOKENS 64
#define PAGE_DAYS 32            /* days are kept in pages that exist only where a row does */

struct cell {
        int64_t rev;
        int32_t deployments, failed, rework, changes, incidents, recovered;
        int32_t control[_METRICS_CONTROL_MAX], emergency;
        int32_t n_hist[CUBE_HISTS];
        int32_t *hist[CUBE_HISTS];      /* into one allocation starting at hist[0] */
};

/* PAGE_DAYS consecutive days of one series. A series holds only the pages in which it has
 * a row, so its memory follows the days with data, never the span from its first day to
 * its last (two rows 130 years apart cost two pages). */
struct page {
        int32_t first_day;                      /* a multiple of PAGE_DAYS */
        struct cell *cells[PAGE_DAYS];          /* [day - first_day], NULL where no row */
};

struct series {
        char *service, *environment;
        struct page **pages;    /* sorted by first_day */
        size_t n_pages, cap_pages;
        long next_of_service;   /* the next series of the same service, or -1 */
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
        char *key;              /* sum_key(): the selection, names length-prefixed */
        int32_t first, last;    /* whole days [first, last) */
        uint64_t gen, last_use;
        struct metrics_acc *acc;
};

struct cube {
        int64_t epoch;
        uint64_t xmin, gen, clock;
        struct series *series;
        size_t n_series, cap_series;
        /* Open-addressing indexes (series index + 1, 0 empty; 2x the series at least):
         * by (service, environment), and by service to its first series, so that looking a
         * row up, or summing one service among 15,000, never walks every series. */
        uint32_t *by_pair, *by_service;
        size_t index_cap;
        bool *match;            /* [n_series], all false between calls of cube_sum */
        uint32_t *matched;      /* the series a query selects */
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

                for (size_t p = 0; p < s->n_pages; p++) {
                        for (size_t d = 0; d < PAGE_DAYS; d++)
                                if (s->pages[p]->cells[d]) {
                                        free(s->pages[p]->cells[d]->hist[0]);
                                        free(s->pages[p]->cells[d]);
                                }
                        free(s->pages[p]);
                }
                free(s->pages);
                free(s->service);
                free(s->environment);
        }
        free(c->series);
        c->series = NULL;
        c->n_series = c->cap_series = 0;
        free(c->by_pair);
        free(c->by_service);
        free(c->match);
        free(c->matched);
        c->by_pair = c->by_service = c->matched = NULL;
        c->match = NULL;
        c->index_cap = 0;
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

static uint64_t hash_str(uint64_t h, const char *s) {
        for (; *s; s++)
                h = (h ^ (unsigned char) *s) * UINT64_C(1099511628211); /* FNV-1a */
        return h;
}

static uint64_t hash_service(const char *service) {
        return hash_str(UINT64_C(14695981039346656037), service);
}

static uint64_t hash_pair(const char *service, const char *environment) {
        return hash_str(hash_service(service) * UINT64_C(1099511628211), environment);
}

/* The slot of (service, environment) in by_pair: its series, or the empty slot for it. */
static uint32_t *pair_slot(const struct cube *c, const char *service, const char *environment) {
        size_t mask = c->index_cap - 1, at = (size_t) hash_pair(service, environment) & mask;

        for (;; at = (at + 1) & mask) {
                uint32_t v = c->by_pair[at];

                if (!v || (strcmp(c->series[v - 1].service, service) == 0 &&
                           strcmp(c->series[v - 1].environment, environment) == 0))
                        return &c->by_pair[at];
        }
}

/* The slot of service in by_service: the first series of it, or the empty slot for it. */
static uint32_t *service_slot(const struct cube *c, const char *service) {
        size_t mask = c->index_cap - 1, at = (size_t) hash_service(service) & mask;

        for (;; at = (at + 1) & mask) {
                uint32_t v = c->by_service[at];

                if (!v || strcmp(c->series[v - 1].service, service) == 0)
                        return &c->by_service[at];
        }
}

/* Rebuilds both indexes with room for cap series entries (a power of two). */
static int reindex(struct cube *c, size_t cap) {
        uint32_t *pair = calloc(cap, sizeof(*pair)), *svc = calloc(cap, sizeof(*svc));

        if (!pair || !svc) {
                free(pair);
                free(svc);
                return -ENOMEM;
        }
        free(c->by_pair);
        free(c->by_service);
        c->by_pair = pair;
        c->by_service = svc;
        c->index_cap = cap;
        for (size_t i = 0; i < c->n_series; i++) {
                const struct series *s = &c->series[i];
                uint32_t *head = service_slot(c, s->service);

                *pair_slot(c, s->service, s->environment) = (uint32_t) i + 1;
                if (!*head) /* the chains keep their links; only their heads are indexed */
                        *head = (uint32_t) i + 1;
        }
        return 0;
}

/* The series of (service, environment), made if missing; its index, or -ENOMEM. */
static long find_series(struct cube *c, const char *service, const char *environment,
                        bool create) {
        struct series *s;
        uint32_t *slot, *head;

        if (c->index_cap) {
                slot = pair_slot(c, service, environment);
                if (*slot)
                        return (long) *slot - 1;
        }
        if (!create)
                return -ENOENT;
        if (c->n_series >= UINT32_MAX - 1)
                return -ENOMEM;
        if (c->n_series == c->cap_series) {
                size_t cap = c->cap_series ? 2 * c->cap_series : 16;
                struct series *n = realloc(c->series, cap * sizeof(*n));
                bool *m = realloc(c->match, cap * sizeof(*m));
                uint32_t *l;

                if (n)
                        c->series = n;
                if (m)
                        c->match = m;
                if (!n || !m)
                        return -ENOMEM;
                l = realloc(c->matched, cap * sizeof(*l));
                if (!l)
                        return -ENOMEM;
                c->matched = l;
                c->cap_series = cap;
        }
        if (2 * (c->n_series + 1) > c->index_cap &&
            reindex(c, c->index_cap ? 2 * c->index_cap : 64) < 0)
                return -ENOMEM;
        s = &c->series[c->n_series];
        *s = (struct series) { .service = strdup(service), .environment = strdup(environment),
                               .next_of_service = -1 };
        if (!s->service || !s->environment) {
                free(s->service);
                free(s->environment);
                return -ENOMEM;
        }
        c->match[c->n_series] = false;
        head = service_slot(c, service);
        if (*head) { /* append to the service's chain, keeping the order series were made */
                long last = (long) *head - 1;

                while (c->series[last].next_of_service >= 0)
                        last = c->series[last].next_of_service;
                c->series[last].next_of_service = (long) c->n_series;
        } else {
                *head = (uint32_t) c->n_series + 1;
        }
        *pair_slot(c, service, environment) = (uint32_t) c->n_series + 1;
        return (long) c->n_series++;
}

static int64_t floor_div(int64_t a, int64_t b) {
        return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

static int32_t page_of(int64_t day) {
        return (int32_t) (floor_div(day, PAGE_DAYS) * PAGE_DAYS);
}

/* The index of the first page of s that starts at or after first_day. */
static size_t page_lower_bound(const struct series *s, int64_t first_day) {
        size_t a = 0, b = s->n_pages;

        while (a < b) {
                size_t m = a + (b - a) / 2;

                if (s->pages[m]->first_day < first_day)
                        a = m + 1;
                else
                        b = m;
        }
        return a;
}

/* The cell slot of day in s, adding its page if missing; NULL on OOM. */
static struct cell **cell_slot(struct series *s, int32_t day) {
        int32_t first = page_of(day);
        size_t at = page_lower_bound(s, first);
        struct page *p;

        if (at < s->n_pages && s->pages[at]->first_day == first)
                return &s->pages[at]->cells[day - first];
        if (s->n_pages == s->cap_pages) {
                size_t cap = s->cap_pages ? 2 * s->cap_pages : 4;
                struct page **n = realloc(s->pages, cap * sizeof(*n));

                if (!n)
                        return NULL;
                s->pages = n;
                s->cap_pages = cap;
        }
        p = calloc(1, sizeof(*p));
        if (!p)
                return NULL;
        p->first_day = first;
        /* Days mostly come in order: this is an append but for late rows. */
        memmove(s->pages + at + 1, s->pages + at, (s->n_pages - at) * sizeof(*s->pages));
        s->pages[at] = p;
        s->n_pages++;
        return &p->cells[day - first];
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

/* Appends one name to a key as <length>:<bytes>, so no name can pass for two or for a
 * part of its neighbour whatever bytes it holds. Returns the end of what it wrote. */
static char *key_name(char *p, const char *tag, const char *name) {
        size_t n = strlen(name);

        p += snprintf(p, 24, "%s%zu:", tag, n);
        memcpy(p, name, n);
        return p + n;
}

/* The cache key of a query's series selection (service or "*", each environment, whether
 * unlinked incidents count), or NULL on OOM. */
static char *sum_key(const struct cube_query *q) {
        size_t len = (q->service ? strlen(q->service) : 0) + 24 + 2;
        char *k, *p;

        for (size_t i = 0; i < q->n_envs; i++)
                len += strlen(q->envs[i]) + 24;
        k = p = malloc(len);
        if (!k)
                return NULL;
        if (q->service)
                p = key_name(p, "s", q->service);
        else
                *p++ = '*';
        for (size_t i = 0; i < q->n_envs; i++)
                p = key_name(p, "e", q->envs[i]);
        *p++ = q->unlinked ? 'u' : '-';
        *p = '\0';
        return k;
}

/* Sums the whole days [first, last) of the matching series into acc. */
static void sum_days(const struct cube *c, const uint32_t *matched, size_t n_matched,
                     int32_t first, int32_t last, struct metrics_acc *acc) {
        for (size_t i = 0; i < n_matched; i++) {
                const struct series *s = &c->series[matched[i]];

                for (size_t p = page_lower_bound(s, page_of(first));
                     p < s->n_pages && s->pages[p]->first_day < last; p++) {
                        const struct page *pg = s->pages[p];

                        for (int d = 0; d < PAGE_DAYS; d++)
                                if (pg->cells[d] && pg->first_day + d >= first &&
                                    pg->first_day + d < last)
                                        add_cell(acc, pg->cells[d]);
                }
        }
}

/* Whole-day sum through the cache: 0, or -ENOMEM. */
static int cached_days(struct cube *c, const struct cube_query *q, size_t n_matched,
                       int32_t first, int32_t last, struct metrics_acc *acc) {
        struct sum_entry *e = NULL, *victim = &c->sums[0];
        char *key;

        if (!q->cache) {
                sum_days(c, c->matched, n_matched, first, last, acc);
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
        sum_days(c, c->matched, n_matched, first, last, victim->acc);
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

/* Adds the events of day in [lo, hi) from the matching series. */
static void sum_edge(struct cube *c, struct detail *d, int64_t lo, int64_t hi,
                     struct metrics_acc *acc) {
        size_t a = 0, b = d->n;

        while (a < b) { /* first event at or after lo */
                size_t m = a + (b - a) / 2;

                if (d->ev[m].at_us < lo)
                        a = m + 1;
                else
                        b = m;
        }
        for (size_t i = a; i < d->n && d->ev[i].at_us < hi; i++)
                if (d->ev[i].series < c->n_series && c->match[d->ev[i].series])
                        add_event(acc, &d->ev[i]);
        d->last_use = ++c->clock;
}

/* Marks the series q selects in c->match and lists them in c->matched: only the chain of
 * q's service when it names one. Returns how many; cube_sum clears the marks. */
static size_t select_series(struct cube *c, const struct cube_query *q) {
        size_t n = 0;

        if (q->service) {
                long i = c->index_cap ? (long) *service_slot(c, q->service) - 1 : -1;

                for (; i >= 0; i = c->series[i].next_of_service)
                        if (series_matches(&c->series[i], q)) {
                                c->match[i] = true;
                                c->matched[n++] = (uint32_t) i;
                        }
                return n;
        }
        for (size_t i = 0; i < c->n_series; i++)
                if (series_matches(&c->series[i], q)) {
                        c->match[i] = true;
                        c->matched[n++] = (uint32_t) i;
                }
        return n;
}

int cube_sum(struct cube *c, const struct cube_query *q, struct metrics_acc *ret,
             int32_t *ret_missing_day) {
        int64_t first = floor_div(q->from_us + CUBE_DAY_US - 1, CUBE_DAY_US);
        int64_t last = floor_div(q->to_us, CUBE_DAY_US);
        int64_t edge_day[2] = { INT64_MIN, INT64_MIN }, edge_lo[2], edge_hi[2];
        struct detail *edge[2] = { NULL, NULL };
        size_t n_matched;
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
        n_matched = select_series(c, q);
        if (last > first)
                r = cached_days(c, q, n_matched, (int32_t) first, (int32_t) last, ret);
        for (int i = 0; i < 2 && r == 0; i++)
                if (edge[i])
                        sum_edge(c, edge[i], edge_lo[i], edge_hi[i], ret);
        for (int i = 0; i < 2; i++)
                if (edge[i] && edge[i]->once) {
                        free(edge[i]->ev);
                        *edge[i] = (struct detail) { .used = false };
                }
        for (size_t i = 0; i < n_matched; i++)
                c->match[c->matched[i]] = false;
        return r;
}

void cube_series(const struct cube *c, void (*fn)(void *ctx, const char *service,
                                                  const char *environment), void *ctx) {
        for (size_t i = 0; i < c->n_series; i++)
                fn(ctx, c->series[i].service, c->series[i].environment);
}
