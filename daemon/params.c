/* params: query parameters, parsed once here: the scope every figure and list shares
 * (service, environment, window or from/to, bands), limit and cursor. */
#include "params.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../lib/cube.h"
#include "../lib/error.h"
#include "../lib/timefmt.h"
#include "api.h"
#include "config.h"

#define DAY_US CUBE_DAY_US
#define MAX_ENVS PARAMS_ENVS_MAX
#define MAX_ENV_LIST_BYTES CONFIG_ENV_LIST_MAX_BYTES
#define STRINGIFY_(x) #x
#define STRINGIFY(x) STRINGIFY_(x)
#define MAX_SPAN_DAYS 3660

static int64_t now_us(void) {
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int params_bad(struct error *err, const char *name, const char *why) {
        return error_set(err, EBADMSG, "invalid_parameter", name, "%s: %s", name, why);
}

int params_bad_time(struct error *err, const char *name, int r) {
        return params_bad(err, name, r == -ERANGE ? "must be " TIMEFMT_RANGE_TEXT
                                                  : "must be an RFC 3339 time");
}

bool params_positive(const char *v, long long max, long long *ret) {
        char *end;
        long long n;

        if (!v || !*v)
                return false;
        errno = 0;
        n = strtoll(v, &end, 10);
        if (errno || *end || n < 1 || n > max)
                return false;
        *ret = n;
        return true;
}

int params_limit(const struct api_request *req, int *ret, struct error *err) {
        const char *v = req->arg(req->ctx, "limit");
        long long n = PARAMS_LIMIT_DEFAULT;

        if (v && !params_positive(v, PARAMS_LIMIT_MAX, &n))
                return error_set(err, EBADMSG, "invalid_parameter", "limit",
                                 "limit: must be a whole number from 1 to %d", PARAMS_LIMIT_MAX);
        *ret = (int) n;
        return 0;
}

int params_cursor(const struct api_request *req, int64_t *ret, struct error *err) {
        const char *v = req->arg(req->ctx, "cursor");
        long long n = 0;

        if (v && !params_positive(v, INT64_MAX, &n))
                return error_set(err, EBADMSG, "invalid_parameter", "cursor",
                                 "cursor: is not one this API gave out");
        *ret = n;
        return 0;
}



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

size_t params_production(const struct config *cfg, char *buf, size_t buf_len,
                              const char **items) {
        int n = split_list(cfg->production_environments, buf, buf_len, items, MAX_ENVS);

        return n < 0 ? 0 : (size_t) n;
}

int params_window(const struct api_request *req, struct params_window *p, struct error *err) {
        const char *window = req->arg(req->ctx, "window"), *from = req->arg(req->ctx, "from");
        const char *to = req->arg(req->ctx, "to"), *env = req->arg(req->ctx, "environment");
        const char *bands = req->arg(req->ctx, "bands");
        const char *prod[MAX_ENVS];
        char prod_buf[512];
        size_t n_prod;
        int64_t now = now_us();
        int r;

        *p = (struct params_window) { .bands = METRICS_BANDS_2023 };
        p->service = req->arg(req->ctx, "service");
        if (p->service && !*p->service)
                return params_bad(err, "service", "must not be empty");
        n_prod = params_production(req->cfg, prod_buf, sizeof(prod_buf), prod);
        if (env) {
                r = split_list(env, p->env_buf, sizeof(p->env_buf), p->envs, MAX_ENVS);
                if (r < 0)
                        return params_bad(err, "environment", "names more than "
                                         STRINGIFY(MAX_ENVS) " environments or more than "
                                         STRINGIFY(MAX_ENV_LIST_BYTES) " bytes");
                if (r == 0)
                        return params_bad(err, "environment",
                                         "name one environment or a comma-separated list");
                p->n_envs = (size_t) r;
        } else {
                p->n_envs = params_production(req->cfg, p->env_buf, sizeof(p->env_buf), p->envs);
        }
        for (size_t i = 0; i < p->n_envs; i++) {
                for (size_t j = 0; j < n_prod; j++)
                        p->unlinked |= strcmp(p->envs[i], prod[j]) == 0;
                snprintf(p->env_label + strlen(p->env_label),
                         sizeof(p->env_label) - strlen(p->env_label), "%s%s", i ? "," : "",
                         p->envs[i]);
        }
        if (bands && metrics_bands_parse(bands, &p->bands) < 0)
                return params_bad(err, "bands", "must be 2021, 2023 or 2024");
        if (window && (from || to))
                return params_bad(err, "window", "give either window or from/to, not both");
        if (from || to) {
                if (from && (r = timefmt_parse(from, &p->from_us)) < 0)
                        return params_bad_time(err, "from", r);
                if (to && (r = timefmt_parse(to, &p->to_us)) < 0)
                        return params_bad_time(err, "to", r);
                if (!to)
                        p->to_us = now;
                if (!from)
                        p->from_us = p->to_us - 30 * DAY_US;
                if (p->from_us >= p->to_us)
                        return params_bad(err, from ? "from" : "to", "from must be before to");
        } else {
                long days = 30;

                if (window) {
                        char *end;

                        errno = 0;
                        days = strtol(window, &end, 10);
                        if (errno || end == window || strcmp(end, "d") != 0 || days < 1 ||
                            days > MAX_SPAN_DAYS)
                                return params_bad(err, "window",
                                                 "must be a number of days such as 7d, 30d or 90d");
                }
                p->to_us = now;
                p->from_us = now - days * DAY_US;
        }
        if (p->to_us - p->from_us > MAX_SPAN_DAYS * DAY_US)
                return params_bad(err, from ? "from" : "window",
                                 "the window is longer than 3660 days");
        return 0;
}

int params_key(const struct api_request *req, char *buf, const char *what, struct error *err) {
        if (req->param_len > PARAMS_KEY_MAX)
                return error_set(err, ENOENT, "not_found", NULL, "No such %s", what);
        memcpy(buf, req->param, req->param_len);
        buf[req->param_len] = '\0';
        return 0;
}
