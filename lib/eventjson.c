/* eventjson: normalized rows as JSON. */
#include "eventjson.h"

#include "event.h"

static json_t *str(const char *s) {
        return s ? json_string(s) : json_null();
}

static json_t *tm(int64_t us) {
        char buf[TIMEFMT_LEN];

        return us == TIME_UNSET ? json_null() : json_string(timefmt_format(us, buf));
}

/* NULL when any element cannot be written (OOM, not UTF-8): never a list that lacks one. */
static json_t *strv(char **v, size_t n) {
        json_t *a = json_array();

        for (size_t i = 0; a && i < n; i++)
                if (json_array_append_new(a, str(v[i])) < 0) {
                        json_decref(a);
                        return NULL;
                }
        return a;
}

static json_t *factors_json(const struct event_factors *f) {
        json_t *a = json_array();

        for (size_t i = 0; a && i < f->n; i++)
                if (json_array_append_new(a, json_pack(
                            "{s:o,s:o,s:o}", "dimension", str(f->items[i].dimension),
                            "category", str(f->items[i].category), "role",
                            str(f->items[i].role))) < 0) {
                        json_decref(a);
                        return NULL;
                }
        return a;
}

static json_t *dump_one(const struct event *e) {
        switch (e->kind) {
        case EVENT_CHANGE: {
                const struct event_change *c = &e->change;
                return json_pack("{s:s,s:o,s:o,s:o,s:o,s:o,s:o,s:o}", "kind", "change",
                                 "service", str(c->service), "repo", str(c->repo), "sha",
                                 str(c->sha), "branch", str(c->branch), "author", str(c->author),
                                 "message", str(c->message), "committed_at",
                                 tm(c->committed_at));
        }
        case EVENT_DEPLOYMENT: {
                const struct event_deployment *d = &e->deployment;
                return json_pack("{s:s,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:b,s:b,s:o}",
                                 "kind", "deployment", "key", str(d->key), "service",
                                 str(d->service), "environment", str(d->environment), "status",
                                 str(d->status), "sha", str(d->sha), "change_request",
                                 str(d->change_request), "started_at", tm(d->started_at),
                                 "finished_at", tm(d->finished_at), "updated_at",
                                 tm(d->updated_at), "rollback", d->rollback, "hotfix",
                                 d->hotfix, "commits", strv(d->commits, d->n_commits));
        }
        case EVENT_INCIDENT: {
                const struct event_incident *i = &e->incident;
                json_t *o = json_pack("{s:s,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o}",
                                 "kind", "incident", "key", str(i->key), "service",
                                 str(i->service), "title", str(i->title), "status",
                                 str(i->status), "severity", str(i->severity), "root_cause",
                                 str(i->root_cause), "caused_by_deployment",
                                 str(i->caused_by_deployment), "caused_by_sha",
                                 str(i->caused_by_sha), "change_request",
                                 str(i->change_request), "opened_at", tm(i->opened_at),
                                 "resolved_at", tm(i->resolved_at), "updated_at",
                                 tm(i->updated_at));

                /* Only when named, so that the rows of every earlier fixture read as they did. */
                if (o && i->customers &&
                    json_object_set_new(o, "customers", strv(i->customers, i->n_customers)) < 0) {
                        json_decref(o);
                        return NULL;
                }
                return o;
        }
        case EVENT_CHANGE_REQUEST: {
                const struct event_change_request *c = &e->change_request;
                return json_pack("{s:s,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o}", "kind",
                                 "change_request", "key", str(c->key), "title", str(c->title),
                                 "status", str(c->status), "change_type", str(c->change_type),
                                 "risk", str(c->risk), "services",
                                 strv(c->services, c->n_services), "planned_start",
                                 tm(c->planned_start), "planned_end", tm(c->planned_end),
                                 "updated_at", tm(c->updated_at), "actor", str(c->actor));
        }
        case EVENT_OBSERVATION: {
                const struct event_observation *o = &e->observation;
                return json_pack("{s:s,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:I,s:o,s:o,s:o,s:o,s:b}",
                                 "kind", "observation", "key", str(o->key), "observation_kind",
                                 str(o->kind), "service", str(o->service), "feature",
                                 str(o->feature), "customer", str(o->customer), "summary",
                                 str(o->summary), "url", str(o->url), "count",
                                 (json_int_t) o->count, "occurred_at", tm(o->occurred_at),
                                 "resolved_at", tm(o->resolved_at), "updated_at",
                                 tm(o->updated_at), "incidents",
                                 strv(o->incidents, o->n_incidents), "deleted", o->deleted);
        }
        case EVENT_FACTORS: {
                const struct event_factors *f = &e->factors;
                return json_pack("{s:s,s:o,s:o,s:o,s:o,s:o,s:o}", "kind", "factors",
                                 "subject", str(f->subject), "key", str(f->key), "service",
                                 str(f->service), "factors", factors_json(f), "links",
                                 strv(f->links, f->n_links), "updated_at",
                                 tm(f->updated_at));
        }
        case EVENT_PROBLEM: {
                const struct event_problem *p = &e->problem;
                return json_pack("{s:s,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:b}", "kind",
                                 "problem", "key", str(p->key), "service", str(p->service),
                                 "status", str(p->status), "summary", str(p->summary),
                                 "workaround", str(p->workaround), "opened_at",
                                 tm(p->opened_at), "resolved_at", tm(p->resolved_at),
                                 "updated_at", tm(p->updated_at), "incidents",
                                 strv(p->incidents, p->n_incidents), "deleted", p->deleted);
        }
        case _EVENT_MAX:
                break;
        }
        return NULL;
}

json_t *eventjson_dump(const struct event_list *l) {
        json_t *a = json_array();

        for (size_t i = 0; a && i < l->n; i++) {
                json_t *o = dump_one(&l->items[i]);

                if (!o || json_array_append_new(a, o) < 0) {
                        json_decref(a);
                        return NULL;
                }
        }
        return a;
}
