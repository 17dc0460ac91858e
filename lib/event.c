/* event: the source-neutral rows a delivery normalizes into. */
#include "event.h"

#include <stdlib.h>
#include <string.h>

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
                break;
        }
        case EVENT_CHANGE_REQUEST: {
                struct event_change_request *c = &e->change_request;
                free(c->key), free(c->title), free(c->status), free(c->change_type);
                free(c->risk), free(c->actor);
                free_strv(c->services, c->n_services);
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

char *event_strdup(const char *s, bool *ok) {
        char *p;

        if (!s)
                return NULL;
        p = strdup(s);
        if (!p)
                *ok = false;
        return p;
}
