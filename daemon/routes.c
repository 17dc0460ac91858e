/* routes: the route table, its matching and its auth checks; every request passes here. */
#include "routes.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "../lib/error.h"
#include "decision.h"
#include "dora.h"
#include "gate.h"
#include "health.h"
#include "insights_api.h"
#include "lists.h"
#include "prometheus.h"
#include "rca.h"
#include "replay.h"
#include "reply.h"
#include "review.h"
#include "support.h"

/* One line per method and path. Patterns are exact but for {name}, one non-empty segment
 * handed to the handler as req->param, or {name+}, one or more (the last placeholder of
 * its pattern). Routes of one path are adjacent. The first pattern a path fits owns it:
 * the methods of the routes after it with other patterns do not apply (a POST's
 * /api/v1/insights/{id+}/decision comes before the GET of /api/v1/insights/{id+}, which
 * would fit the same path; so a GET there is a 405, not a read of insight "ID/decision"). */
static const struct route routes[] = {
        { "POST", "/hooks/{source}",           AUTH_NONE,  RUNS_INTAKE,  NULL, NULL },
        { "GET",  "/",                         AUTH_NONE,  RUNS_PAGE,    NULL, NULL },
        { "GET",  "/healthz",                  AUTH_NONE,  RUNS_NOW,     health_alive, NULL },
        { "GET",  "/readyz",                   AUTH_NONE,  RUNS_NOW,     health_ready, NULL },
        { "GET",  "/metrics",                  AUTH_API,   RUNS_METRICS, NULL, prometheus_metrics },
        { "GET",  "/api/v1/dora",              AUTH_API,   RUNS_READ,    dora_figures, NULL },
        { "GET",  "/api/v1/dora/series",       AUTH_API,   RUNS_READ,    dora_series, NULL },
        { "GET",  "/api/v1/rca",               AUTH_API,   RUNS_READ,    rca_figures, NULL },
        { "GET",  "/api/v1/services",          AUTH_API,   RUNS_READ,    lists_services, NULL },
        { "GET",  "/api/v1/deployments",       AUTH_API,   RUNS_READ,    lists_deployments, NULL },
        { "GET",  "/api/v1/deployments/{id}",  AUTH_API,   RUNS_READ,    lists_deployment, NULL },
        { "GET",  "/api/v1/incidents",         AUTH_API,   RUNS_READ,    lists_incidents, NULL },
        { "GET",  "/api/v1/changes",           AUTH_API,   RUNS_READ,    lists_changes, NULL },
        { "GET",  "/api/v1/changes/{key}",     AUTH_API,   RUNS_READ,    lists_change, NULL },
        { "GET",  "/api/v1/changes/{key}/gate", AUTH_API,  RUNS_READ,    gate_answer, NULL },
        { "GET",  "/api/v1/deliveries",        AUTH_API,   RUNS_READ,    lists_deliveries, NULL },
        { "GET",  "/api/v1/support",           AUTH_API,   RUNS_READ,    support_figures, NULL },
        { "GET",  "/api/v1/observations",      AUTH_API,   RUNS_READ,    lists_observations, NULL },
        { "GET",  "/api/v1/problems",          AUTH_API,   RUNS_READ,    lists_problems, NULL },
        { "GET",  "/api/v1/problems/{key}",    AUTH_API,   RUNS_READ,    lists_problem, NULL },
        { "GET",  "/api/v1/insights",          AUTH_API,   RUNS_READ,    insights_list, NULL },
        { "POST", "/api/v1/insights/{id+}/decision", AUTH_TRIAGE, RUNS_WRITE, decision_post, NULL },
        { "GET",  "/api/v1/insights/{id+}",    AUTH_API,   RUNS_READ,    insights_one, NULL },
        { "GET",  "/api/v1/review",            AUTH_API,   RUNS_READ,    review_agenda, NULL },
        { "GET",  "/api/v1/replay",            AUTH_ADMIN, RUNS_READ,    replay_get, NULL },
        { "POST", "/api/v1/replay",            AUTH_ADMIN, RUNS_READ,    replay_post, NULL },
        { "POST", "/api/v1/import",            AUTH_ADMIN, RUNS_IMPORT,  NULL, NULL },
};

#define N_ROUTES (sizeof(routes) / sizeof(routes[0]))

/* Whether path fits pattern; then the {..} segment's place. */
static bool fits(const char *pattern, const char *path, size_t *ret_at, size_t *ret_len) {
        const char *p = pattern, *s = path;

        *ret_len = 0;
        while (*p) {
                if (*p == '{' && strstr(p, "+}") == strchr(p, '}') - 1) {
                        /* {name+}: one or more segments, up to the literal rest of the
                         * pattern at the path's end (an insight's id holds '/', which a
                         * client's %2F reaches here as, decoded) */
                        const char *rest = strchr(p, '}') + 1;
                        size_t left = strlen(s), tail = strlen(rest);

                        if (left <= tail || strcmp(s + left - tail, rest) != 0)
                                return false;
                        *ret_at = (size_t) (s - path);
                        *ret_len = left - tail;
                        return true;
                }
                if (*p == '{') {
                        const char *end = s;

                        while (*end && *end != '/')
                                end++;
                        if (end == s)
                                return false;
                        *ret_at = (size_t) (s - path);
                        *ret_len = (size_t) (end - s);
                        s = end;
                        p = strchr(p, '}');
                        p = p ? p + 1 : "";
                        continue;
                }
                if (*p++ != *s++)
                        return false;
        }
        return *s == '\0';
}

static bool takes(const struct route *r, const char *method) {
        return strcmp(r->method, method) == 0 ||
               (strcmp(r->method, "GET") == 0 && strcmp(method, "HEAD") == 0);
}

/* The Allow value of every route of pattern ("GET, HEAD, POST"). */
static void allow_of(const char *pattern, char *buf, size_t len) {
        buf[0] = '\0';
        for (size_t i = 0; i < N_ROUTES; i++) {
                if (strcmp(routes[i].pattern, pattern) != 0)
                        continue;
                snprintf(buf + strlen(buf), len - strlen(buf), "%s%s%s", buf[0] ? ", " : "",
                         routes[i].method,
                         strcmp(routes[i].method, "GET") == 0 ? ", HEAD" : "");
        }
}

int routes_decide(const char *method, const char *path, const struct config *cfg,
                  const char *authorization, struct route_match *ret, struct error *err) {
        const struct route *known = NULL;
        size_t at = 0, len = 0;

        *ret = (struct route_match) { .route = NULL };
        for (size_t i = 0; i < N_ROUTES; i++) {
                if (known ? strcmp(routes[i].pattern, known->pattern) != 0
                          : !fits(routes[i].pattern, path, &at, &len))
                        continue;
                known = &routes[i];
                if (!takes(&routes[i], method))
                        continue;
                *ret = (struct route_match) { .route = &routes[i], .param_at = at,
                                              .param_len = len };
                return auth_check(cfg, routes[i].auth, authorization, err);
        }
        if (!known)
                return error_set(err, ENOENT, "not_found", NULL, "No such endpoint");
        allow_of(known->pattern, ret->allow, sizeof(ret->allow));
        return error_set(err, EOPNOTSUPP, "method_not_allowed", NULL, "Use %s on this path",
                         ret->allow);
}

unsigned routes_answer(const struct route_match *m, const struct api *api,
                       const struct api_request *req, json_t **ret_body,
                       enum route_form *ret_form, struct error *err) {
        struct api_request with_param = *req;
        int r;

        *ret_body = NULL;
        with_param.param = m->param_len ? req->path + m->param_at : NULL;
        with_param.param_len = m->param_len;
        r = m->route->json(api, &with_param, ret_body, err);
        *ret_form = !json_is_string(*ret_body) ? FORM_JSON
                    : r == REPLY_MARKDOWN ? FORM_MARKDOWN
                    : r == REPLY_JSON_TEXT ? FORM_JSON_TEXT : FORM_JSON;
        if (r < 0 && !*ret_body)
                *ret_body = reply_error_body(err);
        return reply_status(r);
}
