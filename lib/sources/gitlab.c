/* gitlab: GitLab webhooks. A shared token in X-Gitlab-Token; the event type in
 * X-Gitlab-Event and a delivery id in X-Gitlab-Event-UUID (GitLab 15.x+; older
 * instances send none, and the body's SHA-256 stands in). Pushes and merged merge requests
 * give changes; deployments and the deploy jobs of pipelines give deployments; incident
 * issues give incidents. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../error.h"
#include "../event.h"
#include "../hook.h"
#include "../normalize.h"
#include "../rca.h"
#include "../source.h"
#include "../timefmt.h"
#include "../verify.h"

/* What its keys set (keys[] below). */
struct gitlab_options {
        const char *token;              /* read by http.c, through the config */
        const char *deploy_pattern;
};

extern const struct source source_gitlab;

static const struct gitlab_options *options(const struct normalize_options *o) {
        return source_options(o, &source_gitlab);
}

static int verify(const struct hook_request *req, const char *secrets, struct error *err) {
        return verify_token(hook_header(req, "X-Gitlab-Token"), secrets, err);
}

static int identify(const struct hook_request *req, json_t *doc, char **ret_delivery_id,
                    char **ret_event, struct error *err) {
        (void) doc;
        return source_identify(req, hook_header(req, "X-Gitlab-Event-UUID"), "X-Gitlab-Event-UUID",
                               true, hook_header(req, "X-Gitlab-Event"), "X-Gitlab-Event",
                               ret_delivery_id, ret_event, err);
}

/* The project's full path ("group/sub/project") and its service, both malloc'd. */
static int project(json_t *doc, const struct normalize_options *o, char **ret_repo,
                   char **ret_service, struct error *err) {
        const char *path;
        int r = normalize_string(doc, "project.path_with_namespace", true, &path, err);

        *ret_repo = *ret_service = NULL;
        if (r < 0)
                return r;
        *ret_repo = strdup(path);
        *ret_service = normalize_repo_service(o, path);
        if (!*ret_repo || !*ret_service) {
                free(*ret_repo);
                free(*ret_service);
                *ret_repo = *ret_service = NULL;
                return -ENOMEM;
        }
        return 0;
}

/* "after" of a push that deletes a branch: all zeros (40, or 64 in SHA-256 projects). */
static bool is_zero_sha(const char *s) {
        return s && normalize_is_sha(s) && strspn(s, "0") == strlen(s);
}

/* Push Hook: one change per listed commit. GitLab lists at most 20 commits of a push
 * (total_commits_count says how many there were): the others never become changes, so a
 * big push's lead time rests on those 20. */
static int push(json_t *doc, const struct normalize_options *o, struct event_list *out,
                struct error *err) {
        const char *ref, *after;
        char *repo = NULL, *service = NULL;
        size_t n0 = out->n;
        json_t *commits;
        int r;

        if ((r = normalize_string(doc, "ref", true, &ref, err)) < 0 ||
            (r = normalize_string(doc, "after", false, &after, err)) < 0 ||
            (r = normalize_container(doc, "commits", JSON_ARRAY, &commits, err)) < 0)
                return r;
        if (strncmp(ref, "refs/tags/", 10) == 0)
                return normalize_ignored(err, "tag push of '%s' is not a change", ref + 10);
        if (strncmp(ref, "refs/heads/", 11) != 0)
                return normalize_ignored(err, "push to '%s' is not to a branch", ref);
        if (is_zero_sha(after))
                return normalize_ignored(err, "push deletes branch '%s'", ref + 11);
        /* A new branch pointing at an existing commit lists none: nothing new to count. */
        if (!json_array_size(commits))
                return normalize_ignored(err, "push to '%s' lists no commits", ref + 11);
        r = project(doc, o, &repo, &service, err);
        for (size_t i = 0; r >= 0 && i < json_array_size(commits); i++) {
                json_t *c = json_array_get(commits, i);

                if (json_is_object(c))
                        r = normalize_element_error(
                                normalize_push_commit(out, c, o, repo, service, ref + 11, err), err,
                                "commits", i);
                else
                        r = error_set(err, EBADMSG, "invalid_payload", "commits",
                                      "commits[%zu] must be an object", i);
        }
        free(repo);
        free(service);
        return r < 0 ? r : (int) (out->n - n0);
}

/* Merge Request Hook, action "merge": the commit that landed on the target branch. */
static int merge_request(json_t *doc, const struct normalize_options *o, struct event_list *out,
                         struct error *err) {
        const char *action, *sha, *branch, *title, *author;
        char *repo = NULL, *service = NULL;
        int64_t merged, updated;
        struct event *e;
        bool ok = true;
        int r;

        if ((r = normalize_string(doc, "object_attributes.action", false, &action, err)) < 0)
                return r;
        if (!action || strcmp(action, "merge") != 0)
                return normalize_ignored(err, "merge request action '%s' is not a merge",
                                         action ? action : "(none)");
        if ((r = normalize_string(doc, "object_attributes.merge_commit_sha", false, &sha,
                                  err)) < 0 ||
            (r = normalize_string(doc, "user.name", false, &author, err)) < 0 ||
            (r = normalize_string(doc, "object_attributes.target_branch", false, &branch,
                                  err)) < 0 ||
            (r = normalize_string(doc, "object_attributes.title", false, &title, err)) < 0 ||
            (r = normalize_time(doc, "object_attributes.merged_at", false, &merged, err)) < 0 ||
            (r = normalize_time(doc, "object_attributes.updated_at", true, &updated, err)) < 0)
                return r;
        /* Fast-forward merges make no merge commit: the MR's last commit is what landed,
         * and its author wrote it. A merge commit is authored by whoever merged (user). */
        if (!sha &&
            ((r = normalize_string(doc, "object_attributes.last_commit.id", true, &sha,
                                   err)) < 0 ||
             (r = normalize_string(doc, "object_attributes.last_commit.author.name", false,
                                   &author, err)) < 0))
                return r;
        if (!normalize_is_sha(sha))
                return error_set(err, EBADMSG, "invalid_payload",
                                 "object_attributes.merge_commit_sha",
                                 "merged commit '%.64s' is not a sha", sha);
        r = project(doc, o, &repo, &service, err);
        if (r < 0)
                return r;
        e = event_list_add(out, EVENT_CHANGE);
        if (!e) {
                free(repo);
                free(service);
                return -ENOMEM;
        }
        /* The change is dated when it reached the target branch (GitLab sends no merged_at
         * in most versions; the merge is the MR's last update), as for GitHub pull
         * requests. The merge commit's own message is not in the payload: the MR title
         * stands for it. */
        e->change = (struct event_change) {
                .service = service, .repo = repo, .sha = event_strdup(sha, &ok),
                .branch = event_strdup(branch, &ok), .author = event_strdup(author, &ok),
                .message = event_strdup(title, &ok),
                .committed_at = merged != TIME_UNSET ? merged : updated,
        };
        return ok ? 1 : -ENOMEM;
}

/* GitLab deployment and job statuses -> ours, or NULL for ones that say nothing. */
static const char *map_status(const char *status) {
        static const char *const map[][2] = {
                { "success", "success" },
                { "failed", "failure" },
                { "running", "in_progress" },
                { "canceled", "canceled" },
                /* A skipped deploy never happened; closing it keeps it from pending forever. */
                { "skipped", "canceled" },
                { "created", "pending" },
                { "pending", "pending" },
                { "blocked", "pending" },       /* waiting for an approval or a manual start */
                { "manual", "pending" },
                { "scheduled", "pending" },
                { "preparing", "pending" },
                { "waiting_for_resource", "pending" },
        };

        for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
                if (strcmp(status, map[i][0]) == 0)
                        return map[i][1];
        return NULL;
}

static bool is_final(const char *status) {
        return strcmp(status, "success") == 0 || strcmp(status, "failure") == 0 ||
               strcmp(status, "canceled") == 0;
}

/* A deployment done by CI job <id> is keyed "job:<id>" whether its Deployment Hook or its
 * pipeline's Pipeline Hook tells of it: GitLab sends both for every job that deploys to an
 * environment, and one deployment must not count twice. */
static int add_deployment(struct event_list *out, const char *key, const char *service,
                          const char *env, const char *status, const char *sha,
                          int64_t started, int64_t finished, int64_t updated) {
        struct event *e = event_list_add(out, EVENT_DEPLOYMENT);
        bool ok = true;

        if (!e)
                return -ENOMEM;
        e->deployment.key = event_strdup(key, &ok);
        e->deployment.service = event_strdup(service, &ok);
        e->deployment.environment = event_strdup(env, &ok);
        e->deployment.status = event_strdup(status, &ok);
        e->deployment.sha = event_strdup(sha, &ok);
        e->deployment.started_at = started;
        e->deployment.finished_at = finished;
        e->deployment.updated_at = updated;
        return ok ? 0 : -ENOMEM;
}

/* Deployment Hook: sent when a deployment's status changes. */
static int deployment(json_t *doc, const struct normalize_options *o, struct event_list *out,
                      struct error *err) {
        const char *id, *job, *status, *env, *url, *sha = NULL;
        char idbuf[32], jobbuf[32], key[48];
        char *repo = NULL, *service = NULL;
        int64_t at;
        int r;

        if ((r = normalize_id(doc, "deployment_id", true, idbuf, sizeof(idbuf), &id, err)) < 0 ||
            (r = normalize_id(doc, "deployable_id", false, jobbuf, sizeof(jobbuf), &job,
                              err)) < 0 ||
            (r = normalize_string(doc, "status", true, &status, err)) < 0 ||
            (r = normalize_string(doc, "environment", true, &env, err)) < 0 ||
            (r = normalize_time(doc, "status_changed_at", true, &at, err)) < 0 ||
            (r = normalize_string(doc, "commit_url", false, &url, err)) < 0)
                return r;
        if (!map_status(status))
                return normalize_ignored(err, "deployment status '%s' is not used", status);
        /* The payload names the commit only by short_sha and commit_url ("…/commit/<sha>"). */
        if (url && strrchr(url, '/') && normalize_is_sha(strrchr(url, '/') + 1))
                sha = strrchr(url, '/') + 1;
        r = project(doc, o, &repo, &service, err);
        if (r < 0)
                return r;
        /* Deployments made through the API have no job. */
        snprintf(key, sizeof(key), job ? "job:%s" : "deployment:%s", job ? job : id);
        status = map_status(status);
        r = add_deployment(out, key, service, env, status, sha,
                           strcmp(status, "in_progress") == 0 ? at : TIME_UNSET,
                           is_final(status) ? at : TIME_UNSET, at);
        free(repo);
        free(service);
        return r < 0 ? r : 1;
}

/* Notes why a deploy job is not a deployment; the first reason is the one users see. */
static int skip(const char **ret_skip, const char *why) {
        if (!*ret_skip)
                *ret_skip = why;
        return 0;
}

/* One job of a Pipeline Hook: a deployment when its stage or name matches
 * gitlab_deploy_pattern and it starts an environment; *ret_deploy becomes true for a deploy
 * job, and *ret_skip says why one is not a deployment. */
static int pipeline_job(json_t *job, const struct normalize_options *o, const char *service,
                        const char *sha, int64_t pipeline_created,
                        int64_t pipeline_finished, struct event_list *out,
                        const char **ret_skip, bool *ret_deploy, struct error *err) {
        const char *stage, *name, *env, *action, *id, *status;
        char idbuf[32], key[48];
        int64_t created, started, finished;
        int r;

        if ((r = normalize_string(job, "stage", false, &stage, err)) < 0 ||
            (r = normalize_string(job, "name", false, &name, err)) < 0)
                return r;
        if (!normalize_contains(stage, options(o)->deploy_pattern) &&
            !normalize_contains(name, options(o)->deploy_pattern))
                return 0;
        *ret_deploy = true;
        if ((r = normalize_string(job, "environment.name", false, &env, err)) < 0 ||
            (r = normalize_string(job, "environment.action", false, &action, err)) < 0 ||
            (r = normalize_id(job, "id", true, idbuf, sizeof(idbuf), &id, err)) < 0 ||
            (r = normalize_string(job, "status", true, &status, err)) < 0 ||
            (r = normalize_time(job, "created_at", false, &created, err)) < 0 ||
            (r = normalize_time(job, "started_at", false, &started, err)) < 0 ||
            (r = normalize_time(job, "finished_at", false, &finished, err)) < 0)
                return r;
        if (!env)
                return skip(ret_skip, "its deploy jobs name no environment");
        /* prepare, verify, access and stop jobs touch an environment without deploying. */
        if (action && strcmp(action, "start") != 0)
                return skip(ret_skip, "its deploy jobs do not start an environment");
        status = map_status(status);
        if (!status)
                return skip(ret_skip, "its deploy jobs are in a status that is not used");
        /* The job's own times, else the pipeline's: the go-gitlab sample has finished jobs
         * without finished_at. */
        if (started == TIME_UNSET && strcmp(status, "pending") != 0 &&
            strcmp(status, "canceled") != 0)
                started = pipeline_created;
        if (!is_final(status))
                finished = TIME_UNSET;
        else if (finished == TIME_UNSET)
                finished = pipeline_finished;
        snprintf(key, sizeof(key), "job:%s", id);
        return add_deployment(out, key, service, env, status, sha, started, finished,
                              finished != TIME_UNSET ? finished :
                              started != TIME_UNSET ? started :
                              created != TIME_UNSET ? created : pipeline_created);
}

/* Pipeline Hook: each deploy job that starts an environment is a deployment, with the job's
 * status (a pipeline can succeed with its manual production job skipped: that is not a
 * successful production deployment). */
static int pipeline(json_t *doc, const struct normalize_options *o, struct event_list *out,
                    struct error *err) {
        const char *id, *sha, *skip = NULL;
        char idbuf[32], *repo = NULL, *service = NULL;
        int64_t created, finished;
        size_t n0 = out->n;
        bool deploy = false;
        json_t *builds;
        int r;

        if ((r = normalize_id(doc, "object_attributes.id", true, idbuf, sizeof(idbuf), &id,
                              err)) < 0 ||
            (r = normalize_string(doc, "object_attributes.sha", true, &sha, err)) < 0 ||
            (r = normalize_time(doc, "object_attributes.created_at", false, &created, err)) < 0 ||
            (r = normalize_time(doc, "object_attributes.finished_at", false, &finished, err)) < 0 ||
            (r = normalize_container(doc, "builds", JSON_ARRAY, &builds, err)) < 0)
                return r;
        if (!normalize_is_sha(sha))
                return error_set(err, EBADMSG, "invalid_payload", "object_attributes.sha",
                                 "object_attributes.sha '%.64s' is not a sha", sha);
        r = project(doc, o, &repo, &service, err);
        for (size_t i = 0; r >= 0 && i < json_array_size(builds); i++) {
                json_t *b = json_array_get(builds, i);

                if (json_is_object(b))
                        r = normalize_element_error(
                                pipeline_job(b, o, service, sha, created, finished, out, &skip,
                                             &deploy, err), err, "builds", i);
                else
                        r = error_set(err, EBADMSG, "invalid_payload", "builds",
                                      "builds[%zu] must be an object", i);
        }
        free(repo);
        free(service);
        if (r < 0)
                return r;
        if (!deploy)
                return normalize_ignored(err, "pipeline %s has no job whose stage or name "
                                         "contains '%s'", id, options(o)->deploy_pattern);
        if (out->n == n0)
                return normalize_ignored(err, "pipeline %s deploys nothing: %s", id, skip);
        return (int) (out->n - n0);
}

/* Issue labels: whether one is the incident label, a severity one ("sev1", "S1",
 * "severity::1": normalize_severity_label, into sevbuf) and a "root-cause:<category>" one
 * (also GitLab's scoped form "root-cause::<category>"). */
static int issue_labels(json_t *doc, const char *path, const struct normalize_options *o,
                        bool *incident, const char **severity, char *sevbuf, size_t sevlen,
                        const char **root_cause, struct error *err) {
        static const char *const causes[] = { "organizational", "technological", "partner",
                                              "process" };
        json_t *labels;
        int r = normalize_container(doc, path, JSON_ARRAY, &labels, err);

        for (size_t i = 0; r >= 0 && i < json_array_size(labels); i++) {
                json_t *l = json_array_get(labels, i);
                const char *title, *named;

                if (json_is_object(l))
                        r = normalize_element_error(
                                normalize_string(l, "title", true, &title, err), err, path, i);
                else
                        r = error_set(err, EBADMSG, "invalid_payload", path,
                                      "%s[%zu] must be an object", path, i);
                if (r < 0)
                        break;
                if (*o->incident_label && strcasecmp(title, o->incident_label) == 0)
                        *incident = true;
                if ((named = normalize_severity_label(title, sevbuf, sevlen)))
                        *severity = named;
                if (strncasecmp(title, "root-cause:", 11) == 0) {
                        const char *c = title + 11 + (title[11] == ':');

                        for (size_t j = 0; j < sizeof(causes) / sizeof(causes[0]); j++)
                                if (strcasecmp(c, causes[j]) == 0)
                                        *root_cause = causes[j];
                }
        }
        return r;
}

/* An incident's "rca:" labels (both lists, read after issue_labels() checked them), when it
 * has any, as its factor set. Returns the events added, or a negative errno. */
static int issue_factors(json_t *doc, const struct event *incident, struct event_list *out,
                         struct error *err) {
        struct event_factors set = { 0 };
        /* copies: the incident lives in the list, which may move */
        char *key = strdup(incident->incident.key), *svc = strdup(incident->incident.service);
        int64_t updated = incident->incident.updated_at;
        int r = key && svc ? 0 : -ENOMEM;

        if (r == 0)
                r = rca_from_labels(json_object_get(doc, "labels"), "title", "labels", &set,
                                    err);
        if (r == 0)
                r = rca_from_labels(json_object_get(json_object_get(doc, "object_attributes"),
                                                    "labels"), "title",
                                    "object_attributes.labels", &set, err);
        if (r == 0 && set.n > 0)
                r = rca_emit(out, "incident", key, svc, updated, &set);
        rca_clear(&set);
        free(key), free(svc);
        return r < 0 ? r : (int) out->n;
}

/* Issue Hook: GitLab incidents (issue type "incident"), or issues carrying incident_label. */
static int issue(json_t *doc, const struct normalize_options *o, struct event_list *out,
                 struct error *err) {
        const char *issue_type, *type, *iid, *state, *title, *severity, *cause = NULL;
        const char *label_severity = NULL;
        char iidbuf[32], sevbuf[16], *repo = NULL, *service = NULL, *key = NULL;
        int64_t created, updated, closed;
        bool incident = false, ok = true;
        struct event *e;
        size_t n;
        int r;

        /* Older GitLab sends issue_type ("incident"), newer the work item type ("Incident");
         * labels come both at the top and in object_attributes. */
        if ((r = normalize_string(doc, "object_attributes.issue_type", false, &issue_type,
                                  err)) < 0 ||
            (r = normalize_string(doc, "object_attributes.type", false, &type, err)) < 0 ||
            (r = issue_labels(doc, "labels", o, &incident, &label_severity, sevbuf,
                              sizeof(sevbuf), &cause, err)) < 0 ||
            (r = issue_labels(doc, "object_attributes.labels", o, &incident, &label_severity,
                              sevbuf, sizeof(sevbuf), &cause, err)) < 0)
                return r;
        if ((issue_type && strcasecmp(issue_type, "incident") == 0) ||
            (type && strcasecmp(type, "incident") == 0))
                incident = true;
        if (!incident)
                return normalize_ignored(err, "issue of type '%s' is not an incident and has no "
                                         "'%s' label", type ? type : issue_type ? issue_type :
                                         "issue", o->incident_label);
        if ((r = normalize_id(doc, "object_attributes.iid", true, iidbuf, sizeof(iidbuf), &iid,
                              err)) < 0 ||
            (r = normalize_string(doc, "object_attributes.state", true, &state, err)) < 0 ||
            (r = normalize_string(doc, "object_attributes.title", false, &title, err)) < 0 ||
            (r = normalize_string(doc, "object_attributes.severity", false, &severity,
                                  err)) < 0 ||
            (r = normalize_time(doc, "object_attributes.created_at", true, &created, err)) < 0 ||
            (r = normalize_time(doc, "object_attributes.updated_at", false, &updated, err)) < 0 ||
            (r = normalize_time(doc, "object_attributes.closed_at", false, &closed, err)) < 0)
                return r;
        /* "unknown" is GitLab's default severity: none was set. */
        if (severity && strcmp(severity, "unknown") == 0)
                severity = NULL;
        /* Without one, a severity label says it (plain issues have no severity field). */
        if (!severity)
                severity = label_severity;
        if (updated == TIME_UNSET)
                updated = created;
        r = project(doc, o, &repo, &service, err);
        if (r < 0)
                return r;
        n = strlen(repo) + sizeof(iidbuf) + 2;
        key = malloc(n);
        e = key ? event_list_add(out, EVENT_INCIDENT) : NULL;
        if (!e) {
                free(key);
                free(repo);
                free(service);
                return -ENOMEM;
        }
        snprintf(key, n, "%s#%s", repo, iid);
        free(repo);
        e->incident.key = key;
        e->incident.service = service;
        e->incident.title = event_strdup(title, &ok);
        e->incident.severity = event_strdup(severity, &ok);
        e->incident.root_cause = event_strdup(cause, &ok);
        e->incident.opened_at = created;
        e->incident.updated_at = updated;
        if (strcmp(state, "closed") == 0) {
                e->incident.status = event_strdup("resolved", &ok);
                /* Closing is the issue's last update when closed_at is missing. */
                e->incident.resolved_at = closed != TIME_UNSET ? closed : updated;
        } else {
                e->incident.status = event_strdup("open", &ok);
        }
        return ok ? issue_factors(doc, e, out, err) : -ENOMEM;
}

static int normalize(json_t *doc, const char *event, int64_t received_us,
                     const struct normalize_options *o, struct event_list *out,
                     struct error *err) {
        (void) received_us; /* GitLab dates everything it sends */
        if (strcmp(event, "Push Hook") == 0)
                return push(doc, o, out, err);
        if (strcmp(event, "Tag Push Hook") == 0)
                return normalize_ignored(err, "tag pushes are not changes");
        if (strcmp(event, "Merge Request Hook") == 0)
                return merge_request(doc, o, out, err);
        if (strcmp(event, "Deployment Hook") == 0)
                return deployment(doc, o, out, err);
        if (strcmp(event, "Pipeline Hook") == 0)
                return pipeline(doc, o, out, err);
        if (strcmp(event, "Issue Hook") == 0 || strcmp(event, "Confidential Issue Hook") == 0)
                return issue(doc, o, out, err);
        if (strcmp(event, "Job Hook") == 0)
                return normalize_ignored(err, "job events are not used: deployments come from "
                                         "Deployment and Pipeline events");
        if (strcmp(event, "Release Hook") == 0)
                return normalize_ignored(err, "release events are not used: a release is not a "
                                         "deployment");
        return normalize_ignored(err, "GitLab event '%s' is not used", event);
}

#define OFF(f) offsetof(struct gitlab_options, f)
static const struct confkey keys[] = {
        { "gitlab_token", KEY_SECRET, NULL, OFF(token), 0, 0, NULL,
          "GitLab secret token(s)", CONFKEY_LIVE },
        { "gitlab_deploy_pattern", KEY_STRING, "deploy", OFF(deploy_pattern), 0, 0, NULL,
          "GitLab pipelines with a job or stage containing this are deployments", CONFKEY_LIVE },
};
#undef OFF

const struct source source_gitlab = {
        .name = "gitlab",
        .secret_key = "gitlab_token",
        SOURCE_KEYS(keys),
        SOURCE_OPTIONS(struct gitlab_options),
        .auth_headers = { "X-Gitlab-Token" },
        .event_header = "X-Gitlab-Event",
        .challenge = "Token realm=\"doraloop\", header=\"X-Gitlab-Token\"",
        .verify = verify,
        .identify = identify,
        .normalize = normalize,
};
