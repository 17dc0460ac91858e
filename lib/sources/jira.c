/* jira: Jira Cloud/Server and Jira Service Management webhooks. Signed with X-Hub-Signature
 * (HMAC-SHA256, "sha256=" prefix) when the webhook has a secret; automation rules, which
 * cannot sign, pass ?token= instead. The event type is the body's webhookEvent. Issues of
 * the incident types give incidents, issues of the change types change requests, issues of
 * the review types post-incident reviews whose contributing factors attach to the incidents
 * they link, issues of the request types support requests, and issues of the problem types
 * problems (with their factors and linked incidents). */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../doc.h"
#include "../error.h"
#include "../event.h"
#include "../hook.h"
#include "../normalize.h"
#include "../rca.h"
#include "../source.h"
#include "../verify.h"

/* What its keys set (keys[] below). */
struct jira_options {
        const char *secret;              /* read by http.c, through the config */
        const char *incident_types;
        const char *change_types;
        const char *review_types;
        const char *root_cause_field;
        const char *planned_start_field;
        const char *planned_end_field;
        const char *approvals_field;
        const char *request_types;
        const char *organization_field;
        const char *feature_field;
        const char *problem_types;
        const char *workaround_field;
};

extern const struct source source_jira;

static const struct jira_options *options(const struct normalize_options *o) {
        return source_options(o, &source_jira);
}

/* An issue names at most this many components (services of a change request). */
#define COMPONENTS_MAX 100

static int verify(const struct hook_request *req, const char *secrets, struct error *err) {
        if (req->query_token && !hook_header(req, "X-Hub-Signature"))
                return verify_token(req->query_token, secrets, err);
        return verify_hmac_header(req, "X-Hub-Signature", "sha256=", secrets, err);
}

static int identify(const struct hook_request *req, json_t *doc, char **ret_delivery_id,
                    char **ret_event, struct error *err) {
        const char *event = doc_string(doc, "webhookEvent");

        /* A JSM automation "Send web request" carries no webhookEvent, only the issue. */
        if (!event && json_is_object(json_object_get(doc, "issue")))
                event = "automation";
        return source_identify(req, hook_header(req, "X-Atlassian-Webhook-Identifier"),
                               "X-Atlassian-Webhook-Identifier", true, event, "webhookEvent",
                               ret_delivery_id, ret_event, err);
}

/* What incidents and change requests both read from an issue. */
struct issue {
        const char *key, *type, *summary, *project;
        json_t *fields, *components, *labels;
        int64_t changed;        /* fields.updated, else the webhook's timestamp */
        int64_t updated;        /* orders this state: changed, or a deletion's timestamp */
        bool deleted;
};

/* Reads what both kinds use into is, whose key, type and deleted are set. */
static int read_issue(json_t *doc, struct issue *is, struct error *err) {
        int64_t timestamp;
        int r;

        if ((r = normalize_container(doc, "issue.fields", JSON_OBJECT, &is->fields, err)) < 0 ||
            (r = normalize_string(doc, "issue.fields.summary", false, &is->summary, err)) < 0 ||
            (r = normalize_string(doc, "issue.fields.project.key", false, &is->project,
                                  err)) < 0 ||
            (r = normalize_container(doc, "issue.fields.components", JSON_ARRAY,
                                     &is->components, err)) < 0 ||
            (r = normalize_container(doc, "issue.fields.labels", JSON_ARRAY, &is->labels,
                                     err)) < 0 ||
            (r = normalize_time(doc, "issue.fields.updated", false, &is->changed, err)) < 0 ||
            (r = normalize_time_or_epoch(doc, "timestamp", false, &timestamp, err)) < 0)
                return r;
        /* Jira's own time of the issue's state orders updates. A deletion comes after the
         * last update but leaves fields.updated as it was, so the webhook's time dates it;
         * JSM automation bodies may carry only that time. */
        if (is->changed == TIME_UNSET)
                is->changed = timestamp;
        if (is->changed == TIME_UNSET)
                return error_set(err, EBADMSG, "invalid_payload", "issue.fields.updated",
                                 "issue.fields.updated is missing");
        is->updated = is->deleted && timestamp > is->changed ? timestamp : is->changed;
        if (json_array_size(is->components) > COMPONENTS_MAX)
                return error_set(err, EBADMSG, "invalid_payload", "issue.fields.components",
                                 "issue.fields.components lists more than %d components",
                                 COMPONENTS_MAX);
        for (size_t i = 0; i < json_array_size(is->components); i++) {
                json_t *c = json_array_get(is->components, i);
                const char *name;

                if (json_is_object(c))
                        r = normalize_element_error(
                                normalize_string(c, "name", true, &name, err), err,
                                "issue.fields.components", i);
                else
                        r = error_set(err, EBADMSG, "invalid_payload", "issue.fields.components",
                                      "issue.fields.components[%zu] must be an object", i);
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; i < json_array_size(is->labels); i++)
                if (!json_is_string(json_array_get(is->labels, i)))
                        return error_set(err, EBADMSG, "invalid_payload", "issue.fields.labels",
                                         "issue.fields.labels[%zu] must be a string", i);
        return 0;
}

static const char *component(const struct issue *is, size_t i) {
        return json_string_value(json_object_get(json_array_get(is->components, i), "name"));
}

/* The project of an issue: fields.project.key, else the part of the issue key before its
 * number ("IT-4"), which is the project key by Jira's construction. Into buf. */
static const char *project_key(const struct issue *is, char *buf, size_t size) {
        const char *dash = strrchr(is->key, '-');

        if (is->project)
                return is->project;
        snprintf(buf, size, "%.*s", dash && dash > is->key ? (int) (dash - is->key) : (int) size,
                 is->key);
        return buf;
}

/* A label "<prefix><value>" (prefix case-insensitive), or NULL. */
static const char *label_value(const struct issue *is, const char *prefix) {
        size_t n = strlen(prefix);

        for (size_t i = 0; i < json_array_size(is->labels); i++) {
                const char *l = json_string_value(json_array_get(is->labels, i));

                if (strncasecmp(l, prefix, n) == 0)
                        return l + n;
        }
        return NULL;
}

static const char *root_cause_category(const char *s) {
        static const char *const causes[] = { "organizational", "technological", "partner",
                                              "process" };

        for (size_t i = 0; s && i < sizeof(causes) / sizeof(causes[0]); i++)
                if (strcasecmp(s, causes[i]) == 0)
                        return causes[i];
        return NULL;
}

/* The root-cause category: the custom field jira_root_cause_field (a text field, or a
 * select list's {"value": ...}), else a "root-cause:<category>" label. Anything that is
 * not one of the four categories is no category. */
static int root_cause(const struct issue *is, const struct normalize_options *o,
                      const char **ret, struct error *err) {
        json_t *v = *options(o)->root_cause_field ? json_object_get(is->fields,
                                                                options(o)->root_cause_field)
                                              : NULL;
        const char *s = NULL;
        int r;

        *ret = NULL;
        if (json_is_object(v)) {
                r = normalize_string(v, "value", false, &s, err);
                if (r < 0)
                        return r;
        } else if (json_is_string(v)) {
                s = json_string_value(v);
        } else if (v && !json_is_null(v)) {
                return error_set(err, EBADMSG, "invalid_payload", "issue.fields",
                                 "issue.fields.%.64s must be a string or an option",
                                 options(o)->root_cause_field);
        }
        *ret = root_cause_category(s);
        if (!*ret)
                *ret = root_cause_category(label_value(is, "root-cause:"));
        return 0;
}

/* The contributing factors an issue names: the root-cause field ("<dimension>" or
 * "<dimension>:<category>") and its "rca:" labels. A bad dimension refuses the delivery,
 * naming where it was. */
static int issue_factors(const struct issue *is, const struct normalize_options *o,
                         struct event_factors *set, struct error *err) {
        const char *field = options(o)->root_cause_field;
        json_t *v = *field ? json_object_get(is->fields, field) : NULL;
        char path[96];
        int r;

        snprintf(path, sizeof(path), "issue.fields.%.64s", field);
        if (json_is_object(v))
                v = json_object_get(v, "value");
        if (v && !json_is_null(v) && !json_is_string(v))
                return error_set(err, EBADMSG, "invalid_payload", path, "%s must be a string "
                                 "or an option", path);
        r = rca_from_text(json_string_value(v), path, set, err);
        return r < 0 ? r : rca_from_labels(is->labels, NULL, "issue.fields.labels", set, err);
}

/* At most this many issue links count (fields.issuelinks), for a review's incidents and a
 * request's alike. */
#define LINKS_MAX EVENT_OBSERVATION_LINKS_MAX

/* The keys of the issues fields.issuelinks names (inward or outward) into set. */
static int issue_links(const struct issue *is, struct event_factors *set, struct error *err) {
        static const char field[] = "issue.fields.issuelinks";
        json_t *links = json_object_get(is->fields, "issuelinks");
        size_t n = json_array_size(links);
        bool ok = true;

        if (links && !json_is_null(links) && !json_is_array(links))
                return error_set(err, EBADMSG, "invalid_payload", field, "%s must be an array",
                                 field);
        if (n > LINKS_MAX)
                return error_set(err, EBADMSG, "invalid_payload", field, "%s lists more than "
                                 "%d links", field, LINKS_MAX);
        set->links = calloc(n + 1, sizeof(char *));
        if (!set->links)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                json_t *l = json_array_get(links, i);
                const char *in, *out;
                int r;

                if (!json_is_object(l))
                        return error_set(err, EBADMSG, "invalid_payload", field,
                                         "%s[%zu] must be an object", field, i);
                if ((r = normalize_string(l, "inwardIssue.key", false, &in, err)) < 0 ||
                    (r = normalize_string(l, "outwardIssue.key", false, &out, err)) < 0)
                        return normalize_element_error(r, err, field, i);
                if (in || out)
                        set->links[set->n_links++] = event_strdup(in ? in : out, &ok);
        }
        return ok ? 0 : -ENOMEM;
}

/* The service an incident or review belongs to: its first component, else its project,
 * through service_map. */
static char *issue_service(const struct issue *is, const struct normalize_options *o) {
        char projbuf[128];

        return normalize_service(o, json_array_size(is->components)
                                    ? component(is, 0)
                                    : project_key(is, projbuf, sizeof(projbuf)));
}

/* A post-incident review: its factors and the incidents it links, as one set (a deleted
 * review holds none). */
static int review(const struct issue *is, const struct normalize_options *o,
                  struct event_list *out, struct error *err) {
        struct event_factors set = { 0 };
        char *service = NULL;
        int r = 0;

        if (!is->deleted && (r = issue_factors(is, o, &set, err)) == 0)
                r = issue_links(is, &set, err);
        if (r == 0 && !(service = issue_service(is, o)))
                r = -ENOMEM;
        if (r == 0)
                r = rca_emit(out, "review", is->key, service, is->updated, &set);
        rca_clear(&set);
        free(service);
        return r < 0 ? r : 1;
}

/* An incident's own factors, when it names any (so that incidents without them keep those
 * of the reviews that link them). */
static int incident_factors(const struct issue *is, const struct normalize_options *o,
                            const char *service, struct event_list *out,
                            struct error *err) {
        struct event_factors set = { 0 };
        int r = is->deleted ? 0 : issue_factors(is, o, &set, err);

        if (r == 0 && set.n > 0)
                r = rca_emit(out, "incident", is->key, service, is->updated, &set);
        rca_clear(&set);
        return r;
}

static int incident(json_t *doc, const struct issue *is, const struct normalize_options *o,
                    struct event_list *out, struct error *err) {
        const char *severity, *category, *cause, *name;
        char projbuf[128], *service;
        int64_t created, resolved;
        struct event *e;
        bool ok = true;
        int r;

        if ((r = normalize_time(doc, "issue.fields.created", true, &created, err)) < 0 ||
            (r = normalize_time(doc, "issue.fields.resolutiondate", false, &resolved, err)) < 0 ||
            (r = normalize_string(doc, "issue.fields.status.statusCategory.key", false,
                                  &category, err)) < 0 ||
            (r = normalize_string(doc, "issue.fields.priority.name", false, &severity,
                                  err)) < 0 ||
            (r = root_cause(is, o, &cause, err)) < 0)
                return r;
        /* Resolved by a resolution date, or by a workflow that reaches a done status
         * without setting a resolution: then its last change is when. */
        if (resolved == TIME_UNSET && category && strcmp(category, "done") == 0)
                resolved = is->changed;
        name = json_array_size(is->components) ? component(is, 0)
                                               : project_key(is, projbuf, sizeof(projbuf));
        e = event_list_add(out, EVENT_INCIDENT);
        if (!e)
                return -ENOMEM;
        e->incident.key = event_strdup(is->key, &ok);
        e->incident.service = normalize_service(o, name);
        ok = ok && e->incident.service;
        e->incident.title = event_strdup(is->summary, &ok);
        e->incident.status = event_strdup(is->deleted ? "deleted" :
                                          resolved != TIME_UNSET ? "resolved" : "open", &ok);
        e->incident.severity = event_strdup(severity, &ok);
        e->incident.root_cause = event_strdup(cause, &ok);
        e->incident.opened_at = created;
        e->incident.resolved_at = resolved;
        e->incident.updated_at = is->updated;
        if (!ok)
                return -ENOMEM;
        service = strdup(e->incident.service);      /* e moves when the list grows */
        r = service ? incident_factors(is, o, service, out, err) : -ENOMEM;
        free(service);
        return r < 0 ? r : (int) out->n;
}

/* A change's workflow status -> ours: JSM's change workflow (Planning, Awaiting CAB
 * approval, Awaiting implementation, Implementing...) and the usual generic names. */
static const char *change_status(const char *name, const char *category) {
        static const char *const names[][2] = {
                { "Open", "pending" },
                { "To Do", "pending" },
                { "Planning", "pending" },
                { "Awaiting approval", "pending" },
                { "Awaiting CAB approval", "pending" },
                { "Waiting for approval", "pending" },
                { "Approved", "approved" },
                { "Scheduled", "approved" },
                { "Awaiting implementation", "approved" },
                { "Declined", "declined" },
                { "Rejected", "declined" },
                { "Implementing", "implementing" },
                { "In Progress", "implementing" },
                { "Completed", "completed" },
                { "Done", "completed" },
                { "Closed", "completed" },
                { "Resolved", "completed" },
                { "Canceled", "canceled" },
                { "Cancelled", "canceled" },
        };
        /* Other statuses by the category every Jira status belongs to. */
        static const char *const categories[][2] = {
                { "new", "pending" },
                { "indeterminate", "implementing" },
                { "done", "completed" },
        };

        for (size_t i = 0; name && i < sizeof(names) / sizeof(names[0]); i++)
                if (strcasecmp(name, names[i][0]) == 0)
                        return names[i][1];
        for (size_t i = 0; category && i < sizeof(categories) / sizeof(categories[0]); i++)
                if (strcmp(category, categories[i][0]) == 0)
                        return categories[i][1];
        return NULL;
}

/* "Emergency Change" is emergency, "Standard Change" standard, anything else normal. */
static const char *change_type(const char *type) {
        if (normalize_contains(type, "emergency"))
                return "emergency";
        if (normalize_contains(type, "standard"))
                return "standard";
        return "normal";
}

/* A "risk:<level>" label; JSM's "Critical" risk is our high. */
static const char *change_risk(const struct issue *is) {
        static const char *const risks[][2] = {
                { "low", "low" }, { "medium", "medium" }, { "high", "high" },
                { "critical", "high" },
        };
        const char *v = label_value(is, "risk:");

        for (size_t i = 0; v && i < sizeof(risks) / sizeof(risks[0]); i++)
                if (strcasecmp(v, risks[i][0]) == 0)
                        return risks[i][1];
        return NULL;
}

/* A change's planned start or end, from the custom field the settings name (JSM keeps the
 * change window in instance-specific fields). */
static int planned(json_t *doc, const char *field, int64_t *ret, struct error *err) {
        char path[160];

        *ret = TIME_UNSET;
        if (!field || !*field)
                return 0;
        if ((size_t) snprintf(path, sizeof(path), "issue.fields.%s", field) >= sizeof(path))
                return error_set(err, EBADMSG, "invalid_payload", NULL,
                                 "the planned window field name is too long");
        return normalize_time(doc, path, false, ret, err);
}

/* The decision of a change's latest approval in JSM's Approvals field (an array of
 * {"name", "finalDecision": "approved" | "declined" | "pending", ...}, in the order they were
 * asked for), when the settings name that field: *ret is NULL when there is none. */
static int approval_decision(json_t *doc, const char *field, const char **ret,
                             struct error *err) {
        char path[160];
        json_t *approvals;
        size_t n;
        int r;

        *ret = NULL;
        if (!field || !*field)
                return 0;
        if ((size_t) snprintf(path, sizeof(path), "issue.fields.%s", field) >= sizeof(path))
                return error_set(err, EBADMSG, "invalid_payload", NULL,
                                 "the approvals field name is too long");
        r = normalize_container(doc, path, JSON_ARRAY, &approvals, err);
        n = json_array_size(approvals);
        if (r < 0 || n == 0)
                return r;
        if (!json_is_object(json_array_get(approvals, n - 1)))
                return error_set(err, EBADMSG, "invalid_payload", path,
                                 "%s[%zu] must be an object", path, n - 1);
        r = normalize_string(json_array_get(approvals, n - 1), "finalDecision", false, ret, err);
        return normalize_element_error(r, err, path, n - 1);
}

/* Who made the change this webhook reports: its user's display name, else login name,
 * else account id (a JSM automation body names nobody). *ret is malloc'd or NULL. */
static int actor(json_t *doc, char **ret, struct error *err) {
        static const char *const paths[] = { "user.displayName", "user.name", "user.accountId" };
        const char *v = NULL;

        *ret = NULL;
        for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
                const char *got;
                int r = normalize_string(doc, paths[i], false, &got, err);

                if (r < 0)
                        return r;
                if (!v && got && *got)
                        v = got;
        }
        if (v && !(*ret = strdup(v)))
                return -ENOMEM;
        return 0;
}

static int change_request(json_t *doc, const struct issue *is,
                          const struct normalize_options *o, struct event_list *out,
                          struct error *err) {
        const char *name, *category, *status, *decision = NULL;
        char projbuf[128];
        struct event_change_request *c;
        struct event *e;
        size_t n;
        bool ok = true;
        int r;

        if ((r = normalize_string(doc, "issue.fields.status.name", false, &name, err)) < 0 ||
            (r = normalize_string(doc, "issue.fields.status.statusCategory.key", false,
                                  &category, err)) < 0)
                return r;
        /* A deleted change authorizes nothing any more. */
        status = is->deleted ? "canceled" : change_status(name, category);
        /* Still waiting by its workflow status, but its approvers have decided (a workflow
         * that does not move on by itself, or a status we do not know by name). */
        if (status && strcmp(status, "pending") == 0) {
                r = approval_decision(doc, options(o)->approvals_field, &decision, err);
                if (r < 0)
                        return r;
                if (decision && (strcmp(decision, "approved") == 0 ||
                                 strcmp(decision, "declined") == 0))
                        status = decision;
        }
        if (!status)
                return normalize_ignored(err, "change %s has status '%s', which is not a known "
                                         "change status", is->key, name ? name : "(none)");
        e = event_list_add(out, EVENT_CHANGE_REQUEST);
        if (!e)
                return -ENOMEM;
        c = &e->change_request;
        c->key = event_strdup(is->key, &ok);
        c->title = event_strdup(is->summary, &ok);
        c->status = event_strdup(status, &ok);
        c->change_type = event_strdup(change_type(is->type), &ok);
        c->risk = event_strdup(change_risk(is), &ok);
        c->updated_at = is->updated;
        r = actor(doc, &c->actor, err);
        if (r == 0)
                r = planned(doc, options(o)->planned_start_field, &c->planned_start, err);
        if (r == 0)
                r = planned(doc, options(o)->planned_end_field, &c->planned_end, err);
        if (r < 0)
                return r;
        /* Its services: the components, else the project, each through service_map. */
        n = json_array_size(is->components);
        c->services = calloc(n ? n : 1, sizeof(char *));
        if (!c->services)
                return -ENOMEM;
        for (size_t i = 0; i < (n ? n : 1); i++) {
                char *s = normalize_service(o, n ? component(is, i)
                                                 : project_key(is, projbuf, sizeof(projbuf)));
                bool seen = false;

                if (!s)
                        return -ENOMEM;
                for (size_t j = 0; j < c->n_services; j++)
                        seen = seen || strcmp(c->services[j], s) == 0;
                if (seen)
                        free(s);
                else
                        c->services[c->n_services++] = s;
        }
        return ok ? 1 : -ENOMEM;
}

/* ---------------------------------------------------------------- support requests */

/* A text field's value: a string, an option's "value" or "name", or the first of an array
 * of either (JSM's Organizations field is [{"id":..,"name":"Acme"}]). NULL when absent or
 * empty; -EBADMSG naming the field for any other type. */
static int field_text(const struct issue *is, const char *field, const char **ret,
                      struct error *err) {
        json_t *v = *field ? json_object_get(is->fields, field) : NULL;

        *ret = NULL;
        if (json_is_array(v))
                v = json_array_get(v, 0);
        if (json_is_object(v)) {
                json_t *name = json_object_get(v, "value");

                v = name ? name : json_object_get(v, "name");
        }
        if (json_is_string(v))
                *ret = *json_string_value(v) ? json_string_value(v) : NULL;
        else if (v && !json_is_null(v))
                return error_set(err, EBADMSG, "invalid_payload", "issue.fields",
                                 "issue.fields.%.64s must be a string, an option or a list "
                                 "of them", field);
        return 0;
}

/* The customer: the organization field, else the reporter's account id (Cloud), else
 * its name (Server). */
static int request_customer(json_t *doc, const struct issue *is,
                            const struct normalize_options *o, const char **ret,
                            struct error *err) {
        int r = field_text(is, options(o)->organization_field, ret, err);

        if (r == 0 && !*ret)
                r = normalize_string(doc, "issue.fields.reporter.accountId", false, ret, err);
        if (r == 0 && !*ret)
                r = normalize_string(doc, "issue.fields.reporter.name", false, ret, err);
        return r;
}

/* The keys of the incidents an issue links, inward or outward; a linked issue whose type
 * the link names counts only when that is an incident type. Into *ret (owned). */
static int request_links(const struct issue *is, const struct normalize_options *o,
                         char ***ret, size_t *ret_n, struct error *err) {
        json_t *links = json_object_get(is->fields, "issuelinks");
        bool ok = true;

        *ret_n = 0;
        *ret = calloc(LINKS_MAX + 1, sizeof(char *));
        if (!*ret)
                return -ENOMEM;
        if (links && !json_is_array(links) && !json_is_null(links))
                return error_set(err, EBADMSG, "invalid_payload", "issue.fields.issuelinks",
                                 "issue.fields.issuelinks must be an array");
        for (size_t i = 0; i < json_array_size(links) && ok; i++) {
                static const char *const ends[] = { "inwardIssue", "outwardIssue" };
                json_t *link = json_array_get(links, i);

                if (!json_is_object(link))
                        return error_set(err, EBADMSG, "invalid_payload",
                                         "issue.fields.issuelinks",
                                         "issue.fields.issuelinks[%zu] must be an object", i);
                for (size_t e = 0; e < 2; e++) {
                        json_t *other = json_object_get(link, ends[e]);
                        const char *key, *type;
                        int r;

                        if (!other)
                                continue;
                        if ((r = normalize_string(other, "key", true, &key, err)) < 0 ||
                            (r = normalize_string(other, "fields.issuetype.name", false, &type,
                                                  err)) < 0)
                                return normalize_element_error(r, err,
                                                               "issue.fields.issuelinks", i);
                        if (type && !normalize_in_list(options(o)->incident_types, type))
                                continue;
                        if (*ret_n == LINKS_MAX)
                                return error_set(err, EBADMSG, "invalid_payload",
                                                 "issue.fields.issuelinks", "an issue links "
                                                 "more than %d incidents", LINKS_MAX);
                        (*ret)[(*ret_n)++] = event_strdup(key, &ok);
                }
        }
        return ok ? 0 : -ENOMEM;
}

/* A JSM service request (jira_request_types): an observation of kind support. */
static int request(json_t *doc, const struct issue *is, const struct normalize_options *o,
                   struct event_list *out, struct error *err) {
        const char *category, *customer, *feature, *name;
        struct event_observation *ob;
        char projbuf[128];
        int64_t created, resolved;
        struct event *e;
        bool ok = true;
        int r;

        if ((r = normalize_time(doc, "issue.fields.created", true, &created, err)) < 0 ||
            (r = normalize_time(doc, "issue.fields.resolutiondate", false, &resolved, err)) < 0 ||
            (r = normalize_string(doc, "issue.fields.status.statusCategory.key", false,
                                  &category, err)) < 0 ||
            (r = request_customer(doc, is, o, &customer, err)) < 0 ||
            (r = field_text(is, options(o)->feature_field, &feature, err)) < 0)
                return r;
        if (label_value(is, "feature:") && *label_value(is, "feature:"))
                feature = label_value(is, "feature:");
        /* resolved as incidents are: a resolution date, else a done status's last change */
        if (resolved == TIME_UNSET && category && strcmp(category, "done") == 0)
                resolved = is->changed;
        name = json_array_size(is->components) ? component(is, 0)
                                               : project_key(is, projbuf, sizeof(projbuf));
        e = event_list_add(out, EVENT_OBSERVATION);
        if (!e)
                return -ENOMEM;
        ob = &e->observation;
        r = request_links(is, o, &ob->incidents, &ob->n_incidents, err);
        if (r < 0)
                return r;
        ob->key = event_strdup(is->key, &ok);
        ob->kind = event_strdup("support", &ok);
        ob->service = normalize_service(o, name);
        ok = ok && ob->service;
        ob->feature = event_strdup(feature, &ok);
        ob->customer = event_strdup(customer, &ok);
        ob->summary = event_strdup(is->summary, &ok);
        ob->occurred_at = created;
        ob->resolved_at = resolved;
        ob->updated_at = is->updated;
        ob->deleted = is->deleted;
        return ok ? 1 : -ENOMEM;
}

/* ---------------------------------------------------------------- problems */

/* A JSM problem (jira_problem_types): its state, then its factors (the root-cause field and
 * rca: labels) and the incidents it links, as one set of subject problem. Resolved as
 * incidents are; else a known error when it has a workaround (jira_workaround_field) or
 * its status is named "Known error"; else open. A deleted one is kept as deleted and
 * holds no factors. */
static int problem(json_t *doc, const struct issue *is, const struct normalize_options *o,
                   struct event_list *out, struct error *err) {
        const char *category, *name, *workaround;
        struct event_factors set = { 0 };
        int64_t created, resolved;
        struct event_problem *p;
        char *service = NULL;
        struct event *e;
        bool ok = true;
        int r;

        if ((r = normalize_time(doc, "issue.fields.created", true, &created, err)) < 0 ||
            (r = normalize_time(doc, "issue.fields.resolutiondate", false, &resolved, err)) < 0 ||
            (r = normalize_string(doc, "issue.fields.status.name", false, &name, err)) < 0 ||
            (r = normalize_string(doc, "issue.fields.status.statusCategory.key", false,
                                  &category, err)) < 0 ||
            (r = field_text(is, options(o)->workaround_field, &workaround, err)) < 0)
                return r;
        if (resolved == TIME_UNSET && category && strcmp(category, "done") == 0)
                resolved = is->changed;
        if (!is->deleted && (r = issue_factors(is, o, &set, err)) == 0)
                r = request_links(is, o, &set.links, &set.n_links, err);
        if (r == 0 && !(service = issue_service(is, o)))
                r = -ENOMEM;
        e = r < 0 ? NULL : event_list_add(out, EVENT_PROBLEM);
        if (!e) {
                rca_clear(&set);
                free(service);
                return r < 0 ? r : -ENOMEM;
        }
        p = &e->problem;
        p->key = event_strdup(is->key, &ok);
        p->service = event_strdup(service, &ok);
        p->status = event_strdup(resolved != TIME_UNSET ? "resolved"
                                 : workaround || (name && strcasecmp(name, "Known error") == 0)
                                 ? "known_error" : "open", &ok);
        p->summary = event_strdup(is->summary, &ok);
        p->workaround = event_strdup(workaround, &ok);
        p->opened_at = created;
        p->resolved_at = resolved;
        p->updated_at = is->updated;
        p->deleted = is->deleted;
        p->incidents = calloc(set.n_links + 1, sizeof(char *));
        ok = ok && p->incidents;
        for (size_t i = 0; ok && i < set.n_links; i++)
                p->incidents[p->n_incidents++] = event_strdup(set.links[i], &ok);
        r = ok ? rca_emit(out, "problem", is->key, service, is->updated, &set) : -ENOMEM;
        rca_clear(&set);
        free(service);
        return r < 0 ? r : 2;   /* the problem and its set */
}

/* jira:issue_created, jira:issue_updated, JSM automation bodies and jira:issue_deleted. */
static int issue_event(json_t *doc, bool deleted, const struct normalize_options *o,
                       struct event_list *out, struct error *err) {
        struct issue is = { .deleted = deleted };
        int r;

        if ((r = normalize_string(doc, "issue.key", true, &is.key, err)) < 0 ||
            (r = normalize_string(doc, "issue.fields.issuetype.name", false, &is.type, err)) < 0)
                return r;
        if (!is.type)
                return normalize_ignored(err, "issue %s names no issue type", is.key);
        if (!normalize_in_list(options(o)->incident_types, is.type) &&
            !normalize_in_list(options(o)->change_types, is.type) &&
            !normalize_in_list(options(o)->request_types, is.type) &&
            !normalize_in_list(options(o)->review_types, is.type) &&
            !normalize_in_list(options(o)->problem_types, is.type))
                /* The reason stays as it was before request and review types (fixtures
                 * hold it). */
                return normalize_ignored(err, "issue type '%s' is neither an incident type "
                                         "(jira_incident_types) nor a change type "
                                         "(jira_change_types)", is.type);
        r = read_issue(doc, &is, err);
        if (r < 0)
                return r;
        if (normalize_in_list(options(o)->incident_types, is.type))
                return incident(doc, &is, o, out, err);
        if (normalize_in_list(options(o)->request_types, is.type))
                return request(doc, &is, o, out, err);
        if (normalize_in_list(options(o)->review_types, is.type))
                return review(&is, o, out, err);
        if (normalize_in_list(options(o)->problem_types, is.type))
                return problem(doc, &is, o, out, err);
        return change_request(doc, &is, o, out, err);
}

static int normalize(json_t *doc, const char *event, int64_t received_us,
                     const struct normalize_options *o, struct event_list *out,
                     struct error *err) {
        (void) received_us; /* Jira dates everything it sends */
        if (strcmp(event, "jira:issue_created") == 0 || strcmp(event, "jira:issue_updated") == 0 ||
            strcmp(event, "automation") == 0)
                return issue_event(doc, false, o, out, err);
        if (strcmp(event, "jira:issue_deleted") == 0)
                return issue_event(doc, true, o, out, err);
        if (strncmp(event, "comment_", 8) == 0)
                return normalize_ignored(err, "comment events are not used: issue events carry "
                                         "the issue's state");
        return normalize_ignored(err, "Jira event '%s' is not used", event);
}

#define OFF(f) offsetof(struct jira_options, f)
static const struct confkey keys[] = {
        { "jira_secret", KEY_SECRET, NULL, OFF(secret), 0, 0, NULL,
          "Jira webhook secret(s) (HMAC) or ?token= value(s)", CONFKEY_LIVE },
        { "jira_incident_types", KEY_STRING, "Incident", OFF(incident_types), 0, 0, NULL,
          "Jira issue types (comma-separated) that are incidents", CONFKEY_LIVE },
        { "jira_change_types", KEY_STRING, "Change,Change Request,Standard Change,Normal Change,Emergency Change", OFF(change_types), 0, 0, NULL,
          "Jira issue types (comma-separated) that are change requests", CONFKEY_LIVE },
        { "jira_review_types", KEY_STRING, "Post-incident review", OFF(review_types), 0, 0,
          NULL, "Jira issue types (comma-separated) that are post-incident reviews: their "
          "contributing factors attach to the incidents they link", CONFKEY_LIVE },
        { "jira_root_cause_field", KEY_STRING, "", OFF(root_cause_field), 0, 0, NULL,
          "Jira custom field id (customfield_NNNNN) holding an incident's root cause", CONFKEY_LIVE },
        { "jira_planned_start_field", KEY_STRING, "", OFF(planned_start_field), 0, 0, NULL,
          "Jira custom field id holding a change's planned start", CONFKEY_LIVE },
        { "jira_planned_end_field", KEY_STRING, "", OFF(planned_end_field), 0, 0, NULL,
          "Jira custom field id holding a change's planned end", CONFKEY_LIVE },
        { "jira_approvals_field", KEY_STRING, "", OFF(approvals_field), 0, 0, NULL,
          "Jira custom field id of JSM's Approvals field: its latest decision approves or "
          "declines a change still pending by status", CONFKEY_LIVE },
        { "jira_request_types", KEY_STRING,
          "Service Request,Service Request with Approvals,Support,Question",
          OFF(request_types), 0, 0, NULL,
          "Jira issue types (comma-separated) that are support requests", CONFKEY_LIVE },
        { "jira_organization_field", KEY_STRING, "", OFF(organization_field), 0, 0, NULL,
          "Jira custom field id of JSM's Organizations field: a request's customer (else its "
          "reporter's account id)", CONFKEY_LIVE },
        { "jira_feature_field", KEY_STRING, "", OFF(feature_field), 0, 0, NULL,
          "Jira custom field id holding a request's feature (a feature:<name> label wins)",
          CONFKEY_LIVE },
        { "jira_problem_types", KEY_STRING, "Problem", OFF(problem_types), 0, 0, NULL,
          "Jira issue types (comma-separated) that are problems: their contributing factors "
          "attach to the incidents they link", CONFKEY_LIVE },
        { "jira_workaround_field", KEY_STRING, "", OFF(workaround_field), 0, 0, NULL,
          "Jira custom field id of JSM's Workaround field: a problem with one is a known "
          "error", CONFKEY_LIVE },
};
#undef OFF

const struct source source_jira = {
        .name = "jira",
        .secret_key = "jira_secret",
        SOURCE_KEYS(keys),
        SOURCE_OPTIONS(struct jira_options),
        .auth_headers = { "X-Hub-Signature" },
        .query_token = true,
        .verify_reads_body = true,
        .challenge = "HMAC-SHA256 realm=\"doraloop\", header=\"X-Hub-Signature\"",
        .verify = verify,
        .identify = identify,
        .normalize = normalize,
};
