/* generic: doraloop's own JSON body (API.md, "Generic source body") for any other CI/CD
 * system or script. Bearer token; Idempotency-Key header, else the body's SHA-256, is the
 * delivery id; the body's "type" is the event. */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "../doc.h"
#include "../error.h"
#include "../event.h"
#include "../hook.h"
#include "../normalize.h"
#include "../rca.h"
#include "../source.h"
#include "../verify.h"

/* What its keys set (keys[] below). */
struct generic_options {
        const char *token;              /* read by http.c, through the config */
};

extern const struct source source_generic;

static int verify(const struct hook_request *req, const char *secrets, struct error *err) {
        return verify_token(verify_bearer_token(req), secrets, err);
}

static int identify(const struct hook_request *req, json_t *doc, char **ret_delivery_id,
                    char **ret_event, struct error *err) {
        return source_identify(req, hook_header(req, "Idempotency-Key"), "Idempotency-Key",
                               true, doc_string(doc, "type"), "type",
                               ret_delivery_id, ret_event, err);
}

/* Whether value is one of the NULL-terminated choices; else -EBADMSG naming the field. */
static int one_of(const char *value, const char *field, const char *const *choices,
                  struct error *err) {
        if (!value)
                return 0;
        for (size_t i = 0; choices[i]; i++)
                if (strcmp(value, choices[i]) == 0)
                        return 0;
        return error_set(err, EBADMSG, "invalid_payload", field, "%s '%.40s' is not one of the "
                         "documented values", field, value);
}

static int sha_field(json_t *obj, const char *path, bool required, const char **ret,
                     struct error *err) {
        int r = normalize_string(obj, path, required, ret, err);

        if (r == 0 && *ret && !normalize_is_sha(*ret))
                return error_set(err, EBADMSG, "invalid_payload", path,
                                 "%s must be a 40 (or 64) hex digit commit sha", path);
        return r;
}

/* The later of two times (TIME_UNSET is the smallest). */
static int64_t latest(int64_t a, int64_t b) {
        return a > b ? a : b;
}

static int add_change(struct event_list *out, const char *service, const char *sha,
                      int64_t at, const char *message) {
        struct event *e = event_list_add(out, EVENT_CHANGE);
        bool ok = true;

        if (!e)
                return -ENOMEM;
        e->change.service = event_strdup(service, &ok);
        e->change.sha = event_strdup(sha, &ok);
        e->change.message = event_strdup(message, &ok);
        e->change.committed_at = at;
        return ok ? 0 : -ENOMEM;
}

static int deployment(json_t *doc, struct event_list *out, struct error *err) {
        static const char *const statuses[] = { "pending", "in_progress", "success", "failure",
                                                "canceled", NULL };
        const char *id, *service, *env, *status, *sha, *change;
        int64_t started, finished;
        bool rollback, hotfix, ok = true;
        json_t *commits;
        struct event_deployment d = { 0 };
        struct event *e;
        int r;

        if ((r = normalize_string(doc, "id", true, &id, err)) < 0 ||
            (r = normalize_string(doc, "service", true, &service, err)) < 0 ||
            (r = normalize_string(doc, "environment", true, &env, err)) < 0 ||
            (r = normalize_string(doc, "status", true, &status, err)) < 0 ||
            (r = one_of(status, "status", statuses, err)) < 0 ||
            (r = sha_field(doc, "sha", false, &sha, err)) < 0 ||
            (r = normalize_string(doc, "change_request", false, &change, err)) < 0 ||
            (r = normalize_time(doc, "started_at", false, &started, err)) < 0 ||
            (r = normalize_time(doc, "finished_at", false, &finished, err)) < 0 ||
            (r = normalize_bool(doc, "rollback", &rollback, err)) < 0 ||
            (r = normalize_bool(doc, "hotfix", &hotfix, err)) < 0 ||
            (r = normalize_container(doc, "commits", JSON_ARRAY, &commits, err)) < 0)
                return r;
        if (started == TIME_UNSET && finished == TIME_UNSET)
                return error_set(err, EBADMSG, "invalid_payload", "started_at",
                                 "a deployment needs started_at or finished_at");
        if (json_array_size(commits) > EVENT_LIST_MAX - 1)
                return error_set(err, EBADMSG, "invalid_payload", "commits",
                                 "commits lists more than %d commits", EVENT_LIST_MAX - 1);

        /* The commits it ships are changes in their own right, and listed on it. Without a
         * list (NULL, not empty) the store derives what it shipped by ancestry. */
        if (commits) {
                d.commits = calloc(json_array_size(commits) + 1, sizeof(char *));
                if (!d.commits)
                        return -ENOMEM;
        }
        for (size_t i = 0; i < json_array_size(commits); i++) {
                json_t *c = json_array_get(commits, i);
                const char *csha, *message;
                int64_t at;

                if (!json_is_object(c))
                        r = error_set(err, EBADMSG, "invalid_payload", "commits",
                                      "commits must hold objects");
                else if ((r = sha_field(c, "sha", true, &csha, err)) == 0 &&
                         (r = normalize_time(c, "timestamp", true, &at, err)) == 0 &&
                         (r = normalize_string(c, "message", false, &message, err)) == 0 &&
                         (r = add_change(out, service, csha, at, message)) == 0)
                        d.commits[d.n_commits++] = event_strdup(csha, &ok);
                if (r < 0 || !ok)
                        break;
        }
        e = r < 0 || !ok ? NULL : event_list_add(out, EVENT_DEPLOYMENT);
        if (!e) {
                for (size_t i = 0; i < d.n_commits; i++)
                        free(d.commits[i]);
                free(d.commits);
                return r < 0 ? r : -ENOMEM;
        }
        d.key = event_strdup(id, &ok);
        d.service = event_strdup(service, &ok);
        d.environment = event_strdup(env, &ok);
        d.status = event_strdup(status, &ok);
        d.sha = event_strdup(sha, &ok);
        d.change_request = event_strdup(change, &ok);
        d.started_at = started;
        d.finished_at = finished;
        /* A body has no time of its own: its latest time orders it, so "started" then
         * "finished" updates converge whatever order they arrive in. */
        d.updated_at = latest(started, finished);
        d.rollback = rollback;
        d.hotfix = hotfix;
        e->deployment = d;
        return ok ? (int) out->n : -ENOMEM;
}

static int change(json_t *doc, struct event_list *out, struct error *err) {
        const char *service, *sha, *message;
        int64_t at;
        int r;

        if ((r = normalize_string(doc, "service", true, &service, err)) < 0 ||
            (r = sha_field(doc, "sha", true, &sha, err)) < 0 ||
            (r = normalize_time(doc, "timestamp", true, &at, err)) < 0 ||
            (r = normalize_string(doc, "message", false, &message, err)) < 0)
                return r;
        r = add_change(out, service, sha, at, message);
        return r < 0 ? r : 1;
}

/* A body's array of non-empty strings at field (absent or null: *ret NULL), at most max
 * of them, copied into *ret (owned, n in *ret_n); -EBADMSG naming the field otherwise. */
static int strings(json_t *doc, const char *field, size_t max, char ***ret, size_t *ret_n,
                   struct error *err) {
        json_t *a;
        bool ok = true;
        int r = normalize_container(doc, field, JSON_ARRAY, &a, err);

        *ret = NULL, *ret_n = 0;
        if (r < 0 || !a)
                return r;
        if (json_array_size(a) > max)
                return error_set(err, EBADMSG, "invalid_payload", field,
                                 "%s lists more than %zu values", field, max);
        for (size_t i = 0; i < json_array_size(a); i++) {
                const char *v = json_string_value(json_array_get(a, i));

                if (!v || !*v)
                        return error_set(err, EBADMSG, "invalid_payload", field,
                                         "%s[%zu] must be a non-empty string", field, i);
        }
        *ret = calloc(json_array_size(a) + 1, sizeof(char *));
        if (!*ret)
                return -ENOMEM;
        for (size_t i = 0; i < json_array_size(a); i++)
                (*ret)[(*ret_n)++] = event_strdup(json_string_value(json_array_get(a, i)), &ok);
        return ok ? 0 : -ENOMEM;
}

/* An incident body's "contributing_factors" (absent: the factors held stay) as the set of
 * the incident just added, which is the list's last event. */
static int incident_factors(json_t *doc, const struct event *incident,
                            struct event_list *out, struct error *err) {
        struct event_factors set = { 0 };
        char *key, *service;
        json_t *factors;
        int64_t updated;
        int r;

        r = normalize_container(doc, "contributing_factors", JSON_ARRAY, &factors, err);
        if (r == 0 && !factors)
                return 0;
        if (r == 0)
                r = rca_from_array(factors, "contributing_factors", &set, err);
        if (r < 0) {
                rca_clear(&set);
                /* API.md: a bad factor in a generic body is a 400, not a stored error;
                 * -ERANGE is what delivery_normalize() refuses at intake. */
                return r == -EBADMSG ? -ERANGE : r;
        }
        /* rca_emit may move the list's array: copy what it reads from the incident. */
        key = strdup(incident->incident.key);
        service = strdup(incident->incident.service);
        updated = incident->incident.updated_at;
        r = key && service ? rca_emit(out, "incident", key, service, updated, &set) : -ENOMEM;
        if (!key || !service)
                rca_clear(&set);
        free(key), free(service);
        return r;
}

static int incident(json_t *doc, struct event_list *out, struct error *err) {
        static const char *const statuses[] = { "open", "resolved", NULL };
        static const char *const causes[] = { "organizational", "technological", "partner",
                                              "process", NULL };
        const char *id, *service, *status, *severity, *cause, *by_deploy, *by_sha, *title;
        int64_t opened, resolved;
        json_t *caused_by;
        bool ok = true;
        struct event *e;
        int r;

        if ((r = normalize_string(doc, "id", true, &id, err)) < 0 ||
            (r = normalize_string(doc, "service", true, &service, err)) < 0 ||
            (r = normalize_string(doc, "status", true, &status, err)) < 0 ||
            (r = one_of(status, "status", statuses, err)) < 0 ||
            (r = normalize_string(doc, "title", false, &title, err)) < 0 ||
            (r = normalize_time(doc, "opened_at", true, &opened, err)) < 0 ||
            (r = normalize_time(doc, "resolved_at", false, &resolved, err)) < 0 ||
            (r = normalize_string(doc, "severity", false, &severity, err)) < 0 ||
            (r = normalize_string(doc, "root_cause_category", false, &cause, err)) < 0 ||
            (r = one_of(cause, "root_cause_category", causes, err)) < 0 ||
            (r = normalize_container(doc, "caused_by", JSON_OBJECT, &caused_by, err)) < 0 ||
            (r = normalize_string(caused_by, "deployment", false, &by_deploy, err)) < 0 ||
            (r = sha_field(caused_by, "sha", false, &by_sha, err)) < 0)
                return r;
        if (strcmp(status, "resolved") == 0 && resolved == TIME_UNSET)
                return error_set(err, EBADMSG, "invalid_payload", "resolved_at",
                                 "a resolved incident needs resolved_at");
        e = event_list_add(out, EVENT_INCIDENT);
        if (!e)
                return -ENOMEM;
        e->incident.key = event_strdup(id, &ok);
        e->incident.service = event_strdup(service, &ok);
        e->incident.title = event_strdup(title, &ok);
        e->incident.status = event_strdup(status, &ok);
        e->incident.severity = event_strdup(severity, &ok);
        e->incident.root_cause = event_strdup(cause, &ok);
        e->incident.caused_by_deployment = event_strdup(by_deploy, &ok);
        e->incident.caused_by_sha = event_strdup(by_sha, &ok);
        e->incident.opened_at = opened;
        e->incident.resolved_at = strcmp(status, "resolved") == 0 ? resolved : TIME_UNSET;
        e->incident.updated_at = latest(opened, e->incident.resolved_at);
        if (!ok)
                return -ENOMEM;
        r = strings(doc, "customers", EVENT_CUSTOMERS_MAX, &e->incident.customers,
                    &e->incident.n_customers, err);
        if (r < 0)
                return r == -EBADMSG ? -ERANGE : r;
        r = incident_factors(doc, e, out, err);
        return r < 0 ? r : (int) out->n;
}

static int change_request(json_t *doc, struct event_list *out, struct error *err) {
        static const char *const statuses[] = { "pending", "approved", "declined",
                                                "implementing", "completed", "canceled", NULL };
        static const char *const types[] = { "standard", "normal", "emergency", NULL };
        static const char *const risks[] = { "low", "medium", "high", NULL };
        const char *id, *service, *status, *type, *risk, *title, *actor;
        int64_t start, end, updated;
        json_t *services;
        bool ok = true;
        struct event *e;
        int r;

        if ((r = normalize_string(doc, "id", true, &id, err)) < 0 ||
            (r = normalize_string(doc, "service", false, &service, err)) < 0 ||
            (r = normalize_container(doc, "services", JSON_ARRAY, &services, err)) < 0 ||
            (r = normalize_string(doc, "status", true, &status, err)) < 0 ||
            (r = one_of(status, "status", statuses, err)) < 0 ||
            (r = normalize_string(doc, "change_type", false, &type, err)) < 0 ||
            (r = one_of(type, "change_type", types, err)) < 0 ||
            (r = normalize_string(doc, "risk", false, &risk, err)) < 0 ||
            (r = one_of(risk, "risk", risks, err)) < 0 ||
            (r = normalize_string(doc, "title", false, &title, err)) < 0 ||
            (r = normalize_time(doc, "planned_start", false, &start, err)) < 0 ||
            (r = normalize_time(doc, "planned_end", false, &end, err)) < 0 ||
            (r = normalize_time(doc, "updated_at", true, &updated, err)) < 0 ||
            (r = normalize_string(doc, "actor", false, &actor, err)) < 0)
                return r;
        if (json_array_size(services) > 100)
                return error_set(err, EBADMSG, "invalid_payload", "services",
                                 "services lists more than 100 services");
        for (size_t i = 0; i < json_array_size(services); i++)
                if (!json_is_string(json_array_get(services, i)))
                        return error_set(err, EBADMSG, "invalid_payload", "services",
                                         "services must hold strings");
        e = event_list_add(out, EVENT_CHANGE_REQUEST);
        if (!e)
                return -ENOMEM;
        e->change_request.key = event_strdup(id, &ok);
        e->change_request.title = event_strdup(title, &ok);
        e->change_request.status = event_strdup(status, &ok);
        e->change_request.change_type = event_strdup(type ? type : "normal", &ok);
        e->change_request.risk = event_strdup(risk, &ok);
        e->change_request.services = calloc(json_array_size(services) + 1, sizeof(char *));
        if (!e->change_request.services)
                return -ENOMEM;
        if (service)
                e->change_request.services[e->change_request.n_services++] =
                        event_strdup(service, &ok);
        for (size_t i = 0; i < json_array_size(services); i++) {
                const char *name = json_string_value(json_array_get(services, i));

                if (!service || strcmp(name, service) != 0)
                        e->change_request.services[e->change_request.n_services++] =
                                event_strdup(name, &ok);
        }
        e->change_request.planned_start = start;
        e->change_request.planned_end = end;
        e->change_request.updated_at = updated;
        e->change_request.actor = event_strdup(actor, &ok);
        return ok ? 1 : -ENOMEM;
}

/* Support load (API.md, "What comes in"): one observation, of a kind, weighed by count. */
#define OBSERVATION_COUNT_MAX 1000000000

static int observation_count(json_t *doc, int64_t *ret, struct error *err) {
        json_t *v = json_object_get(doc, "count");

        *ret = 1;
        if (!v || json_is_null(v))
                return 0;
        if (!json_is_integer(v) || json_integer_value(v) < 0 ||
            json_integer_value(v) > OBSERVATION_COUNT_MAX)
                return error_set(err, EBADMSG, "invalid_payload", "count",
                                 "count must be an integer from 0 to %d", OBSERVATION_COUNT_MAX);
        *ret = json_integer_value(v);
        return 0;
}

static int observation(json_t *doc, struct event_list *out, struct error *err) {
        static const char *const kinds[] = { "support", "feedback", "usage", "ux", NULL };
        const char *id, *kind, *service, *feature, *customer, *summary, *url, *incident;
        int64_t occurred, resolved, updated, count;
        struct event_observation *o;
        struct event *e;
        bool ok = true;
        int r;

        if ((r = normalize_string(doc, "id", true, &id, err)) < 0 ||
            (r = normalize_string(doc, "kind", true, &kind, err)) < 0 ||
            (r = one_of(kind, "kind", kinds, err)) < 0 ||
            (r = normalize_string(doc, "service", true, &service, err)) < 0 ||
            (r = normalize_string(doc, "feature", false, &feature, err)) < 0 ||
            (r = normalize_string(doc, "customer", false, &customer, err)) < 0 ||
            (r = normalize_string(doc, "summary", false, &summary, err)) < 0 ||
            (r = normalize_string(doc, "url", false, &url, err)) < 0 ||
            (r = observation_count(doc, &count, err)) < 0 ||
            (r = normalize_time(doc, "occurred_at", true, &occurred, err)) < 0 ||
            (r = normalize_time(doc, "resolved_at", false, &resolved, err)) < 0 ||
            (r = normalize_time(doc, "updated_at", false, &updated, err)) < 0 ||
            (r = normalize_string(doc, "incident", false, &incident, err)) < 0)
                return r;
        e = event_list_add(out, EVENT_OBSERVATION);
        if (!e)
                return -ENOMEM;
        o = &e->observation;
        o->key = event_strdup(id, &ok);
        o->kind = event_strdup(kind, &ok);
        o->service = event_strdup(service, &ok);
        o->feature = event_strdup(feature && *feature ? feature : NULL, &ok);
        o->customer = event_strdup(customer && *customer ? customer : NULL, &ok);
        o->summary = event_strdup(summary, &ok);
        o->url = event_strdup(url, &ok);
        o->count = count;
        o->occurred_at = occurred;
        o->resolved_at = resolved;
        /* Newest updated_at, else occurred_at, wins (the store compares them). */
        o->updated_at = updated != TIME_UNSET ? updated : occurred;
        o->incidents = calloc(1, sizeof(char *));
        if (!o->incidents)
                return -ENOMEM;
        if (incident && *incident)
                o->incidents[o->n_incidents++] = event_strdup(incident, &ok);
        return ok ? 1 : -ENOMEM;
}

/* A problem (API.md, "What comes in"): its state, then its factors and the incidents it
 * links as one set of subject problem. The body is the problem's whole state: absent
 * incidents or contributing_factors are none. Every bad field is a 400 (-ERANGE), as a bad
 * factor is. */
static int problem_body(json_t *doc, struct event_list *out, struct error *err) {
        static const char *const statuses[] = { "open", "known_error", "resolved", NULL };
        const char *id, *service, *status, *summary, *workaround;
        struct event_factors set = { 0 };
        int64_t opened, resolved, updated;
        json_t *factors;
        struct event *e;
        bool ok = true;
        int r;

        if ((r = normalize_string(doc, "id", true, &id, err)) < 0 ||
            (r = normalize_string(doc, "service", true, &service, err)) < 0 ||
            (r = normalize_string(doc, "status", true, &status, err)) < 0 ||
            (r = one_of(status, "status", statuses, err)) < 0 ||
            (r = normalize_string(doc, "summary", false, &summary, err)) < 0 ||
            (r = normalize_string(doc, "workaround", false, &workaround, err)) < 0 ||
            (r = normalize_time(doc, "opened_at", true, &opened, err)) < 0 ||
            (r = normalize_time(doc, "resolved_at", false, &resolved, err)) < 0 ||
            (r = normalize_time(doc, "updated_at", false, &updated, err)) < 0 ||
            (r = normalize_container(doc, "contributing_factors", JSON_ARRAY, &factors,
                                     err)) < 0)
                return r;
        if (strcmp(status, "resolved") == 0 && resolved == TIME_UNSET)
                return error_set(err, EBADMSG, "invalid_payload", "resolved_at",
                                 "a resolved problem needs resolved_at");
        if (strcmp(status, "resolved") != 0)
                resolved = TIME_UNSET;
        if (updated == TIME_UNSET)
                updated = latest(opened, resolved);
        r = rca_from_array(factors, "contributing_factors", &set, err);
        if (r == 0)
                r = strings(doc, "incidents", EVENT_OBSERVATION_LINKS_MAX, &set.links,
                            &set.n_links, err);
        e = r < 0 ? NULL : event_list_add(out, EVENT_PROBLEM);
        if (!e) {
                rca_clear(&set);
                return r < 0 ? r : -ENOMEM;
        }
        e->problem.key = event_strdup(id, &ok);
        e->problem.service = event_strdup(service, &ok);
        e->problem.status = event_strdup(status, &ok);
        e->problem.summary = event_strdup(summary, &ok);
        e->problem.workaround = event_strdup(workaround && *workaround ? workaround : NULL,
                                             &ok);
        e->problem.opened_at = opened;
        e->problem.resolved_at = resolved;
        e->problem.updated_at = updated;
        /* The row lists the incidents too (the set owns its links: a copy). */
        e->problem.incidents = calloc(set.n_links + 1, sizeof(char *));
        ok = ok && e->problem.incidents;
        for (size_t i = 0; ok && i < set.n_links; i++)
                e->problem.incidents[e->problem.n_incidents++] = event_strdup(set.links[i], &ok);
        if (!ok) {
                rca_clear(&set);
                return -ENOMEM;
        }
        r = rca_emit(out, "problem", id, service, updated, &set);
        return r < 0 ? r : (int) out->n;
}

static int problem(json_t *doc, struct event_list *out, struct error *err) {
        int r = problem_body(doc, out, err);

        return r == -EBADMSG ? -ERANGE : r;
}

static int normalize(json_t *doc, const char *event, int64_t received_us,
                     const struct normalize_options *o, struct event_list *out,
                     struct error *err) {
        (void) received_us;
        (void) o; /* generic bodies name their service and environment themselves */
        if (strcmp(event, "deployment") == 0)
                return deployment(doc, out, err);
        if (strcmp(event, "change") == 0)
                return change(doc, out, err);
        if (strcmp(event, "incident") == 0)
                return incident(doc, out, err);
        if (strcmp(event, "change_request") == 0)
                return change_request(doc, out, err);
        if (strcmp(event, "observation") == 0)
                return observation(doc, out, err);
        if (strcmp(event, "problem") == 0)
                return problem(doc, out, err);
        return normalize_ignored(err, "generic type '%.64s' is not one of deployment, change, "
                                 "incident, change_request, observation, problem", event);
}

#define OFF(f) offsetof(struct generic_options, f)
static const struct confkey keys[] = {
        { "generic_token", KEY_SECRET, NULL, OFF(token), 0, 0, NULL,
          "generic source bearer token(s)", CONFKEY_LIVE },
};
#undef OFF

const struct source source_generic = {
        .name = "generic",
        .secret_key = "generic_token",
        SOURCE_KEYS(keys),
        SOURCE_OPTIONS(struct generic_options),
        .auth_headers = { "Authorization" },
        .challenge = "Bearer realm=\"doraloop\"",
        .verify = verify,
        .identify = identify,
        .normalize = normalize,
};
