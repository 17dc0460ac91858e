/* event: the source-neutral rows a delivery normalizes into. */
#include "event.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

struct event *event_list_add(struct event_list *l, enum event_kind kind) {
        struct event *e;

        if (l->n >= EVENT_LIST_MAX)
                return NULL;
        if (l->n == l->cap) {
                size_t cap = l->cap ? l->cap * 2 : 8;
                struct event *p = realloc(l->items, cap * sizeof(*p));

                if (!p)
                        return NULL;
                l->items = p;
                l->cap = cap;
        }
        e = &l->items[l->n++];
        memset(e, 0, sizeof(*e));
        e->kind = kind;
        switch (kind) {
        case EVENT_CHANGE:
                e->change.committed_at = TIME_UNSET;
                break;
        case EVENT_DEPLOYMENT:
                e->deployment.started_at = e->deployment.finished_at = TIME_UNSET;
                e->deployment.updated_at = TIME_UNSET;
                break;
        case EVENT_INCIDENT:
                e->incident.opened_at = e->incident.resolved_at = TIME_UNSET;
                e->incident.updated_at = TIME_UNSET;
                break;
        case EVENT_CHANGE_REQUEST:
                e->change_request.planned_start = e->change_request.planned_end = TIME_UNSET;
                e->change_request.updated_at = TIME_UNSET;
                break;
        case EVENT_OBSERVATION:
                e->observation.occurred_at = e->observation.resolved_at = TIME_UNSET;
                e->observation.updated_at = TIME_UNSET;
                e->observation.count = 1;
                break;
        case EVENT_FACTORS:
                e->factors.updated_at = TIME_UNSET;
                break;
        case EVENT_PROBLEM:
                e->problem.opened_at = e->problem.resolved_at = TIME_UNSET;
                e->problem.updated_at = TIME_UNSET;
                break;
        case _EVENT_MAX:
                break;
        }
        return e;
}

static void free_strv(char **v, size_t n) {
        for (size_t i = 0; i < n; i++)
                free(v[i]);
        free(v);
}

static void event_free_fields(struct event *e) {
        switch (e->kind) {
        case EVENT_CHANGE: {
                struct event_change *c = &e->change;
                free(c->service), free(c->repo), free(c->sha), free(c->branch);
                free(c->author), free(c->message);
                free_strv(c->files, c->n_files);
                break;
        }
        case EVENT_DEPLOYMENT: {
                struct event_deployment *d = &e->deployment;
                free(d->key), free(d->service), free(d->environment), free(d->status);
                free(d->sha), free(d->change_request);
                free_strv(d->commits, d->n_commits);
                break;
        }
        case EVENT_INCIDENT: {
                struct event_incident *i = &e->incident;
                free(i->key), free(i->service), free(i->title), free(i->status);
                free(i->severity), free(i->root_cause), free(i->caused_by_deployment);
                free(i->caused_by_sha), free(i->change_request);
                free_strv(i->customers, i->n_customers);
                break;
        }
        case EVENT_CHANGE_REQUEST: {
                struct event_change_request *c = &e->change_request;
                free(c->key), free(c->title), free(c->status), free(c->change_type);
                free(c->risk), free(c->actor);
                free_strv(c->services, c->n_services);
                break;
        }
        case EVENT_OBSERVATION: {
                struct event_observation *o = &e->observation;
                free(o->key), free(o->kind), free(o->service), free(o->feature);
                free(o->customer), free(o->summary), free(o->url);
                free_strv(o->incidents, o->n_incidents);
                break;
        }
        case EVENT_FACTORS: {
                struct event_factors *f = &e->factors;
                free(f->subject), free(f->key), free(f->service);
                for (size_t i = 0; i < f->n; i++)
                        free(f->items[i].dimension), free(f->items[i].category),
                                free(f->items[i].role);
                free(f->items);
                free_strv(f->links, f->n_links);
                break;
        }
        case EVENT_PROBLEM: {
                struct event_problem *p = &e->problem;
                free(p->key), free(p->service), free(p->summary), free(p->status);
                free(p->workaround);
                free_strv(p->incidents, p->n_incidents);
                break;
        }
        case _EVENT_MAX:
                break;
        }
}

void event_list_clear(struct event_list *l) {
        for (size_t i = 0; i < l->n; i++)
                event_free_fields(&l->items[i]);
        free(l->items);
        *l = (struct event_list) { 0 };
}

/* One identifier of one kind of row and its maximum length. */
struct bound {
        enum event_kind kind;
        const char *field;      /* the database column */
        size_t offset;          /* of its char * in struct event */
        size_t max;
};

#define BOUND(kind, member, field, max) { kind, field, offsetof(struct event, member), max }

static const struct bound bounds[] = {
        BOUND(EVENT_CHANGE, change.service, "service", EVENT_NAME_MAX),
        BOUND(EVENT_CHANGE, change.sha, "sha", EVENT_SHA_MAX),
        BOUND(EVENT_DEPLOYMENT, deployment.key, "key", EVENT_KEY_MAX),
        BOUND(EVENT_DEPLOYMENT, deployment.service, "service", EVENT_NAME_MAX),
        BOUND(EVENT_DEPLOYMENT, deployment.environment, "environment", EVENT_NAME_MAX),
        BOUND(EVENT_DEPLOYMENT, deployment.status, "status", EVENT_CATEGORY_MAX),
        BOUND(EVENT_DEPLOYMENT, deployment.sha, "sha", EVENT_SHA_MAX),
        BOUND(EVENT_DEPLOYMENT, deployment.change_request, "change_request", EVENT_KEY_MAX),
        BOUND(EVENT_INCIDENT, incident.key, "key", EVENT_KEY_MAX),
        BOUND(EVENT_INCIDENT, incident.service, "service", EVENT_NAME_MAX),
        BOUND(EVENT_INCIDENT, incident.status, "status", EVENT_CATEGORY_MAX),
        BOUND(EVENT_INCIDENT, incident.severity, "severity", EVENT_CATEGORY_MAX),
        BOUND(EVENT_INCIDENT, incident.root_cause, "root_cause", EVENT_CATEGORY_MAX),
        BOUND(EVENT_INCIDENT, incident.caused_by_deployment, "caused_by_deployment",
              EVENT_KEY_MAX),
        BOUND(EVENT_INCIDENT, incident.caused_by_sha, "caused_by_sha", EVENT_SHA_MAX),
        BOUND(EVENT_INCIDENT, incident.change_request, "change_request", EVENT_KEY_MAX),
        BOUND(EVENT_CHANGE_REQUEST, change_request.key, "key", EVENT_KEY_MAX),
        BOUND(EVENT_CHANGE_REQUEST, change_request.status, "status", EVENT_CATEGORY_MAX),
        BOUND(EVENT_CHANGE_REQUEST, change_request.change_type, "change_type",
              EVENT_CATEGORY_MAX),
        BOUND(EVENT_CHANGE_REQUEST, change_request.risk, "risk", EVENT_CATEGORY_MAX),
        BOUND(EVENT_OBSERVATION, observation.key, "key", EVENT_KEY_MAX),
        BOUND(EVENT_OBSERVATION, observation.kind, "kind", EVENT_CATEGORY_MAX),
        BOUND(EVENT_OBSERVATION, observation.service, "service", EVENT_NAME_MAX),
        BOUND(EVENT_OBSERVATION, observation.feature, "feature", EVENT_NAME_MAX),
        BOUND(EVENT_OBSERVATION, observation.customer, "customer", EVENT_NAME_MAX),
        BOUND(EVENT_FACTORS, factors.key, "key", EVENT_KEY_MAX),
        BOUND(EVENT_FACTORS, factors.service, "service", EVENT_NAME_MAX),
        BOUND(EVENT_PROBLEM, problem.key, "key", EVENT_KEY_MAX),
        BOUND(EVENT_PROBLEM, problem.service, "service", EVENT_NAME_MAX),
        BOUND(EVENT_PROBLEM, problem.status, "status", EVENT_CATEGORY_MAX),
};

static const char *const kind_names[_EVENT_MAX] = {
        [EVENT_CHANGE] = "change",
        [EVENT_DEPLOYMENT] = "deployment",
        [EVENT_INCIDENT] = "incident",
        [EVENT_CHANGE_REQUEST] = "change request",
        [EVENT_OBSERVATION] = "observation",
        [EVENT_FACTORS] = "factor set",
        [EVENT_PROBLEM] = "problem",
};

/* The message gives the length, never the value: it is logged and answered. */
static int check_value(const struct event *e, const char *field, const char *v, size_t max,
                       struct error *err) {
        size_t n = v ? strlen(v) : 0;

        if (n <= max)
                return 0;
        return error_set(err, EBADMSG, "invalid_payload", field,
                         "%s %s is %zu bytes long; at most %zu are accepted",
                         kind_names[e->kind], field, n, max);
}

static int check_values(const struct event *e, const char *field, char *const *v, size_t n,
                        size_t max, struct error *err) {
        int r = 0;

        for (size_t i = 0; i < n && r == 0; i++)
                r = check_value(e, field, v[i], max, err);
        return r;
}

static int check_event(const struct event *e, struct error *err) {
        int r = 0;

        for (size_t i = 0; i < sizeof(bounds) / sizeof(bounds[0]) && r == 0; i++)
                if (bounds[i].kind == e->kind)
                        r = check_value(e, bounds[i].field,
                                        *(char *const *) ((const char *) e + bounds[i].offset),
                                        bounds[i].max, err);
        if (r == 0 && e->kind == EVENT_DEPLOYMENT)
                r = check_values(e, "commits", e->deployment.commits, e->deployment.n_commits,
                                 EVENT_SHA_MAX, err);
        if (r == 0 && e->kind == EVENT_CHANGE_REQUEST)
                r = check_values(e, "services", e->change_request.services,
                                 e->change_request.n_services, EVENT_NAME_MAX, err);
        if (r == 0 && e->kind == EVENT_OBSERVATION)
                r = check_values(e, "incidents", e->observation.incidents,
                                 e->observation.n_incidents, EVENT_KEY_MAX, err);
        if (r == 0 && e->kind == EVENT_INCIDENT)
                r = check_values(e, "customers", e->incident.customers,
                                 e->incident.n_customers, EVENT_NAME_MAX, err);
        if (r == 0 && e->kind == EVENT_PROBLEM)
                r = check_values(e, "incidents", e->problem.incidents, e->problem.n_incidents,
                                 EVENT_KEY_MAX, err);
        if (r == 0 && e->kind == EVENT_FACTORS)
                r = check_values(e, "links", e->factors.links, e->factors.n_links,
                                 EVENT_KEY_MAX, err);
        return r;
}

int event_list_check(const struct event_list *l, struct error *err) {
        int r = 0;

        for (size_t i = 0; i < l->n && r == 0; i++)
                r = check_event(&l->items[i], err);
        return r;
}

char *event_strdup(const char *s, bool *ok) {
        char *p;

        if (!s)
                return NULL;
        p = strdup(s);
        if (!p)
                *ok = false;
        return p;
}
