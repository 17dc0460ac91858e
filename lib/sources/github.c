/* github: GitHub webhooks. Signed with X-Hub-Signature-256 (HMAC-SHA256 of the body);
 * the delivery id and event type travel in headers. Pushes and merged pull requests give
 * changes; deployments, deployment statuses and deploy workflow runs give deployments;
 * issues labelled as incidents give incidents. */
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
struct github_options {
        const char *secret;              /* read by http.c, through the config */
        const char *deploy_workflow;
        const char *workflow_environment;
};

extern const struct source source_github;

static const struct github_options *options(const struct normalize_options *o) {
        return source_options(o, &source_github);
}

static int verify(const struct hook_request *req, const char *secrets, struct error *err) {
        return verify_hmac_header(req, "X-Hub-Signature-256", "sha256=", secrets, err);
}

static int identify(const struct hook_request *req, json_t *doc, char **ret_delivery_id,
                    char **ret_event, struct error *err) {
        (void) doc;
        return source_identify(req, hook_header(req, "X-GitHub-Delivery"), "X-GitHub-Delivery",
                               false, hook_header(req, "X-GitHub-Event"), "X-GitHub-Event",
                               ret_delivery_id, ret_event, err);
}

/* The repository's full name and its service; both malloc'd into the caller's pointers. */
static int repo_service(json_t *doc, const struct normalize_options *o, char **ret_repo,
                        char **ret_service, struct error *err) {
        const char *full;
        int r = normalize_string(doc, "repository.full_name", true, &full, err);

        if (r < 0)
                return r;
        *ret_repo = strdup(full);
        *ret_service = normalize_repo_service(o, full);
        return *ret_repo && *ret_service ? 0 : -ENOMEM;
}

static int push(json_t *doc, const struct normalize_options *o, struct event_list *out,
                struct error *err) {
        const char *ref;
        char *repo = NULL, *service = NULL;
        json_t *commits, *head;
        bool deleted;
        int r;

        if ((r = normalize_string(doc, "ref", true, &ref, err)) < 0 ||
            (r = normalize_bool(doc, "deleted", &deleted, err)) < 0 ||
            (r = normalize_container(doc, "commits", JSON_ARRAY, &commits, err)) < 0 ||
            (r = normalize_container(doc, "head_commit", JSON_OBJECT, &head, err)) < 0)
                return r;
        if (strncmp(ref, "refs/heads/", 11) != 0)
                return normalize_ignored(err, "push to '%s' is not to a branch", ref);
        if (deleted)
                return normalize_ignored(err, "push deletes branch '%s'", ref + 11);
        r = repo_service(doc, o, &repo, &service, err);
        for (size_t i = 0; r >= 0 && i < json_array_size(commits); i++) {
                json_t *c = json_array_get(commits, i);

                r = json_is_object(c)
                        ? normalize_push_commit(out, c, o, repo, service, ref + 11, err)
                        : error_set(err, EBADMSG, "invalid_payload", "commits",
                                    "commits must hold objects");
        }
        /* GitHub leaves commits empty for pushes of more than 2048 commits or of a branch
         * that already existed elsewhere; head_commit is still the pushed head. */
        if (r >= 0 && !json_array_size(commits) && head)
                r = normalize_push_commit(out, head, o, repo, service, ref + 11, err);
        free(repo);
        free(service);
        if (r < 0)
                return r;
        if (out->n == 0)
                return normalize_ignored(err, "push to '%s' carries no commits", ref + 11);
        return (int) out->n;
}

static int merged_pull_request(json_t *doc, const struct normalize_options *o,
                               struct event_list *out, struct error *err) {
        const char *action, *sha, *head, *branch, *title, *login;
        int64_t merged, closed, updated;
        char *repo = NULL, *service = NULL;
        bool is_merged, ok = true;
        struct event *e;
        int r;

        if ((r = normalize_string(doc, "action", true, &action, err)) < 0 ||
            (r = normalize_bool(doc, "pull_request.merged", &is_merged, err)) < 0)
                return r;
        if (strcmp(action, "closed") != 0 || !is_merged)
                return normalize_ignored(err, "pull request %s without a merge", action);
        if ((r = normalize_string(doc, "pull_request.merge_commit_sha", false, &sha, err)) < 0 ||
            (r = normalize_string(doc, "pull_request.head.sha", true, &head, err)) < 0 ||
            (r = normalize_string(doc, "pull_request.base.ref", false, &branch, err)) < 0 ||
            (r = normalize_string(doc, "pull_request.title", false, &title, err)) < 0 ||
            (r = normalize_string(doc, "pull_request.user.login", false, &login, err)) < 0 ||
            (r = normalize_time(doc, "pull_request.merged_at", false, &merged, err)) < 0 ||
            (r = normalize_time(doc, "pull_request.closed_at", false, &closed, err)) < 0 ||
            (r = normalize_time(doc, "pull_request.updated_at", true, &updated, err)) < 0)
                return r;
        /* Some payloads (and old GitHub Enterprise) say merged with a null merge commit and
         * merge time: the head commit was merged, at the last time the PR shows. */
        if (!sha)
                sha = head;
        if (!normalize_is_sha(sha))
                return error_set(err, EBADMSG, "invalid_payload", "pull_request.merge_commit_sha",
                                 "merge commit '%.64s' is not a sha", sha);
        r = repo_service(doc, o, &repo, &service, err);
        if (r < 0)
                goto out;
        e = event_list_add(out, EVENT_CHANGE);
        if (!e) {
                r = -ENOMEM;
                goto out;
        }
        e->change = (struct event_change) {
                .service = service, .repo = repo, .sha = event_strdup(sha, &ok),
                .branch = event_strdup(branch, &ok), .author = event_strdup(login, &ok),
                .message = event_strdup(title, &ok),
                .committed_at = merged != TIME_UNSET ? merged : closed != TIME_UNSET ? closed : updated,
        };
        repo = service = NULL;
        r = ok ? 1 : -ENOMEM;
out:
        free(repo);
        free(service);
        return r;
}

/* GitHub deployment states -> ours; NULL for states that say nothing about the outcome. */
static const char *deployment_status(const char *state) {
        static const char *const map[][2] = {
                { "success", "success" },       { "failure", "failure" },
                { "error", "failure" },         { "in_progress", "in_progress" },
                { "queued", "pending" },        { "pending", "pending" },
        };

        for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
                if (strcmp(state, map[i][0]) == 0)
                        return map[i][1];
        return NULL; /* "inactive": superseded by a later deployment */
}

/* deployment (created) and deployment_status share the deployment object. */
static int deployment(json_t *doc, bool with_status, const struct normalize_options *o,
                      struct event_list *out, struct error *err) {
        const char *sha, *env, *status = "pending", *state = NULL, *status_env, *change = NULL;
        const char *description = NULL;
        char idbuf[32], keybuf[64], *repo = NULL, *service = NULL;
        const char *id;
        int64_t created, updated, status_at = TIME_UNSET;
        bool rollback = false, hotfix = false, ok = true;
        json_t *payload;
        struct event *e;
        int r;

        if ((r = normalize_id(doc, "deployment.id", true, idbuf, sizeof(idbuf), &id, err)) < 0 ||
            (r = normalize_string(doc, "deployment.sha", true, &sha, err)) < 0 ||
            (r = normalize_string(doc, "deployment.environment", true, &env, err)) < 0 ||
            (r = normalize_time(doc, "deployment.created_at", true, &created, err)) < 0 ||
            (r = normalize_time(doc, "deployment.updated_at", false, &updated, err)) < 0)
                return r;
        /* The payload is whatever the deployer sent: an object, or a string when empty. */
        payload = doc_get(doc, "deployment.payload");
        if (json_is_object(payload) &&
            ((r = normalize_string(payload, "change_request", false, &change, err)) < 0 ||
             (r = normalize_bool(payload, "rollback", &rollback, err)) < 0 ||
             (r = normalize_bool(payload, "hotfix", &hotfix, err)) < 0))
                return r;
        /* Else a change-request key in its description ("CHG-123: ship the new pricing"). */
        if (!change && (r = normalize_string(doc, "deployment.description", false, &description,
                                             err)) < 0)
                return r;
        if (!change)
                change = normalize_change_key(description, o->change_key_projects, keybuf,
                                              sizeof(keybuf));
        if (with_status) {
                if ((r = normalize_string(doc, "deployment_status.state", true, &state, err)) < 0 ||
                    (r = normalize_string(doc, "deployment_status.environment", false,
                                          &status_env, err)) < 0 ||
                    (r = normalize_time(doc, "deployment_status.updated_at", true, &status_at,
                                        err)) < 0)
                        return r;
                status = deployment_status(state);
                if (!status)
                        return normalize_ignored(err, "deployment status '%s' does not change the outcome",
                                       state);
                if (status_env)
                        env = status_env;
        }
        if (!normalize_is_sha(sha))
                return error_set(err, EBADMSG, "invalid_payload", "deployment.sha",
                                 "deployment.sha '%.64s' is not a sha", sha);
        r = repo_service(doc, o, &repo, &service, err);
        if (r < 0)
                goto out;
        e = event_list_add(out, EVENT_DEPLOYMENT);
        if (!e) {
                r = -ENOMEM;
                goto out;
        }
        e->deployment.key = event_strdup(id, &ok);
        e->deployment.service = service;
        service = NULL;
        e->deployment.environment = event_strdup(env, &ok);
        e->deployment.status = event_strdup(status, &ok);
        e->deployment.sha = event_strdup(sha, &ok);
        e->deployment.change_request = event_strdup(change, &ok);
        e->deployment.started_at = created;
        e->deployment.updated_at = with_status ? status_at : updated != TIME_UNSET ? updated : created;
        if (with_status && (strcmp(status, "success") == 0 || strcmp(status, "failure") == 0))
                e->deployment.finished_at = status_at;
        e->deployment.rollback = rollback;
        e->deployment.hotfix = hotfix;
        r = ok ? 1 : -ENOMEM;
out:
        free(repo);
        free(service);
        return r;
}

/* A workflow run is a deployment when its name says so (Actions workflows that deploy
 * through an environment also send deployment_status: use one or the other). */
static int workflow_run(json_t *doc, const struct normalize_options *o, struct event_list *out,
                        struct error *err) {
        static const char *const conclusions[][2] = {
                { "success", "success" },       { "failure", "failure" },
                { "timed_out", "failure" },     { "startup_failure", "failure" },
                { "cancelled", "canceled" },
        };
        const char *name, *workflow, *action, *sha, *conclusion, *status = "in_progress";
        char idbuf[32], key[48], *repo = NULL, *service = NULL;
        const char *id;
        int64_t started, updated;
        bool ok = true;
        struct event *e;
        int r;

        if ((r = normalize_string(doc, "action", true, &action, err)) < 0 ||
            (r = normalize_string(doc, "workflow_run.name", false, &name, err)) < 0 ||
            (r = normalize_string(doc, "workflow.name", false, &workflow, err)) < 0 ||
            (r = normalize_id(doc, "workflow_run.id", true, idbuf, sizeof(idbuf), &id, err)) < 0 ||
            (r = normalize_string(doc, "workflow_run.head_sha", true, &sha, err)) < 0 ||
            (r = normalize_string(doc, "workflow_run.conclusion", false, &conclusion, err)) < 0 ||
            (r = normalize_time(doc, "workflow_run.run_started_at", false, &started, err)) < 0 ||
            (r = normalize_time(doc, "workflow_run.updated_at", true, &updated, err)) < 0)
                return r;
        /* Runs may carry an empty name; the workflow's own name is the one users set. */
        if (!name || !*name)
                name = workflow ? workflow : "";
        if (!normalize_contains(name, options(o)->deploy_workflow))
                return normalize_ignored(err, "workflow '%s' is not a deploy workflow (its name "
                                         "does not contain '%s')", name, options(o)->deploy_workflow);
        if (strcmp(action, "completed") == 0) {
                status = NULL;
                for (size_t i = 0; conclusion && i < sizeof(conclusions) / sizeof(conclusions[0]); i++)
                        if (strcmp(conclusion, conclusions[i][0]) == 0)
                                status = conclusions[i][1];
                if (!status)
                        return normalize_ignored(err, "workflow run concluded '%s', not a deployment outcome",
                                       conclusion ? conclusion : "null");
        } else if (strcmp(action, "requested") == 0) {
                status = "pending";
        }
        if (!normalize_is_sha(sha))
                return error_set(err, EBADMSG, "invalid_payload", "workflow_run.head_sha",
                                 "workflow_run.head_sha '%.64s' is not a sha", sha);
        snprintf(key, sizeof(key), "workflow_run:%s", id);
        r = repo_service(doc, o, &repo, &service, err);
        if (r < 0)
                goto out;
        e = event_list_add(out, EVENT_DEPLOYMENT);
        if (!e) {
                r = -ENOMEM;
                goto out;
        }
        e->deployment.key = event_strdup(key, &ok);
        e->deployment.service = service;
        service = NULL;
        e->deployment.environment = event_strdup(options(o)->workflow_environment, &ok);
        e->deployment.status = event_strdup(status, &ok);
        e->deployment.sha = event_strdup(sha, &ok);
        e->deployment.started_at = started;
        e->deployment.updated_at = updated;
        if (strcmp(status, "in_progress") && strcmp(status, "pending"))
                e->deployment.finished_at = updated;
        r = ok ? 1 : -ENOMEM;
out:
        free(repo);
        free(service);
        return r;
}

/* Labels say what the issue is: the incident label, a severity ("sev1", "S1",
 * "severity:1", "severity:high": normalize_severity_label, into sevbuf) and
 * "root-cause:<category>". */
static int issue_labels(json_t *doc, const struct normalize_options *o, bool *ret_incident,
                        const char **ret_severity, char *sevbuf, size_t sevlen,
                        const char **ret_root_cause, struct error *err) {
        static const char *const causes[] = { "organizational", "technological", "partner",
                                              "process" };
        json_t *labels;
        int r = normalize_container(doc, "issue.labels", JSON_ARRAY, &labels, err);

        *ret_incident = false;
        *ret_severity = *ret_root_cause = NULL;
        for (size_t i = 0; r >= 0 && i < json_array_size(labels); i++) {
                const char *name, *severity;

                r = normalize_string(json_array_get(labels, i), "name", true, &name, err);
                if (r < 0)
                        break;
                if (strcasecmp(name, o->incident_label) == 0)
                        *ret_incident = true;
                else if ((severity = normalize_severity_label(name, sevbuf, sevlen)))
                        *ret_severity = severity;
                else if (strncasecmp(name, "root-cause:", 11) == 0)
                        for (size_t j = 0; j < 4; j++)
                                if (strcasecmp(name + 11, causes[j]) == 0)
                                        *ret_root_cause = causes[j];
        }
        return r;
}

/* An incident issue's "rca:<dimension>[:<category>]" labels, when it has any, as its
 * factor set (read after issue_labels() checked the labels' types). */
static int issue_factors(json_t *doc, const char *key, const char *service, int64_t updated,
                         struct event_list *out, struct error *err) {
        struct event_factors set = { 0 };
        char *svc = strdup(service);    /* service lives in the list, which may move */
        int r = svc ? rca_from_labels(json_object_get(json_object_get(doc, "issue"), "labels"),
                                      "name", "issue.labels", &set, err)
                    : -ENOMEM;

        if (r == 0 && set.n > 0)
                r = rca_emit(out, "incident", key, svc, updated, &set);
        rca_clear(&set);
        free(svc);
        return r;
}

static int issue(json_t *doc, const struct normalize_options *o, struct event_list *out,
                 struct error *err) {
        const char *action, *state, *title, *severity, *cause;
        char numbuf[32], key[512], sevbuf[16], *repo = NULL, *service = NULL;
        const char *number;
        int64_t created, closed, updated;
        bool incident, ok = true;
        struct event *e;
        int r;

        if ((r = normalize_string(doc, "action", true, &action, err)) < 0 ||
            (r = issue_labels(doc, o, &incident, &severity, sevbuf, sizeof(sevbuf), &cause,
                              err)) < 0)
                return r;
        if (!incident)
                return normalize_ignored(err, "issue is not labelled '%s'", o->incident_label);
        if ((r = normalize_id(doc, "issue.number", true, numbuf, sizeof(numbuf), &number, err)) < 0 ||
            (r = normalize_string(doc, "issue.state", true, &state, err)) < 0 ||
            (r = normalize_string(doc, "issue.title", false, &title, err)) < 0 ||
            (r = normalize_time(doc, "issue.created_at", true, &created, err)) < 0 ||
            (r = normalize_time(doc, "issue.closed_at", false, &closed, err)) < 0 ||
            (r = normalize_time(doc, "issue.updated_at", true, &updated, err)) < 0)
                return r;
        r = repo_service(doc, o, &repo, &service, err);
        if (r < 0)
                goto out;
        snprintf(key, sizeof(key), "%s#%s", repo, number);
        e = event_list_add(out, EVENT_INCIDENT);
        if (!e) {
                r = -ENOMEM;
                goto out;
        }
        e->incident.key = event_strdup(key, &ok);
        e->incident.service = service;
        service = NULL;
        e->incident.title = event_strdup(title, &ok);
        e->incident.status = event_strdup(strcmp(action, "deleted") == 0 ? "deleted"
                                          : strcmp(state, "closed") == 0 ? "resolved" : "open", &ok);
        e->incident.severity = event_strdup(severity, &ok);
        e->incident.root_cause = event_strdup(cause, &ok);
        e->incident.opened_at = created;
        if (strcmp(state, "closed") == 0)
                e->incident.resolved_at = closed != TIME_UNSET ? closed : updated;
        e->incident.updated_at = updated;
        r = ok ? issue_factors(doc, key, e->incident.service, updated, out, err) : -ENOMEM;
out:
        free(repo);
        free(service);
        return r < 0 ? r : (int) out->n;
}

static int normalize(json_t *doc, const char *event, int64_t received_us,
                     const struct normalize_options *o, struct event_list *out,
                     struct error *err) {
        (void) received_us; /* GitHub dates everything it sends */
        if (strcmp(event, "push") == 0)
                return push(doc, o, out, err);
        if (strcmp(event, "pull_request") == 0)
                return merged_pull_request(doc, o, out, err);
        if (strcmp(event, "deployment") == 0)
                return deployment(doc, false, o, out, err);
        if (strcmp(event, "deployment_status") == 0)
                return deployment(doc, true, o, out, err);
        if (strcmp(event, "workflow_run") == 0)
                return workflow_run(doc, o, out, err);
        if (strcmp(event, "issues") == 0)
                return issue(doc, o, out, err);
        return normalize_ignored(err, "GitHub event '%s' is not used", event);
}

#define OFF(f) offsetof(struct github_options, f)
static const struct confkey keys[] = {
        { "github_secret", KEY_SECRET, NULL, OFF(secret), 0, 0, NULL,
          "GitHub webhook secret(s), comma-separated while rotating", CONFKEY_LIVE },
        { "github_deploy_workflow", KEY_STRING, "deploy", OFF(deploy_workflow), 0, 0, NULL,
          "GitHub workflow runs whose name contains this (any case) are deployments", CONFKEY_LIVE },
        { "github_workflow_environment", KEY_STRING, "production", OFF(workflow_environment), 0, 0, NULL,
          "environment of such workflow runs", CONFKEY_LIVE },
};
#undef OFF

const struct source source_github = {
        .name = "github",
        .secret_key = "github_secret",
        SOURCE_KEYS(keys),
        SOURCE_OPTIONS(struct github_options),
        .auth_headers = { "X-Hub-Signature-256" },
        .verify_reads_body = true,
        .event_header = "X-GitHub-Event",
        .challenge = "HMAC-SHA256 realm=\"doraloop\", header=\"X-Hub-Signature-256\"",
        .verify = verify,
        .identify = identify,
        .normalize = normalize,
};
