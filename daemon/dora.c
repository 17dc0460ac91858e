/* dora: the DORA read API and GET /metrics, over an in-memory mirror of the rollups. */
#include "dora.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../lib/buf.h"
#include "../lib/cube.h"
#include "../lib/doc.h"
#include "../lib/error.h"
#include "../lib/metrics.h"
#include "../lib/store.h"
#include "../lib/store_dora.h"
#include "../lib/timefmt.h"
#include "api.h"
#include "config.h"
#include "log.h"
#include "mirror.h"
#include "params.h"
#include "stats.h"
#include "writer.h"

#define DAY_US CUBE_DAY_US
#define MAX_ENVS CONFIG_ENV_LIST_MAX
#define MAX_ENV_LIST_BYTES CONFIG_ENV_LIST_MAX_BYTES
#define STRINGIFY_(x) #x
#define STRINGIFY(x) STRINGIFY_(x)
#define MAX_SPAN_DAYS 3660
#define METRICS_TAIL_MAX_BYTES (256u << 10) /* the counters after the DORA gauges */

static int64_t now_us(void) {
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* A bad parameter: -EBADMSG (400) naming it; the HTTP side logs the refusal. */
static int bad_param(struct error *err, const char *name, const char *why) {
        return error_set(err, EBADMSG, "invalid_parameter", name, "%s: %s", name, why);
}

/* A time parameter timefmt_parse() refused with r. */
static int bad_time(struct error *err, const char *name, int r) {
        return bad_param(err, name, r == -ERANGE ? "must be " TIMEFMT_RANGE_TEXT
                                                 : "must be an RFC 3339 time");
}

static int out_of_memory(struct error *err) {
        return error_set(err, ENOMEM, "unavailable", NULL, "Out of memory");
}

/* ------------------------------------------------------------------ parameters */

struct params {
        const char *service;            /* NULL: all */
        char env_buf[MAX_ENV_LIST_BYTES + 1];
        const char *envs[MAX_ENVS];
        size_t n_envs;
        bool unlinked;                  /* the set holds a production environment */
        char env_label[512];
        int64_t from_us, to_us;
        enum metrics_bands bands;
};

/* Splits a comma-separated list into buf/items. Returns the count (0 when empty), or
 * -E2BIG when it names more than max or does not fit buf: never a silent cut, which would
 * answer for fewer environments than were asked for. */
static int split_list(const char *s, char *buf, size_t buf_len, const char **items,
                      size_t max) {
        size_t n = 0;

        if (snprintf(buf, buf_len, "%s", s ? s : "") >= (int) buf_len)
                return -E2BIG;
        for (char *tok = buf, *next; tok; tok = next) {
                next = strchr(tok, ',');
                if (next)
                        *next++ = '\0';
                while (*tok == ' ')
                        tok++;
                for (size_t len = strlen(tok); len && tok[len - 1] == ' '; len--)
                        tok[len - 1] = '\0';
                if (!*tok)
                        continue;
                if (n == max)
                        return -E2BIG;
                items[n++] = tok;
        }
        return (int) n;
}

/* production_environments as a list; config.c refuses one split_list() cannot hold. */
static size_t production_list(const struct config *cfg, char *buf, size_t buf_len,
                              const char **items) {
        int n = split_list(cfg->production_environments, buf, buf_len, items, MAX_ENVS);

        return n < 0 ? 0 : (size_t) n;
}

/* service, environment, window | from/to, bands. Returns 0 or -EBADMSG. */
static int parse_params(const struct api_request *req, struct params *p, struct error *err) {
        const char *window = req->arg(req->ctx, "window"), *from = req->arg(req->ctx, "from");
        const char *to = req->arg(req->ctx, "to"), *env = req->arg(req->ctx, "environment");
        const char *bands = req->arg(req->ctx, "bands");
        const char *prod[MAX_ENVS];
        char prod_buf[512];
        size_t n_prod;
        int64_t now = now_us();
        int r;

        *p = (struct params) { .bands = METRICS_BANDS_2023 };
        p->service = req->arg(req->ctx, "service");
        if (p->service && !*p->service)
                return bad_param(err, "service", "must not be empty");
        n_prod = production_list(req->cfg, prod_buf, sizeof(prod_buf), prod);
        if (env) {
                r = split_list(env, p->env_buf, sizeof(p->env_buf), p->envs, MAX_ENVS);
                if (r < 0)
                        return bad_param(err, "environment", "names more than "
                                         STRINGIFY(MAX_ENVS) " environments or more than "
                                         STRINGIFY(MAX_ENV_LIST_BYTES) " bytes");
                if (r == 0)
                        return bad_param(err, "environment",
                                         "name one environment or a comma-separated list");
                p->n_envs = (size_t) r;
        } else {
                p->n_envs = production_list(req->cfg, p->env_buf, sizeof(p->env_buf), p->envs);
        }
        for (size_t i = 0; i < p->n_envs; i++) {
                for (size_t j = 0; j < n_prod; j++)
                        p->unlinked |= strcmp(p->envs[i], prod[j]) == 0;
                snprintf(p->env_label + strlen(p->env_label),
                         sizeof(p->env_label) - strlen(p->env_label), "%s%s", i ? "," : "",
                         p->envs[i]);
        }
        if (bands && metrics_bands_parse(bands, &p->bands) < 0)
                return bad_param(err, "bands", "must be 2021, 2023 or 2024");
        if (window && (from || to))
                return bad_param(err, "window", "give either window or from/to, not both");
        if (from || to) {
                if (from && (r = timefmt_parse(from, &p->from_us)) < 0)
                        return bad_time(err, "from", r);
                if (to && (r = timefmt_parse(to, &p->to_us)) < 0)
                        return bad_time(err, "to", r);
                if (!to)
                        p->to_us = now;
                if (!from)
                        p->from_us = p->to_us - 30 * DAY_US;
                if (p->from_us >= p->to_us)
                        return bad_param(err, from ? "from" : "to", "from must be before to");
        } else {
                long days = 30;

                if (window) {
                        char *end;

                        errno = 0;
                        days = strtol(window, &end, 10);
                        if (errno || end == window || strcmp(end, "d") != 0 || days < 1 ||
                            days > MAX_SPAN_DAYS)
                                return bad_param(err, "window",
                                                 "must be a number of days such as 7d, 30d or 90d");
                }
                p->to_us = now;
                p->from_us = now - days * DAY_US;
        }
        if (p->to_us - p->from_us > MAX_SPAN_DAYS * DAY_US)
                return bad_param(err, from ? "from" : "window",
                                 "the window is longer than 3660 days");
        return 0;
}

/* ------------------------------------------------------------------ JSON */

static json_t *number(double v) {
        return isnan(v) ? json_null() : json_real(v);
}

static json_t *string_or_null(const char *s) {
        return s ? json_string(s) : json_null();
}

static json_t *time_json(int64_t us) {
        char buf[TIMEFMT_LEN];

        return json_string(timefmt_format(us, buf));
}

/* Sets the seven metric objects of f on o. Returns 0 or -ENOMEM. */
static int set_figures(json_t *o, const struct metrics_figures *f, enum metrics_bands b) {
        int r = 0;

        r |= json_object_set_new(o, "deployment_frequency", json_pack(
                "{s:I,s:o,s:o}", "deployments", (json_int_t) f->deployments,
                "per_day", number(f->per_day),
                "band", string_or_null(metrics_band_deployment_frequency(b, f->per_day))));
        r |= json_object_set_new(o, "lead_time_for_changes", json_pack(
                "{s:I,s:o,s:o,s:o}", "changes", (json_int_t) f->changes,
                "median_seconds", number(f->lead_median), "p90_seconds", number(f->lead_p90),
                "band", string_or_null(metrics_band_lead_time(b, f->lead_median))));
        r |= json_object_set_new(o, "change_failure_rate", json_pack(
                "{s:I,s:I,s:o,s:o}", "deployments", (json_int_t) f->deployments,
                "failed_deployments", (json_int_t) f->failed, "rate", number(f->failure_rate),
                "band", string_or_null(metrics_band_change_failure_rate(b, f->failure_rate))));
        r |= json_object_set_new(o, "time_to_restore", json_pack(
                "{s:I,s:o,s:o}", "incidents", (json_int_t) f->incidents,
                "median_seconds", number(f->restore_median),
                "band", string_or_null(metrics_band_recovery_time(b, f->restore_median))));
        r |= json_object_set_new(o, "failed_deployment_recovery_time", json_pack(
                "{s:I,s:o,s:o}", "failed_deployments", (json_int_t) f->failed,
                "median_seconds", number(f->recovery_median),
                "band", string_or_null(metrics_band_recovery_time(b, f->recovery_median))));
        r |= json_object_set_new(o, "rework_rate", json_pack(
                "{s:I,s:I,s:o}", "deployments", (json_int_t) f->deployments,
                "rework_deployments", (json_int_t) f->rework, "rate", number(f->rework_rate)));
        r |= json_object_set_new(o, "change_control", json_pack(
                "{s:I,s:I,s:I,s:I,s:I,s:I,s:o}", "deployments", (json_int_t) f->controlled,
                "approved", (json_int_t) f->control[METRICS_APPROVED],
                "unauthorized", (json_int_t) f->control[METRICS_UNAUTHORIZED],
                "auto_created", (json_int_t) f->control[METRICS_AUTO_CREATED],
                "unrecorded", (json_int_t) f->control[METRICS_UNRECORDED],
                "emergency", (json_int_t) f->emergency,
                "approval_latency_median_seconds", number(f->approval_median)));
        return r ? -ENOMEM : 0;
}

static json_t *window_json(int64_t from_us, int64_t to_us) {
        double days = (double) (to_us - from_us) / (double) DAY_US;
        json_t *d = (to_us - from_us) % DAY_US == 0
                    ? json_integer((json_int_t) ((to_us - from_us) / DAY_US)) : json_real(days);

        return json_pack("{s:o,s:o,s:o}", "from", time_json(from_us), "to", time_json(to_us),
                         "days", d);
}

static struct cube_query query_of(const struct params *p, int64_t from, int64_t to, bool cache) {
        return (struct cube_query) { .service = p->service, .envs = p->envs, .n_envs = p->n_envs,
                                     .unlinked = p->unlinked, .from_us = from, .to_us = to,
                                     .cache = cache };
}

/* -EIO (503) from what the database or memory refused (cause, which may be err). */
static int unavailable(struct error *err, const struct error *cause, const char *what) {
        char msg[sizeof(cause->msg)];

        snprintf(msg, sizeof(msg), "%s", cause->msg[0] ? cause->msg : "Out of memory");
        log_warning("Failed to answer %s: %s", what, msg);
        return error_set(err, EIO, "unavailable", NULL, "%s", msg);
}

int dora_figures(const struct api *api, const struct api_request *req, json_t **ret_body,
                 struct error *err) {
        struct metrics_acc *acc = NULL;
        struct metrics_figures f;
        struct mirror_session s;
        struct params p;
        struct cube_query q;
        json_t *o;
        int r;

        r = parse_params(req, &p, err);
        if (r)
                return r;
        acc = malloc(sizeof(*acc));
        if (!acc)
                return out_of_memory(err);
        q = query_of(&p, p.from_us, p.to_us, true);
        r = mirror_begin(&s, api->mirror);
        if (r == 0) {
                r = mirror_sum(&s, &q, acc);
                mirror_end(&s);
        }
        if (r < 0) {
                free(acc);
                return unavailable(err, &s.err, "a DORA query");
        }
        metrics_figures(acc, (double) (p.to_us - p.from_us) / 1e6, &f);
        free(acc);
        o = json_pack("{s:o,s:s,s:s,s:o}", "service", string_or_null(p.service),
                      "environment", p.env_label, "bands", metrics_bands_name(p.bands),
                      "window", window_json(p.from_us, p.to_us));
        if (!o || set_figures(o, &f, p.bands) < 0) {
                json_decref(o);
                return out_of_memory(err);
        }
        *ret_body = o;
        return 0;
}

static int64_t floor_div(int64_t a, int64_t b) {
        return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

/* Day buckets start at UTC midnight, week buckets on Monday at UTC midnight; the first and
 * last are cut to the window. */
int dora_series(const struct api *api, const struct api_request *req, json_t **ret_body,
                struct error *err) {
        const char *bucket = req->arg(req->ctx, "bucket");
        struct metrics_acc *acc = NULL;
        json_t *buckets = NULL;
        struct mirror_session s;
        struct params p;
        int64_t width, offset, start, n_buckets;
        int r;

        r = parse_params(req, &p, err);
        if (r)
                return r;
        if (!bucket || strcmp(bucket, "day") == 0)
                width = DAY_US;
        else if (strcmp(bucket, "week") == 0)
                width = 7 * DAY_US;
        else
                return bad_param(err, "bucket", "must be day or week");
        /* 1970-01-01 was a Thursday: Mondays are 4 days after a multiple of 7. */
        offset = width == DAY_US ? 0 : 4 * DAY_US;
        start = floor_div(p.from_us - offset, width) * width + offset;
        n_buckets = (p.to_us - start + width - 1) / width;
        if (n_buckets > req->cfg->series_max_buckets) {
                char why[200];

                snprintf(why, sizeof(why), "the window holds %" PRId64 " %s buckets, more than "
                         "series_max_buckets (%ld): ask for a shorter window or wider buckets",
                         n_buckets, width == DAY_US ? "day" : "week",
                         req->cfg->series_max_buckets);
                return bad_param(err, "bucket", why);
        }
        acc = malloc(sizeof(*acc));
        buckets = json_array();
        if (!acc || !buckets) {
                free(acc);
                json_decref(buckets);
                return out_of_memory(err);
        }
        r = mirror_begin(&s, api->mirror);
        if (r == 0) {
                for (int64_t b = start; b < p.to_us && r == 0; b += width) {
                        int64_t lo = b > p.from_us ? b : p.from_us;
                        int64_t hi = b + width < p.to_us ? b + width : p.to_us;
                        struct cube_query q = query_of(&p, lo, hi, false);
                        struct metrics_figures f;
                        json_t *o;

                        r = mirror_sum(&s, &q, acc);
                        if (r < 0)
                                break;
                        metrics_figures(acc, (double) (hi - lo) / 1e6, &f);
                        o = json_pack("{s:o,s:o}", "from", time_json(lo), "to", time_json(hi));
                        if (!o || set_figures(o, &f, p.bands) < 0 ||
                            json_array_append_new(buckets, o) < 0) {
                                json_decref(o);
                                r = error_set(&s.err, ENOMEM, "unavailable", NULL,
                                              "Out of memory");
                        }
                }
                mirror_end(&s);
        }
        free(acc);
        if (r < 0) {
                json_decref(buckets);
                return unavailable(err, &s.err, "a DORA series");
        }
        *ret_body = json_pack("{s:o}", "buckets", buckets);
        return 0;
}

/* ------------------------------------------------------------------ lists */

struct list {
        json_t *items;
        const char *last_id;
        char last_id_buf[24];
        json_t *one;            /* the first row as an object */
};

/* A row as a JSON object, by the kinds the store gives. */
static json_t *row_json(const struct store_dora_row *r) {
        json_t *o = json_object();

        if (!o)
                return NULL;
        for (int c = 0; c < r->n; c++) {
                const char *v = r->values[c];
                json_t *j;

                if (!v)
                        j = json_null();
                else if (r->kinds[c] == 'n')
                        j = strchr(v, '.') || strchr(v, 'e') ? json_real(strtod(v, NULL))
                                                             : json_integer(strtoll(v, NULL, 10));
                else if (r->kinds[c] == 'b')
                        j = json_boolean(v[0] == 't');
                else if (r->kinds[c] == 'j')
                        j = json_loads(v, JSON_DECODE_ANY, NULL);
                else
                        j = json_string(v);
                if (!j || json_object_set_new(o, r->names[c], j) < 0) {
                        json_decref(o);
                        return NULL;
                }
        }
        return o;
}

static int add_item(void *ctx, const struct store_dora_row *r) {
        struct list *l = ctx;
        json_t *o = row_json(r);

        if (!o)
                return -ENOMEM;
        if (l->items) {
                if (json_array_append_new(l->items, o) < 0)
                        return -ENOMEM;
        } else {
                json_decref(l->one);
                l->one = o;
        }
        snprintf(l->last_id_buf, sizeof(l->last_id_buf), "%s", r->values[0] ? r->values[0] : "");
        l->last_id = l->last_id_buf;
        return 0;
}

struct list_call {
        enum store_dora_list which;
        const char *const *params;
        struct list *list;
        int rows;
};

static int run_list(struct store *store, void *ctx, struct error *err) {
        struct list_call *c = ctx;
        int r;

        if (c->list->items)
                json_array_clear(c->list->items);
        r = store_dora_list(store, c->which, c->params, add_item, c->list, err);
        if (r >= 0)
                c->rows = r;
        return r < 0 ? r : 0;
}

/* Runs a list query on a pooled connection (not under the mirror's lock). */
static int list_query(const struct api *api, struct list_call *c, struct error *err) {
        int r = api_with_store(api, run_list, c, err);

        if (r == -ENOMEM)
                error_set(err, ENOMEM, "unavailable", NULL, "Out of memory");
        return r;
}

/* An environment list as a PostgreSQL array literal into buf. */
static void env_array(const struct params *p, char *buf, size_t len) {
        size_t at = 0;

        at += (size_t) snprintf(buf, len, "{");
        for (size_t i = 0; i < p->n_envs && at < len; i++) {
                at += (size_t) snprintf(buf + at, len - at, "%s\"", i ? "," : "");
                for (const char *c = p->envs[i]; *c && at + 3 < len; c++) {
                        if (*c == '"' || *c == '\\')
                                buf[at++] = '\\';
                        buf[at++] = *c;
                }
                at += (size_t) snprintf(buf + at, len - at, "\"");
        }
        if (at < len)
                snprintf(buf + at, len - at, "}");
}

/* GET /api/v1/deployments and /api/v1/incidents */
static int list(const struct api *api, const struct api_request *req, bool deployments,
                json_t **ret_body, struct error *err) {
        const char *cursor = req->arg(req->ctx, "cursor");
        const char *since = req->arg(req->ctx, "since"), *service = req->arg(req->ctx, "service");
        char envs[1200], since_buf[24], cursor_buf[24], limit_buf[24];
        struct list l = { .items = json_array() };
        struct list_call c = { .list = &l };
        const char *params[5];
        struct params p;
        int64_t before = 0, since_us;
        int n = PARAMS_LIMIT_DEFAULT;
        int r;

        if (!l.items)
                return out_of_memory(err);
        /* The window parameters do not apply to lists; the environment ones do. */
        {
                const struct api_request plain = { .cfg = req->cfg, .arg = req->arg, .ctx = req->ctx };

                r = parse_params(&plain, &p, err);
        }
        if (r == 0)
                r = params_limit(req, &n, err);
        if (r == 0)
                r = params_cursor(req, &before, err);
        if (r == 0 && since && (r = timefmt_parse(since, &since_us)) < 0)
                r = bad_time(err, "since", r);
        if (r < 0) {
                json_decref(l.items);
                return r;
        }
        if (service && !*service)
                service = NULL;
        if (since)
                snprintf(since_buf, sizeof(since_buf), "%" PRId64, since_us);
        snprintf(cursor_buf, sizeof(cursor_buf), "%" PRId64, before);
        snprintf(limit_buf, sizeof(limit_buf), "%d", n);
        env_array(&p, envs, sizeof(envs));
        if (deployments) {
                params[0] = service, params[1] = envs, params[2] = since ? since_buf : NULL;
                params[3] = cursor ? cursor_buf : NULL, params[4] = limit_buf;
                c.which = STORE_DORA_DEPLOYMENTS;
        } else {
                params[0] = service, params[1] = since ? since_buf : NULL;
                params[2] = cursor ? cursor_buf : NULL, params[3] = limit_buf;
                c.which = STORE_DORA_INCIDENTS;
        }
        c.params = params;
        r = list_query(api, &c, err);
        if (r < 0) {
                json_decref(l.items);
                return unavailable(err, err, deployments ? "a deployment list"
                                                         : "an incident list");
        }
        *ret_body = json_pack("{s:o,s:o}", "items", l.items, "next_cursor",
                              c.rows == n && l.last_id ? json_string(l.last_id) : json_null());
        return 0;
}

int dora_deployments(const struct api *api, const struct api_request *req, json_t **ret_body,
                     struct error *err) {
        return list(api, req, true, ret_body, err);
}

int dora_incidents(const struct api *api, const struct api_request *req, json_t **ret_body,
                   struct error *err) {
        return list(api, req, false, ret_body, err);
}

int dora_deployment(const struct api *api, const struct api_request *req, json_t **ret_body,
                    struct error *err) {
        struct list l = { .items = NULL };
        struct list_call c = { .which = STORE_DORA_DEPLOYMENT, .list = &l };
        char id[24];
        const char *params[1] = { id };
        long long n;
        int r;

        if (req->param_len >= sizeof(id))
                return error_set(err, ENOENT, "not_found", NULL, "No such deployment");
        memcpy(id, req->param, req->param_len);
        id[req->param_len] = '\0';
        if (!params_positive(id, INT64_MAX, &n))
                return error_set(err, ENOENT, "not_found", NULL, "No such deployment");
        c.params = params;
        r = list_query(api, &c, err);
        if (r < 0) {
                json_decref(l.one);
                return unavailable(err, err, "a deployment");
        }
        if (!l.one)
                return error_set(err, ENOENT, "not_found", NULL, "No such deployment");
        *ret_body = l.one;
        return 0;
}

int dora_services(const struct api *api, const struct api_request *req, json_t **ret_body,
                  struct error *err) {
        struct list l = { .items = json_array() };
        struct list_call c = { .which = STORE_DORA_SERVICES, .list = &l };
        char prod_buf[512], envs[1200];
        struct params p = { .n_envs = 0 };
        const char *params[1] = { envs };
        int r;

        if (!l.items)
                return out_of_memory(err);
        p.n_envs = production_list(req->cfg, prod_buf, sizeof(prod_buf), p.envs);
        env_array(&p, envs, sizeof(envs));
        c.params = params;
        r = list_query(api, &c, err);
        if (r < 0) {
                json_decref(l.items);
                return unavailable(err, err, "the service list");
        }
        *ret_body = json_pack("{s:o}", "services", l.items);
        return 0;
}

/* ------------------------------------------------------------------ /metrics */

struct metric_series {
        char *service, *environment;
};

struct series_list {
        struct metric_series *items;
        size_t n, cap;
        int r;
};

static void add_series(void *ctx, const char *service, const char *environment) {
        struct series_list *l = ctx;

        if (!*environment || l->r < 0)
                return; /* unlinked incidents count within each production environment */
        if (l->n == l->cap) {
                size_t cap = l->cap ? 2 * l->cap : 64;
                struct metric_series *n = realloc(l->items, cap * sizeof(*n));

                if (!n) {
                        l->r = -ENOMEM;
                        return;
                }
                l->items = n;
                l->cap = cap;
        }
        l->items[l->n].service = strdup(service);
        l->items[l->n].environment = strdup(environment);
        l->n++;
        if (!l->items[l->n - 1].service || !l->items[l->n - 1].environment)
                l->r = -ENOMEM;
}

static int cmp_series(const void *a, const void *b) {
        const struct metric_series *x = a, *y = b;
        int c = strcmp(x->service, y->service);

        return c ? c : strcmp(x->environment, y->environment);
}

enum { G_DEPLOYMENTS, G_PER_DAY, G_LEAD_MEDIAN, G_LEAD_P90, G_CFR, G_RESTORE, G_RECOVERY,
       G_REWORK, G_CHANGES, G_INCIDENTS, G_FAILED, G_APPROVED_RATIO, G_APPROVED, G_UNAUTHORIZED,
       G_AUTO_CREATED, G_UNRECORDED, G_EMERGENCY, G_APPROVAL_LATENCY, _G_MAX };

static const struct gauge {
        const char *name, *help;
} gauges[_G_MAX] = {
        [G_DEPLOYMENTS] = { "doraloop_deployments", "Successful deployments in the last 30 days." },
        [G_PER_DAY] = { "doraloop_deployment_frequency_per_day",
                        "Successful deployments per day over the last 30 days." },
        [G_LEAD_MEDIAN] = { "doraloop_lead_time_for_changes_median_seconds",
                            "Median lead time for changes shipped in the last 30 days." },
        [G_LEAD_P90] = { "doraloop_lead_time_for_changes_p90_seconds",
                         "90th percentile lead time for changes shipped in the last 30 days." },
        [G_CFR] = { "doraloop_change_failure_ratio",
                    "Change failure rate over the last 30 days (0 to 1)." },
        [G_RESTORE] = { "doraloop_time_to_restore_median_seconds",
                        "Median time to restore service, incidents resolved in the last 30 days." },
        [G_RECOVERY] = { "doraloop_failed_deployment_recovery_median_seconds",
                         "Median failed deployment recovery time over the last 30 days." },
        [G_REWORK] = { "doraloop_rework_ratio",
                       "Rework rate over the last 30 days: rollback, hotfix or emergency-change "
                       "deployments (0 to 1)." },
        [G_CHANGES] = { "doraloop_changes_shipped", "Changes shipped in the last 30 days." },
        [G_INCIDENTS] = { "doraloop_incidents_resolved",
                          "Incidents resolved in the last 30 days." },
        [G_FAILED] = { "doraloop_failed_deployments",
                       "Failed deployments among those of the last 30 days." },
        /* change control: only where production deployments had a verdict */
        [G_APPROVED_RATIO] = { "doraloop_change_approved_ratio",
                               "Share of the last 30 days' production deployments that ran "
                               "under an approved change (0 to 1)." },
        [G_APPROVED] = { "doraloop_change_approved_deployments",
                         "Production deployments of the last 30 days under an approved change." },
        [G_UNAUTHORIZED] = { "doraloop_change_unauthorized_deployments",
                             "Production deployments of the last 30 days that named a change "
                             "not approved when they started." },
        [G_AUTO_CREATED] = { "doraloop_change_auto_created_deployments",
                             "Production deployments of the last 30 days that named no change; "
                             "a standard change was recorded." },
        [G_UNRECORDED] = { "doraloop_change_unrecorded_deployments",
                           "Production deployments of the last 30 days that named no change "
                           "(change_policy flag or off)." },
        [G_EMERGENCY] = { "doraloop_change_emergency_deployments",
                          "Production deployments of the last 30 days under an emergency change." },
        [G_APPROVAL_LATENCY] = { "doraloop_change_approval_latency_median_seconds",
                                 "Median time from a change request's first report to its "
                                 "approval, over the last 30 days' approved deployments." },
};

static double gauge_value(const struct metrics_figures *f, int g) {
        switch (g) {
        case G_DEPLOYMENTS: return (double) f->deployments;
        case G_PER_DAY: return f->per_day;
        case G_LEAD_MEDIAN: return f->lead_median;
        case G_LEAD_P90: return f->lead_p90;
        case G_CFR: return f->failure_rate;
        case G_RESTORE: return f->restore_median;
        case G_RECOVERY: return f->recovery_median;
        case G_REWORK: return f->rework_rate;
        case G_CHANGES: return (double) f->changes;
        case G_INCIDENTS: return (double) f->incidents;
        case G_FAILED: return (double) f->failed;
        }
        if (f->controlled == 0)
                return NAN;
        switch (g) {
        case G_APPROVED_RATIO: return f->approved_rate;
        case G_APPROVED: return (double) f->control[METRICS_APPROVED];
        case G_UNAUTHORIZED: return (double) f->control[METRICS_UNAUTHORIZED];
        case G_AUTO_CREATED: return (double) f->control[METRICS_AUTO_CREATED];
        case G_UNRECORDED: return (double) f->control[METRICS_UNRECORDED];
        case G_EMERGENCY: return (double) f->emergency;
        case G_APPROVAL_LATENCY: return f->approval_median;
        }
        return NAN;
}

/* GET /metrics as a stream: the figures of every series are summed up front (under the
 * mirror's lock, on a read thread), their text is written as the client reads it, a line at
 * a time, so the answer's size never lives in memory. */
struct metric_labels {
        char service[METRICS_LABEL_MAX], environment[METRICS_LABEL_MAX];
};

struct dora_metrics {
        size_t n;                       /* series */
        struct metric_labels *labels;
        struct metrics_figures *figs;
        struct buf tail;                /* the daemon's own counters, a few KB */
        int gauge;                      /* the next line: of this gauge, */
        size_t next;                    /* of this series; SIZE_MAX: its HELP and TYPE */
        size_t tail_at;
        char line[64 + 2 * METRICS_LABEL_MAX + 64];
        size_t line_len, line_at;
};

struct dora_metrics *dora_metrics_free(struct dora_metrics *m) {
        if (!m)
                return NULL;
        free(m->labels);
        free(m->figs);
        buf_free(&m->tail);
        free(m);
        return NULL;
}

static void free_series(struct series_list *l) {
        for (size_t i = 0; i < l->n; i++) {
                free(l->items[i].service);
                free(l->items[i].environment);
        }
        free(l->items);
        *l = (struct series_list) { .n = 0 };
}

/* Sums the last 30 days of every series of l into figs (under the session's lock). */
static int sum_series(struct mirror_session *s, const struct config *cfg,
                      const struct series_list *l, struct metrics_figures *figs) {
        struct metrics_acc *acc = malloc(sizeof(*acc));
        const char *prod[MAX_ENVS];
        char prod_buf[MAX_ENV_LIST_BYTES + 1];
        size_t n_prod = production_list(cfg, prod_buf, sizeof(prod_buf), prod);
        int64_t now = now_us();
        int r = 0;

        if (!acc)
                return -ENOMEM;
        for (size_t i = 0; i < l->n && r == 0; i++) {
                const char *envs[1] = { l->items[i].environment };
                struct cube_query q = { .service = l->items[i].service, .envs = envs, .n_envs = 1,
                                        .from_us = now - 30 * DAY_US, .to_us = now,
                                        .cache = false };

                for (size_t j = 0; j < n_prod; j++)
                        q.unlinked |= strcmp(prod[j], envs[0]) == 0;
                r = mirror_sum(s, &q, acc);
                if (r == 0)
                        metrics_figures(acc, 30 * 86400.0, &figs[i]);
        }
        free(acc);
        return r;
}

/* The DORA figures of every known (service, environment) over the last 30 days, and their
 * labels, into m. */
static int load_dora(const struct api *api, const struct config *cfg, struct dora_metrics *m,
                     struct error *err) {
        struct series_list l = { .n = 0 };
        struct mirror_session s;
        int r;

        r = mirror_begin(&s, api->mirror);
        if (r < 0) {
                *err = s.err;
                return r;
        }
        mirror_series(&s, add_series, &l);
        r = l.r;
        if (r == 0 && l.n) {
                qsort(l.items, l.n, sizeof(*l.items), cmp_series);
                m->figs = calloc(l.n, sizeof(*m->figs));
                m->labels = malloc(l.n * sizeof(*m->labels));
                if (!m->figs || !m->labels)
                        r = -ENOMEM;
        }
        if (r == 0)
                r = sum_series(&s, cfg, &l, m->figs);
        if (r < 0 && r != -ENOMEM)
                *err = s.err;
        mirror_end(&s);
        for (size_t i = 0; i < l.n && r == 0; i++) {
                r = metrics_label(l.items[i].service, m->labels[i].service);
                if (r == 0)
                        r = metrics_label(l.items[i].environment, m->labels[i].environment);
        }
        if (r == 0)
                m->n = l.n;
        free_series(&l);
        if (r == -ENOMEM || r == -EIO)
                r = error_set(err, -r, "unavailable", NULL, r == -ENOMEM ? "Out of memory" :
                              "The rollups could not be read");
        return r;
}

/* Makes m->line the next line of the gauges; false after the last one. */
static bool next_gauge_line(struct dora_metrics *m) {
        while (m->gauge < _G_MAX) {
                const struct gauge *g = &gauges[m->gauge];
                int n;

                if (m->next == SIZE_MAX) {
                        n = snprintf(m->line, sizeof(m->line), "# HELP %s %s\n# TYPE %s gauge\n",
                                     g->name, g->help, g->name);
                        m->next = 0;
                } else if (m->next < m->n) {
                        size_t i = m->next++;
                        double v = gauge_value(&m->figs[i], m->gauge);

                        if (isnan(v))
                                continue;
                        n = snprintf(m->line, sizeof(m->line),
                                     "%s{service=\"%s\",environment=\"%s\"} %.17g\n", g->name,
                                     m->labels[i].service, m->labels[i].environment, v);
                } else {
                        m->gauge++;
                        m->next = SIZE_MAX;
                        continue;
                }
                /* The line holds the longest name and two labels; a cut would be a bug. */
                m->line_len = n > 0 && (size_t) n < sizeof(m->line) ? (size_t) n : 0;
                m->line_at = 0;
                return true;
        }
        return false;
}

size_t dora_metrics_read(struct dora_metrics *m, char *buf, size_t max) {
        size_t out = 0;

        while (out < max) {
                size_t n;

                if (m->line_at < m->line_len) {
                        n = m->line_len - m->line_at < max - out ? m->line_len - m->line_at
                                                                 : max - out;
                        memcpy(buf + out, m->line + m->line_at, n);
                        m->line_at += n;
                        out += n;
                } else if (!next_gauge_line(m)) {
                        n = m->tail.len - m->tail_at < max - out ? m->tail.len - m->tail_at
                                                                 : max - out;
                        if (n)
                                memcpy(buf + out, m->tail.data + m->tail_at, n);
                        m->tail_at += n;
                        out += n;
                        break;
                }
        }
        return out;
}

static int put(struct buf *b, const char *s) {
        return buf_puts(b, s);
}

static int write_writer(const struct api *api, struct buf *out) {
        struct writer_stats st;
        char text[1800];
        uint64_t n_syncs = mirror_syncs(api->mirror);

        snprintf(text, sizeof(text),
                 "# HELP doraloop_dora_mirror_syncs_total Reads of the rollup rows changed since "
                 "the previous one.\n"
                 "# TYPE doraloop_dora_mirror_syncs_total counter\n"
                 "doraloop_dora_mirror_syncs_total %" PRIu64 "\n", n_syncs);
        if (buf_puts(out, text) < 0)
                return -ENOMEM;

        if (!api->writer)
                return 0;
        writer_get_stats(api->writer, &st);
        snprintf(text, sizeof(text),
                 "# HELP doraloop_deliveries_stored_total Deliveries committed to PostgreSQL.\n"
                 "# TYPE doraloop_deliveries_stored_total counter\n"
                 "doraloop_deliveries_stored_total %" PRIu64 "\n"
                 "# HELP doraloop_deliveries_duplicate_total Redeliveries recognised and not counted.\n"
                 "# TYPE doraloop_deliveries_duplicate_total counter\n"
                 "doraloop_deliveries_duplicate_total %" PRIu64 "\n"
                 "# HELP doraloop_deliveries_failed_total Deliveries whose batch failed to commit.\n"
                 "# TYPE doraloop_deliveries_failed_total counter\n"
                 "doraloop_deliveries_failed_total %" PRIu64 "\n"
                 "# HELP doraloop_batches_total Group commits.\n"
                 "# TYPE doraloop_batches_total counter\n"
                 "doraloop_batches_total %" PRIu64 "\n"
                 "# HELP doraloop_ingest_queue_depth Deliveries waiting for the writer.\n"
                 "# TYPE doraloop_ingest_queue_depth gauge\n"
                 "doraloop_ingest_queue_depth %zu\n",
                 st.stored, st.duplicates, st.failed, st.batches, st.queued);
        return put(out, text);
}

int dora_metrics(const struct api *api, const struct api_request *req,
                 struct dora_metrics **ret_metrics, struct error *err) {
        struct dora_metrics *m;
        int r;

        *ret_metrics = NULL;
        m = calloc(1, sizeof(*m));
        if (!m)
                return out_of_memory(err);
        m->next = SIZE_MAX;
        buf_init(&m->tail, METRICS_TAIL_MAX_BYTES);
        r = load_dora(api, req->cfg, m, err);
        if (r == 0)
                r = stats_write(&m->tail);
        if (r == 0)
                r = write_writer(api, &m->tail);
        if (r < 0) {
                dora_metrics_free(m);
                return unavailable(err, err, "GET /metrics");
        }
        *ret_metrics = m;
        return 0;
}
