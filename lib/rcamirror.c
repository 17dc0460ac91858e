/* rcamirror: rca_daily and edge days' incidents in memory, summed per request
 * (rcamirror.h; sql/functions/62_rca.sql's dl_rca_fast is what it answers). */
#include "rcamirror.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "jsontext.h"

#define DAY_US INT64_C(86400000000)
#define N_DETAIL 8              /* edge days kept: both windows' ends, with room */

/* dimension indexes: '' (all), '*' (with factors), then the four, in the API's names */
enum { D_ALL, D_ANY, D_FIRST, N_DIMS = D_FIRST + 4 };
static const char *const dims[4] = { "organizational", "technological", "partner",
                                     "process" };

struct crow {                   /* a row of rca_daily; cat -1 is '' */
        int8_t dim;
        int32_t cat;
        int64_t incidents, primaries, resolved_us, open_incidents, open_opened_us;
};

struct dayrows {
        struct crow *rows;
        size_t n;
        uint64_t set_at;        /* m->sets when last set */
};

struct svc {
        char *name;
        int32_t base;           /* days[i] is day base + i */
        size_t n_days;
        struct dayrows *days;
};

struct inc {                    /* an incident of an edge day */
        int32_t svc;
        int64_t opened_us, resolved_us;
        uint8_t dims, primary;  /* bit per dimension */
        size_t first, n;        /* its (dim, cat) pairs in detail.pairs, categories only */
};

struct detail {
        bool loaded;
        int32_t day;
        struct inc *incs;
        size_t n;
        struct { int8_t dim; int32_t cat; } *pairs;
};

struct cell {
        int64_t incidents, primaries, downtime_us;
        int64_t open;           /* open incidents of whole days, whose downtime_us runs to
                                 * d1 so far: the rest, to the window's end, comes last */
        bool present;
};

/* The whole days' sums of one scope, kept until a row of those days is set (a window
 * ending now keeps its whole days all day). */
struct daycache {
        bool valid;
        int svc;                /* -1: every service */
        int32_t d0, d1;
        size_t width;
        struct cell *cells;
};

#define N_CACHE 8

struct rcamirror {
        int64_t epoch;
        struct daycache cache[N_CACHE];
        size_t next_cache;
        uint64_t xmin, sets;
        struct svc *svcs;
        size_t n_svcs;
        char **cats;
        size_t n_cats;
        struct detail detail[N_DETAIL];
        size_t next_detail;     /* the one to replace next */
};

struct rcamirror *rcamirror_new(void) {
        return calloc(1, sizeof(struct rcamirror));
}

static void detail_free(struct detail *d) {
        free(d->incs);
        free(d->pairs);
        *d = (struct detail) { .loaded = false };
}

void rcamirror_reset(struct rcamirror *m, int64_t epoch) {
        for (size_t i = 0; i < m->n_svcs; i++) {
                for (size_t d = 0; d < m->svcs[i].n_days; d++)
                        free(m->svcs[i].days[d].rows);
                free(m->svcs[i].days);
                free(m->svcs[i].name);
        }
        free(m->svcs);
        for (size_t i = 0; i < m->n_cats; i++)
                free(m->cats[i]);
        free(m->cats);
        for (size_t i = 0; i < N_DETAIL; i++)
                detail_free(&m->detail[i]);
        for (size_t i = 0; i < N_CACHE; i++)
                free(m->cache[i].cells);
        *m = (struct rcamirror) { .epoch = epoch, .sets = m->sets };
}

struct rcamirror *rcamirror_free(struct rcamirror *m) {
        if (m) {
                rcamirror_reset(m, 0);
                free(m);
        }
        return NULL;
}

int64_t rcamirror_epoch(const struct rcamirror *m) {
        return m->epoch;
}

uint64_t rcamirror_xmin(const struct rcamirror *m) {
        return m->xmin;
}

void rcamirror_set_xmin(struct rcamirror *m, uint64_t xmin) {
        m->xmin = xmin;
}

static int find_svc(const struct rcamirror *m, const char *name) {
        for (size_t i = 0; i < m->n_svcs; i++)
                if (strcmp(m->svcs[i].name, name) == 0)
                        return (int) i;
        return -1;
}

static int add_svc(struct rcamirror *m, const char *name) {
        int i = find_svc(m, name);
        struct svc *n;

        if (i >= 0)
                return i;
        n = realloc(m->svcs, (m->n_svcs + 1) * sizeof(*n));
        if (!n)
                return -ENOMEM;
        m->svcs = n;
        n[m->n_svcs] = (struct svc) { .name = strdup(name) };
        if (!n[m->n_svcs].name)
                return -ENOMEM;
        return (int) m->n_svcs++;
}

/* A dimension's index, or -1. */
static int dim_index(const char *d) {
        if (strcmp(d, "") == 0)
                return D_ALL;
        if (strcmp(d, "*") == 0)
                return D_ANY;
        for (int i = 0; i < 4; i++)
                if (strcmp(d, dims[i]) == 0)
                        return D_FIRST + i;
        return -1;
}

/* A category's id (-1 for ''), added when new; -2 on OOM. */
static int32_t cat_id(struct rcamirror *m, const char *c) {
        char **n;

        if (!*c)
                return -1;
        for (size_t i = 0; i < m->n_cats; i++)
                if (strcmp(m->cats[i], c) == 0)
                        return (int32_t) i;
        n = realloc(m->cats, (m->n_cats + 1) * sizeof(*n));
        if (!n)
                return -2;
        m->cats = n;
        n[m->n_cats] = strdup(c);
        return n[m->n_cats] ? (int32_t) m->n_cats++ : -2;
}

/* The service's slot for day, the days array grown to hold it. */
static struct dayrows *day_slot(struct svc *s, int32_t day) {
        if (!s->n_days) {
                s->days = calloc(1, sizeof(*s->days));
                if (!s->days)
                        return NULL;
                s->base = day;
                s->n_days = 1;
        }
        if (day < s->base) {
                size_t more = (size_t) (s->base - day);
                struct dayrows *n = calloc(s->n_days + more, sizeof(*n));

                if (!n)
                        return NULL;
                if (s->n_days)  /* days is NULL before the first */
                        memcpy(n + more, s->days, s->n_days * sizeof(*n));
                free(s->days);
                s->days = n;
                s->n_days += more;
                s->base = day;
        }
        if ((size_t) (day - s->base) >= s->n_days) {
                size_t want = (size_t) (day - s->base) + 1;
                struct dayrows *n = realloc(s->days, want * sizeof(*n));

                if (!n)
                        return NULL;
                memset(n + s->n_days, 0, (want - s->n_days) * sizeof(*n));
                s->days = n;
                s->n_days = want;
        }
        return &s->days[day - s->base];
}

int rcamirror_set_day(struct rcamirror *m, const char *service, int32_t day,
                      const struct rca_row *rows, size_t n) {
        int si = add_svc(m, service);
        struct crow *c = n ? calloc(n, sizeof(*c)) : NULL;
        struct dayrows *slot;

        if (si < 0 || (n && !c)) {
                free(c);
                return -ENOMEM;
        }
        for (size_t i = 0; i < n; i++) {
                int d = dim_index(rows[i].dimension);
                int32_t k = cat_id(m, rows[i].category);

                if (d < 0 || k == -2) {
                        free(c);
                        return d < 0 ? -EINVAL : -ENOMEM;
                }
                c[i] = (struct crow) { .dim = (int8_t) d, .cat = k,
                                       .incidents = rows[i].incidents,
                                       .primaries = rows[i].primaries,
                                       .resolved_us = rows[i].resolved_us,
                                       .open_incidents = rows[i].open_incidents,
                                       .open_opened_us = rows[i].open_opened_us };
        }
        slot = day_slot(&m->svcs[si], day);
        if (!slot) {
                free(c);
                return -ENOMEM;
        }
        free(slot->rows);
        slot->rows = c;
        slot->n = n;
        slot->set_at = ++m->sets;
        for (size_t i = 0; i < N_CACHE; i++)
                if (m->cache[i].valid && day >= m->cache[i].d0 && day < m->cache[i].d1)
                        m->cache[i].valid = false;
        for (size_t i = 0; i < N_DETAIL; i++)
                if (m->detail[i].loaded && m->detail[i].day == day)
                        detail_free(&m->detail[i]);
        return 0;
}

uint64_t rcamirror_detail_token(const struct rcamirror *m, int32_t day) {
        (void) day;
        return m->sets;
}

static int by_incident(const void *a, const void *b) {
        const struct rca_fact *x = *(const struct rca_fact *const *) a;
        const struct rca_fact *y = *(const struct rca_fact *const *) b;

        return (x->incident_id > y->incident_id) - (x->incident_id < y->incident_id);
}

int rcamirror_set_detail(struct rcamirror *m, int32_t day, uint64_t token,
                         const struct rca_fact *f, size_t n) {
        const struct rca_fact **order = n ? malloc(n * sizeof(*order)) : NULL;
        struct detail d = { .loaded = true, .day = day };
        size_t slot;
        int r = 0;

        for (size_t i = 0; i < m->n_svcs; i++) { /* a row of day set since: stale */
                const struct svc *s = &m->svcs[i];

                if (day >= s->base && (size_t) (day - s->base) < s->n_days &&
                    s->days[day - s->base].set_at > token) {
                        free(order);
                        return 0;
                }
        }
        d.incs = calloc(n + 1, sizeof(*d.incs));
        d.pairs = calloc(n + 1, sizeof(*d.pairs));
        if ((n && !order) || !d.incs || !d.pairs) {
                free(order);
                detail_free(&d);
                return -ENOMEM;
        }
        for (size_t i = 0; i < n; i++)
                order[i] = &f[i];
        if (n)
                qsort(order, n, sizeof(*order), by_incident);
        for (size_t i = 0, n_pairs = 0; i < n && r == 0; i++) {
                const struct rca_fact *x = order[i];
                struct inc *c;
                int dim, si;

                if (i == 0 || x->incident_id != order[i - 1]->incident_id) {
                        si = add_svc(m, x->service);
                        if (si < 0) {
                                r = -ENOMEM;
                                break;
                        }
                        d.incs[d.n++] = (struct inc) { .svc = si, .opened_us = x->opened_us,
                                                       .resolved_us = x->resolved_us,
                                                       .first = n_pairs };
                }
                c = &d.incs[d.n - 1];
                if (!x->dimension)
                        continue;
                dim = dim_index(x->dimension) - D_FIRST;
                if (dim < 0) {
                        r = -EINVAL;
                        break;
                }
                c->dims |= (uint8_t) (1u << dim);
                if (x->role && strcmp(x->role, "primary") == 0)
                        c->primary |= (uint8_t) (1u << dim);
                if (x->category && *x->category) {
                        int32_t k = cat_id(m, x->category);

                        if (k < 0) {
                                r = -ENOMEM;
                                break;
                        }
                        d.pairs[n_pairs].dim = (int8_t) (D_FIRST + dim);
                        d.pairs[n_pairs++].cat = k;
                        c->n++;
                }
        }
        free(order);
        if (r < 0) {
                detail_free(&d);
                return r;
        }
        slot = N_DETAIL;
        for (size_t i = 0; i < N_DETAIL; i++)
                if (m->detail[i].loaded && m->detail[i].day == day)
                        slot = i;
        if (slot == N_DETAIL) {
                slot = m->next_detail;
                m->next_detail = (m->next_detail + 1) % N_DETAIL;
        }
        detail_free(&m->detail[slot]);
        m->detail[slot] = d;
        return 0;
}

/* ------------------------------------------------------------------ sums */

struct rca_sums {
        struct cell *cells;     /* [dim][cat + 1] */
        size_t width;           /* n_cats + 1 */
        char **names;           /* the categories' names, [width - 1], in one block with them */
};

static struct cell *cell(const struct rca_sums *s, int dim, int32_t cat) {
        return &s->cells[(size_t) dim * s->width + (size_t) (cat + 1)];
}

static void add(struct rca_sums *s, int dim, int32_t cat, int64_t incidents, int64_t primaries,
                int64_t downtime_us) {
        struct cell *c = cell(s, dim, cat);

        c->incidents += incidents;
        c->primaries += primaries;
        c->downtime_us += downtime_us;
        c->present = true;
}

static int64_t floor_div(int64_t a, int64_t b) {
        return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

static const struct detail *find_detail(const struct rcamirror *m, int32_t day) {
        for (size_t i = 0; i < N_DETAIL; i++)
                if (m->detail[i].loaded && m->detail[i].day == day)
                        return &m->detail[i];
        return NULL;
}

/* The incidents opened in [a, b) (within one day) of service si (-1: all): dl_rca_parts. */
static void add_part(struct rca_sums *s, const struct detail *d, int si, int64_t a, int64_t b,
                     int64_t to_us) {
        for (size_t i = 0; i < d->n; i++) {
                const struct inc *c = &d->incs[i];
                int64_t down;

                if ((si >= 0 && c->svc != si) || c->opened_us < a || c->opened_us >= b)
                        continue;
                down = c->resolved_us != RCAMIRROR_OPEN ? c->resolved_us : to_us - c->opened_us;
                add(s, D_ALL, -1, 1, 0, down);
                if (c->dims)
                        add(s, D_ANY, -1, 1, 0, down);
                for (int k = 0; k < 4; k++)
                        if (c->dims & (1u << k))
                                add(s, D_FIRST + k, -1, 1, (c->primary >> k) & 1, down);
                for (size_t p = c->first; p < c->first + c->n; p++)
                        add(s, d->pairs[p].dim, d->pairs[p].cat, 1, 0, down);
        }
}

/* The rows of days [d0, d1) of v, open incidents' downtime counted to ref_us. */
static void add_days(struct rca_sums *s, const struct svc *v, int32_t d0, int32_t d1,
                     int64_t ref_us) {
        int32_t lo = d0 > v->base ? d0 : v->base;
        int32_t hi = v->base + (int32_t) v->n_days < d1 ? v->base + (int32_t) v->n_days : d1;

        for (int32_t day = lo; day < hi; day++) {
                const struct dayrows *r = &v->days[day - v->base];

                for (size_t i = 0; i < r->n; i++) {
                        const struct crow *c = &r->rows[i];

                        add(s, c->dim, c->cat, c->incidents, c->primaries,
                            c->resolved_us + c->open_incidents * ref_us - c->open_opened_us);
                        cell(s, c->dim, c->cat)->open += c->open_incidents;
                }
        }
}

/* round(num / den, places) of a numeric, scaled by 10^places: rounding half away from zero,
 * as numeric's. den > 0. As text (jsontext_decimal) it is what json_loads makes of
 * dl_rca_json's numbers. */
static int64_t rounded(int64_t num, int64_t den, int places) {
        int64_t scale = 1, q;
        __int128 n;
        bool neg = num < 0;

        for (int i = 0; i < places; i++)
                scale *= 10;
        n = (__int128) (neg ? -num : num) * scale;
        q = (int64_t) (n / den);
        if (2 * (n % den) >= den)
                q++;
        return neg ? -q : q;
}

struct ranked {
        const char *name;
        const struct cell *c;
};

static int by_incidents(const void *a, const void *b) {
        const struct ranked *x = a, *y = b;

        if (x->c->incidents != y->c->incidents)
                return x->c->incidents > y->c->incidents ? -1 : 1;
        return strcmp(x->name, y->name);
}

/* "name":integer, with the comma before it unless first. */
static int put_int(struct buf *b, const char *name, int64_t v, bool first) {
        int r = buf_puts(b, first ? "\"" : ",\"");

        if (r == 0)
                r = buf_puts(b, name);
        if (r == 0)
                r = buf_puts(b, "\":");
        return r ? r : jsontext_int(b, v);
}

static int put_seconds(struct buf *b, int64_t us) {
        int r = buf_puts(b, ",\"downtime_seconds\":");

        return r ? r : jsontext_decimal(b, rounded(us, 1000000, 3), 3);
}

/* One dimension's object: its figures and its categories, most incidents first. */
static int put_dimension(struct buf *b, const struct rca_sums *s, const struct ranked *d,
                         int64_t with, struct ranked *cats) {
        int dim = dim_index(d->name);
        size_t n = 0;
        int r = buf_puts(b, "{\"dimension\":");

        for (size_t c = 0; c + 1 < s->width; c++)
                if (cell(s, dim, (int32_t) c)->present)
                        cats[n++] = (struct ranked) { s->names[c], cell(s, dim, (int32_t) c) };
        if (n)
                qsort(cats, n, sizeof(*cats), by_incidents);
        if (r == 0)
                r = jsontext_string(b, d->name);
        if (r == 0)
                r = put_int(b, "incidents", d->c->incidents, false);
        if (r == 0)
                r = put_int(b, "primary", d->c->primaries, false);
        if (r == 0)
                r = buf_puts(b, ",\"share\":");
        if (r == 0)
                r = with > 0 ? jsontext_decimal(b, rounded(d->c->incidents, with, 4), 4)
                             : buf_puts(b, "null");
        if (r == 0)
                r = put_seconds(b, d->c->downtime_us);
        if (r == 0)
                r = buf_puts(b, ",\"categories\":[");
        for (size_t c = 0; c < n && r == 0; c++) {
                r = buf_puts(b, c ? ",{\"category\":" : "{\"category\":");
                if (r == 0)
                        r = jsontext_string(b, cats[c].name);
                if (r == 0)
                        r = put_int(b, "incidents", cats[c].c->incidents, false);
                if (r == 0)
                        r = put_seconds(b, cats[c].c->downtime_us);
                if (r == 0)
                        r = buf_puts(b, "}");
        }
        return r ? r : buf_puts(b, "]}");
}

int rca_sums_text(const struct rca_sums *s, struct buf *b) {
        int64_t all = cell(s, D_ALL, -1)->incidents, with = cell(s, D_ANY, -1)->incidents;
        struct ranked d[4], *cats = calloc(s->width, sizeof(*cats));
        int r = cats ? 0 : -ENOMEM;

        for (int k = 0; k < 4; k++)
                d[k] = (struct ranked) { dims[k], cell(s, D_FIRST + k, -1) };
        qsort(d, 4, sizeof(*d), by_incidents);
        if (r == 0)
                r = put_int(b, "incidents", all, true);
        if (r == 0)
                r = put_int(b, "incidents_with_factors", with, false);
        if (r == 0)
                r = buf_puts(b, ",\"dimensions\":[");
        for (int k = 0; k < 4 && r == 0; k++) {
                if (k)
                        r = buf_puts(b, ",");
                if (r == 0)
                        r = put_dimension(b, s, &d[k], with, cats);
        }
        free(cats);
        return r ? r : buf_puts(b, "]");
}

void rca_sums_free(struct rca_sums *s) {
        if (s) {
                free(s->cells);
                free(s->names);
                free(s);
        }
}

/* The category names, copied into s so that the sums outlive the mirror's lock. */
static int copy_names(const struct rcamirror *m, struct rca_sums *s) {
        size_t size = m->n_cats * sizeof(char *);
        char *at;

        for (size_t i = 0; i < m->n_cats; i++)
                size += strlen(m->cats[i]) + 1;
        s->names = malloc(size ? size : 1);
        if (!s->names)
                return -ENOMEM;
        at = (char *) (s->names + m->n_cats);
        for (size_t i = 0; i < m->n_cats; i++) {
                size_t len = strlen(m->cats[i]) + 1;

                s->names[i] = memcpy(at, m->cats[i], len);
                at += len;
        }
        return 0;
}

int rcamirror_sums(struct rcamirror *m, const char *service, int64_t from_us, int64_t to_us,
                   struct rca_sums **ret, int32_t *ret_missing_day) {
        /* the first midnight at or after from, the last at or before to */
        int64_t d0 = (floor_div(from_us - 1, DAY_US) + 1) * DAY_US;
        int64_t d1 = floor_div(to_us, DAY_US) * DAY_US;
        int64_t parts[2][2] = { { from_us, d0 <= d1 ? d0 : to_us }, { d1, to_us } };
        int n_parts = d0 <= d1 ? 2 : 1;
        int si = service ? find_svc(m, service) : -1;
        struct rca_sums *s;

        *ret = NULL;
        /* the edge days first, so that a missing one costs no sums */
        for (int p = 0; p < n_parts; p++)
                if (parts[p][0] < parts[p][1] &&
                    !find_detail(m, (int32_t) floor_div(parts[p][0], DAY_US))) {
                        *ret_missing_day = (int32_t) floor_div(parts[p][0], DAY_US);
                        return -ENOENT;
                }
        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->width = m->n_cats + 1;
        s->cells = calloc(N_DIMS * s->width, sizeof(*s->cells));
        if (!s->cells || copy_names(m, s) < 0) {
                rca_sums_free(s);
                return -ENOMEM;
        }
        if (!service || si >= 0) {
                int32_t w0 = (int32_t) (d0 / DAY_US), w1 = (int32_t) (d1 / DAY_US);
                struct daycache *c = NULL;

                for (size_t i = 0; d0 < d1 && i < N_CACHE; i++)
                        if (m->cache[i].valid && m->cache[i].svc == si && m->cache[i].d0 == w0 &&
                            m->cache[i].d1 == w1 &&
                            m->cache[i].width == s->width)
                                c = &m->cache[i];
                if (c)
                        memcpy(s->cells, c->cells, N_DIMS * s->width * sizeof(*s->cells));
                else if (d0 < d1) {
                        for (size_t v = 0; v < m->n_svcs; v++)
                                if (si < 0 || (int) v == si)
                                        add_days(s, &m->svcs[v], w0, w1, d1);
                        c = &m->cache[m->next_cache];
                        m->next_cache = (m->next_cache + 1) % N_CACHE;
                        free(c->cells);
                        *c = (struct daycache) { .svc = si, .d0 = w0, .d1 = w1,
                                                 .width = s->width,
                                                 .cells = malloc(N_DIMS * s->width *
                                                                 sizeof(*s->cells)) };
                        if (c->cells) {
                                memcpy(c->cells, s->cells, N_DIMS * s->width * sizeof(*s->cells));
                                c->valid = true;
                        }
                }
                for (int p = 0; p < n_parts; p++)
                        if (parts[p][0] < parts[p][1])
                                add_part(s, find_detail(m, (int32_t) floor_div(parts[p][0],
                                                                                DAY_US)),
                                         service ? si : -1, parts[p][0], parts[p][1], to_us);
        }
        for (size_t i = 0; i < N_DIMS * s->width; i++)      /* from d1 to the end */
                s->cells[i].downtime_us += s->cells[i].open * (to_us - d1);
        *ret = s;
        return 0;
}

int rcamirror_json(struct rcamirror *m, const char *service, int64_t from_us, int64_t to_us,
                   json_t **ret, int32_t *ret_missing_day) {
        struct rca_sums *s;
        struct buf b;
        int r = rcamirror_sums(m, service, from_us, to_us, &s, ret_missing_day);

        *ret = NULL;
        if (r < 0)
                return r;
        buf_init(&b, SIZE_MAX - 1);
        r = buf_puts(&b, "{");
        if (r == 0)
                r = rca_sums_text(s, &b);
        if (r == 0)
                r = buf_puts(&b, "}");
        if (r == 0)
                *ret = json_loads(b.data, 0, NULL);
        buf_free(&b);
        rca_sums_free(s);
        return *ret ? 0 : -ENOMEM;
}
