/* circleci: CircleCI webhooks (workflow-completed, job-completed). Signed with
 * Circleci-Signature (v1=HMAC-SHA256 of the body); the delivery id and event type are in
 * the body. A completed workflow or job whose name contains circleci_deploy_pattern is a
 * deployment of its pipeline's revision; that revision, on the pipeline's branch, is also
 * a change, so that CircleCI alone gives lead times. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../doc.h"
#include "../error.h"
#include "../event.h"
#include "../hook.h"
#include "../normalize.h"
#include "../source.h"
#include "../verify.h"

/* What its keys set (keys[] below). */
struct circleci_options {
        const char *secret;             /* read by http.c, through the config */
        const char *deploy_pattern;
        const char *environment;
};

extern const struct source source_circleci;

static const struct circleci_options *options(const struct normalize_options *o) {
        return source_options(o, &source_circleci);
}

static int verify(const struct hook_request *req, const char *secrets, struct error *err) {
        return verify_hmac_header(req, "Circleci-Signature", "v1=", secrets, err);
}

static int identify(const struct hook_request *req, json_t *doc, char **ret_delivery_id,
                    char **ret_event, struct error *err) {
        return source_identify(req, doc_string(doc, "id"), "id",
                               false, doc_string(doc, "type"), "type",
                               ret_delivery_id, ret_event, err);
}

/* A workflow's or job's final status -> ours, or NULL for one that is no outcome. */
static const char *map_status(const char *status) {
        static const char *const map[][2] = {
                { "success", "success" },
                { "failed", "failure" },
                { "error", "failure" },         /* the config or infrastructure failed */
                { "canceled", "canceled" },
                { "unauthorized", "canceled" }, /* a restricted context stopped it */
        };

        for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
                if (strcmp(status, map[i][0]) == 0)
                        return map[i][1];
        return NULL;
}

/* The repository of a project slug "<vcs>/<org>/<repo>" ("gh/", "github/", "bb/",
 * "bitbucket/"), or NULL: GitLab and GitHub App projects are "circleci/<org id>/<id>". */
static const char *slug_repo(const char *slug) {
        static const char *const vcs[] = { "gh/", "github/", "bb/", "bitbucket/" };

        for (size_t i = 0; i < sizeof(vcs) / sizeof(vcs[0]); i++)
                if (strncmp(slug, vcs[i], strlen(vcs[i])) == 0 && slug[strlen(vcs[i])])
                        return slug + strlen(vcs[i]);
        return NULL;
}

/* The project's repository (malloc'd; the slug when it names none) and service:
 * service_map over "org/repo" as for GitHub and Bitbucket, else over the slug, else the
 * repository's name or the project's. */
static int project(json_t *doc, const struct normalize_options *o, char **ret_repo,
                   char **ret_service, struct error *err) {
        const char *slug, *name, *repo;
        int r;

        if ((r = normalize_string(doc, "project.slug", true, &slug, err)) < 0 ||
            (r = normalize_string(doc, "project.name", false, &name, err)) < 0)
                return r;
        repo = slug_repo(slug);
        *ret_repo = strdup(repo ? repo : slug);
        if (repo) {
                *ret_service = normalize_repo_service(o, repo);
        } else {
                *ret_service = normalize_service(o, slug);
                if (*ret_service && name && strcmp(*ret_service, slug) == 0) {
                        free(*ret_service);
                        *ret_service = normalize_service(o, name);
                }
        }
        return *ret_repo && *ret_service ? 0 : -ENOMEM;
}

/* What a completed workflow or job says, read from its object (workflow or job). */
struct run {
        const char *id, *name, *status;
        int64_t started, stopped;
};

static int read_run(json_t *doc, bool is_job, struct run *ret, struct error *err) {
        int r;

        if ((r = normalize_string(doc, is_job ? "job.id" : "workflow.id", true, &ret->id,
                                  err)) < 0 ||
            (r = normalize_string(doc, is_job ? "job.name" : "workflow.name", true, &ret->name,
                                  err)) < 0 ||
            (r = normalize_string(doc, is_job ? "job.status" : "workflow.status", true,
                                  &ret->status, err)) < 0 ||
            (r = normalize_time(doc, is_job ? "job.started_at" : "workflow.created_at", false,
                                &ret->started, err)) < 0 ||
            (r = normalize_time(doc, is_job ? "job.stopped_at" : "workflow.stopped_at", false,
                                &ret->stopped, err)) < 0)
                return r;
        return 0;
}

/* The deployed revision as a change, when the pipeline dates its commit. */
static int add_revision(json_t *doc, const char *repo, const char *service, const char *sha,
                        struct event_list *out, struct error *err) {
        const char *branch, *subject, *author;
        int64_t committed, authored;
        struct event *e;
        bool ok = true;
        int r;

        if ((r = normalize_string(doc, "pipeline.vcs.branch", false, &branch, err)) < 0 ||
            (r = normalize_string(doc, "pipeline.vcs.commit.subject", false, &subject, err)) < 0 ||
            (r = normalize_string(doc, "pipeline.vcs.commit.author.name", false, &author,
                                  err)) < 0 ||
            (r = normalize_time(doc, "pipeline.vcs.commit.committed_at", false, &committed,
                                err)) < 0 ||
            (r = normalize_time(doc, "pipeline.vcs.commit.authored_at", false, &authored,
                                err)) < 0)
                return r;
        if (committed == TIME_UNSET)
                committed = authored;
        if (committed == TIME_UNSET)
                return 0;
        e = event_list_add(out, EVENT_CHANGE);
        if (!e)
                return -ENOMEM;
        e->change = (struct event_change) {
                .service = event_strdup(service, &ok), .repo = event_strdup(repo, &ok),
                .sha = event_strdup(sha, &ok), .branch = event_strdup(branch, &ok),
                .author = event_strdup(author, &ok), .message = event_strdup(subject, &ok),
                .committed_at = committed,
        };
        return ok ? 0 : -ENOMEM;
}

static int completed(json_t *doc, bool is_job, const struct normalize_options *o,
                     struct event_list *out, struct error *err) {
        const char *status, *sha;
        char key[SOURCE_ID_MAX + 16], *repo = NULL, *service = NULL;
        int64_t happened;
        struct run run;
        struct event *e;
        bool ok = true;
        int r;

        if ((r = read_run(doc, is_job, &run, err)) < 0 ||
            (r = normalize_string(doc, "pipeline.vcs.revision", false, &sha, err)) < 0 ||
            (r = normalize_time(doc, "happened_at", false, &happened, err)) < 0)
                return r;
        if (!normalize_contains(run.name, options(o)->deploy_pattern))
                return normalize_ignored(err, "%s '%s' is not a deployment: its name does not "
                                         "contain '%s' (circleci_deploy_pattern)",
                                         is_job ? "job" : "workflow", run.name,
                                         options(o)->deploy_pattern);
        status = map_status(run.status);
        if (!status)
                return normalize_ignored(err, "%s status '%s' is not a deployment outcome",
                                         is_job ? "job" : "workflow", run.status);
        if (sha && !normalize_is_sha(sha))
                return error_set(err, EBADMSG, "invalid_payload", "pipeline.vcs.revision",
                                 "pipeline.vcs.revision '%.64s' is not a sha", sha);
        r = project(doc, o, &repo, &service, err);
        if (r >= 0 && sha)
                r = add_revision(doc, repo, service, sha, out, err);
        if (r < 0)
                goto out;
        e = event_list_add(out, EVENT_DEPLOYMENT);
        if (!e) {
                r = -ENOMEM;
                goto out;
        }
        if (snprintf(key, sizeof(key), "%s:%s", is_job ? "job" : "workflow", run.id) >=
            (int) sizeof(key)) {
                r = error_set(err, EBADMSG, "invalid_payload", is_job ? "job.id" : "workflow.id",
                              "%s is too long", is_job ? "job.id" : "workflow.id");
                goto out;
        }
        e->deployment.key = event_strdup(key, &ok);
        e->deployment.service = service;
        service = NULL;
        e->deployment.environment = event_strdup(options(o)->environment, &ok);
        e->deployment.status = event_strdup(status, &ok);
        e->deployment.sha = event_strdup(sha, &ok);
        e->deployment.started_at = run.started;
        e->deployment.finished_at = run.stopped != TIME_UNSET ? run.stopped : happened;
        e->deployment.updated_at = happened != TIME_UNSET ? happened : run.stopped;
        r = ok ? (int) out->n : -ENOMEM;
out:
        free(repo);
        free(service);
        return r;
}

static int normalize(json_t *doc, const char *event, int64_t received_us,
                     const struct normalize_options *o, struct event_list *out,
                     struct error *err) {
        (void) received_us; /* CircleCI dates what it sends */
        if (strcmp(event, "workflow-completed") == 0)
                return completed(doc, false, o, out, err);
        if (strcmp(event, "job-completed") == 0)
                return completed(doc, true, o, out, err);
        return normalize_ignored(err, "CircleCI event '%s' is not used", event);
}

#define OFF(f) offsetof(struct circleci_options, f)
static const struct confkey keys[] = {
        { "circleci_secret", KEY_SECRET, NULL, OFF(secret), 0, 0, NULL,
          "CircleCI webhook secret token(s) (HMAC)", CONFKEY_LIVE },
        { "circleci_deploy_pattern", KEY_STRING, "deploy", OFF(deploy_pattern), 0, 0, NULL,
          "CircleCI workflows (workflow-completed) and jobs (job-completed) whose name "
          "contains this (any case) are deployments", CONFKEY_LIVE },
        { "circleci_environment", KEY_STRING, "production", OFF(environment), 0, 0, NULL,
          "environment of CircleCI deployments", CONFKEY_LIVE },
};
#undef OFF

const struct source source_circleci = {
        .name = "circleci",
        .secret_key = "circleci_secret",
        SOURCE_KEYS(keys),
        SOURCE_OPTIONS(struct circleci_options),
        .auth_headers = { "Circleci-Signature" },
        .verify_reads_body = true,
        .challenge = "HMAC-SHA256 realm=\"doraloop\", header=\"Circleci-Signature\"",
        .verify = verify,
        .identify = identify,
        .normalize = normalize,
};
