/* azure_devops: Azure DevOps service hooks (Web Hooks subscriptions). Service hooks cannot
 * sign; they send HTTP Basic credentials, whose password is azure_devops_token. The body
 * names its own delivery (id) and event (eventType). Pushes and completed pull requests
 * give changes; deploy builds and classic release deployments give deployments. */
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
#include "../source.h"
#include "../verify.h"

/* What its keys set (keys[] below). */
struct azure_devops_options {
        const char *token;              /* read by http.c, through the config */
        const char *deploy_pattern;
        const char *build_environment;
};

extern const struct source source_azure_devops;

static const struct azure_devops_options *options(const struct normalize_options *o) {
        return source_options(o, &source_azure_devops);
}

/* Longest base64 credentials we decode: a user name and a password of ~280 bytes. */
#define BASIC_MAX 384

static int base64_digit(char c) {
        static const char digits[] =
                "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        const char *p = c ? strchr(digits, c) : NULL;

        return p ? (int) (p - digits) : -1;
}

/* Decodes padded base64 text into out (room for 3/4 of its length + 1), NUL-terminated.
 * Returns the length, or -1 when it is not base64 or decodes to a control byte (a NUL
 * would cut the password short of what was sent). */
static int base64_decode(const char *text, char *out) {
        size_t len = strlen(text), n = 0;

        if (len == 0 || len % 4 != 0)
                return -1;
        for (size_t i = 0; i < len; i += 4) {
                int d[4];
                size_t pad = 0;

                for (size_t j = 0; j < 4; j++) {
                        bool last = i + 4 == len;

                        if (text[i + j] == '=' && last && j >= 2 &&
                            (j == 3 || text[i + 3] == '=')) {
                                d[j] = 0;
                                pad++;
                        } else if ((d[j] = base64_digit(text[i + j])) < 0) {
                                return -1;
                        }
                }
                unsigned v = (unsigned) d[0] << 18 | (unsigned) d[1] << 12 |
                             (unsigned) d[2] << 6 | (unsigned) d[3];
                out[n++] = (char) (v >> 16);
                if (pad < 2)
                        out[n++] = (char) (v >> 8 & 0xff);
                if (pad < 1)
                        out[n++] = (char) (v & 0xff);
        }
        out[n] = '\0';
        for (size_t i = 0; i < n; i++)
                if ((unsigned char) out[i] < 0x20 || out[i] == 0x7f)
                        return -1;
        return (int) n;
}

/* RFC 7617: "Basic base64(user:password)"; the user name is whatever the subscription
 * says, the password must be one of the secrets. */
static int verify(const struct hook_request *req, const char *secrets, struct error *err) {
        const char *value = hook_header(req, "Authorization");
        char plain[BASIC_MAX / 4 * 3 + 1];
        const char *colon;

        if (!value)
                return error_set(err, EACCES, "bad_token", "Authorization",
                                 "Missing Authorization: Basic credentials");
        if (strncasecmp(value, "Basic ", 6) != 0)
                return error_set(err, EACCES, "bad_token", "Authorization",
                                 "Authorization is not Basic credentials");
        value += 6;
        value += strspn(value, " ");
        if (strlen(value) > BASIC_MAX || base64_decode(value, plain) < 0 ||
            !(colon = strchr(plain, ':')))
                return error_set(err, EACCES, "bad_token", "Authorization",
                                 "Authorization: Basic holds no base64 user:password");
        return verify_token(colon + 1, secrets, err);
}

static int identify(const struct hook_request *req, json_t *doc, char **ret_delivery_id,
                    char **ret_event, struct error *err) {
        json_t *id = json_object_get(doc, "id"), *type = json_object_get(doc, "eventType");
        int r;

        (void) req;
        if (!json_is_string(id))
                return error_set(err, EBADMSG, "invalid_payload", "id", "id must be a string");
        if (!json_is_string(type))
                return error_set(err, EBADMSG, "invalid_payload", "eventType",
                                 "eventType must be a string");
        r = source_copy_id(json_string_value(id), "id", ret_delivery_id, err);
        if (r < 0)
                return r;
        r = source_copy_id(json_string_value(type), "eventType", ret_event, err);
        if (r < 0) {
                free(*ret_delivery_id);
                *ret_delivery_id = NULL;
        }
        return r;
}

/* A time as Azure DevOps writes it. It sends .NET's DateTime.MinValue,
 * "0001-01-01T00:00:00", for a time that is not set (a deployment not yet completed):
 * that is unset, not a time outside the range the core takes. */
static int azure_time(json_t *obj, const char *path, int64_t *ret, struct error *err) {
        const char *s;
        int r = normalize_string(obj, path, false, &s, err);

        *ret = TIME_UNSET;
        if (r < 0 || !s)
                return r;
        if (strncmp(s, "0001-01-01T00:00:00", 19) == 0 && !s[19 + strspn(s + 19, ".0Z+:")])
                return 0;
        return normalize_time(obj, path, false, ret, err);
}

/* The time the service hook fired: when the event happened. */
static int event_time(json_t *doc, int64_t received_us, int64_t *ret, struct error *err) {
        int r = azure_time(doc, "createdDate", ret, err);

        if (r >= 0 && *ret == TIME_UNSET)
                *ret = received_us;
        return r;
}

/* "project/repository" of resource.repository (its name alone without a project), and its
 * service: service_map over that, else the repository's name. Both malloc'd. Git events
 * name the project in the repository, builds beside it. */
static int repo_service(json_t *doc, const struct normalize_options *o, char **ret_repo,
                        char **ret_service, struct error *err) {
        const char *name, *project, *build_project;
        int r;

        *ret_repo = *ret_service = NULL;
        if ((r = normalize_string(doc, "resource.repository.name", true, &name, err)) < 0 ||
            (r = normalize_string(doc, "resource.repository.project.name", false, &project,
                                  err)) < 0 ||
            (r = normalize_string(doc, "resource.project.name", false, &build_project, err)) < 0)
                return r;
        if (!project)
                project = build_project;
        if (!*name || strchr(name, '/'))
                return error_set(err, EBADMSG, "invalid_payload", "resource.repository.name",
                                 "repository name '%.64s' is empty or holds a '/'", name);
        if ((project && *project ? asprintf(ret_repo, "%s/%s", project, name)
                                 : asprintf(ret_repo, "%s", name)) < 0) {
                *ret_repo = NULL;
                return -ENOMEM;
        }
        *ret_service = normalize_repo_service(o, *ret_repo);
        return *ret_service ? 0 : -ENOMEM;
}

/* One change; a sha already in out is not added again. */
static int add_change(struct event_list *out, const char *repo, const char *service,
                      const char *sha, const char *branch, const char *author,
                      const char *message, int64_t at) {
        struct event *e;
        bool ok = true;

        for (size_t i = 0; i < out->n; i++)
                if (out->items[i].kind == EVENT_CHANGE && strcmp(out->items[i].change.sha, sha) == 0)
                        return 0;
        e = event_list_add(out, EVENT_CHANGE);
        if (!e)
                return -ENOMEM;
        e->change = (struct event_change) {
                .service = event_strdup(service, &ok), .repo = event_strdup(repo, &ok),
                .sha = event_strdup(sha, &ok), .branch = event_strdup(branch, &ok),
                .author = event_strdup(author, &ok), .message = event_strdup(message, &ok),
                .committed_at = at,
        };
        return ok ? 0 : -ENOMEM;
}

/* One commit of a push ({commitId, author: {name, date}, comment}), dated by its author. */
static int push_commit(struct event_list *out, json_t *c, const char *repo, const char *service,
                       const char *branch, struct error *err) {
        const char *sha, *author, *message;
        int64_t at;
        int r;

        if (!json_is_object(c))
                return error_set(err, EBADMSG, "invalid_payload", "resource.commits",
                                 "resource.commits must hold objects");
        if ((r = normalize_string(c, "commitId", true, &sha, err)) < 0 ||
            (r = normalize_string(c, "author.name", false, &author, err)) < 0 ||
            (r = normalize_string(c, "comment", false, &message, err)) < 0 ||
            (r = azure_time(c, "author.date", &at, err)) < 0)
                return r;
        if (!normalize_is_sha(sha))
                return error_set(err, EBADMSG, "invalid_payload", "commitId",
                                 "commit id '%.64s' is not a sha", sha);
        if (at == TIME_UNSET)
                return error_set(err, EBADMSG, "invalid_payload", "author.date",
                                 "commit %.12s has no author date", sha);
        /* The change model has no files list yet: service_paths would take them from
         * GET .../commits/{commitId}/changes, which the payload does not carry. */
        return add_change(out, repo, service, sha, branch, author, message, at);
}

/* The branch a push updated: its first refUpdate of a branch that is not deleted. */
static int pushed_branch(json_t *doc, const char **ret, struct error *err) {
        static const char zeros[] = "0000000000000000000000000000000000000000";
        json_t *updates;
        int r = normalize_container(doc, "resource.refUpdates", JSON_ARRAY, &updates, err);

        *ret = NULL;
        for (size_t i = 0; r >= 0 && i < json_array_size(updates); i++) {
                json_t *u = json_array_get(updates, i);
                const char *name, *new_id;

                if (!json_is_object(u))
                        return error_set(err, EBADMSG, "invalid_payload", "resource.refUpdates",
                                         "resource.refUpdates must hold objects");
                if ((r = normalize_string(u, "name", true, &name, err)) < 0 ||
                    (r = normalize_string(u, "newObjectId", false, &new_id, err)) < 0)
                        return r;
                if (!*ret && strncmp(name, "refs/heads/", 11) == 0 &&
                    !(new_id && strcmp(new_id, zeros) == 0))
                        *ret = name + 11;
        }
        return r;
}

static int push(json_t *doc, const struct normalize_options *o, struct event_list *out,
                struct error *err) {
        const char *branch;
        char *repo = NULL, *service = NULL;
        json_t *commits;
        int r;

        if ((r = pushed_branch(doc, &branch, err)) < 0 ||
            (r = normalize_container(doc, "resource.commits", JSON_ARRAY, &commits, err)) < 0)
                return r;
        if (!branch)
                return normalize_ignored(err, "push updates no branch (tags or deletions only)");
        r = repo_service(doc, o, &repo, &service, err);
        for (size_t i = 0; r >= 0 && i < json_array_size(commits); i++)
                r = normalize_element_error(push_commit(out, json_array_get(commits, i), repo,
                                                        service, branch, err),
                                            err, "resource.commits", i);
        free(repo);
        free(service);
        if (r < 0)
                return r;
        if (out->n == 0)
                return normalize_ignored(err, "push to '%s' carries no commits", branch);
        return (int) out->n;
}

/* git.pullrequest.merged fires on every merge attempt, also the preview merges of an
 * active pull request: only a completed one has its merge commit on the target branch. */
static int merged_pull_request(json_t *doc, int64_t received_us, const struct normalize_options *o,
                               struct event_list *out, struct error *err) {
        const char *status, *merge, *sha, *target, *title, *author;
        char *repo = NULL, *service = NULL;
        int64_t closed, at;
        int r;

        if ((r = normalize_string(doc, "resource.status", true, &status, err)) < 0 ||
            (r = normalize_string(doc, "resource.mergeStatus", false, &merge, err)) < 0)
                return r;
        if (strcmp(status, "completed") != 0 || (merge && strcmp(merge, "succeeded") != 0))
                return normalize_ignored(err, "pull request is %s with merge status %s, not "
                                         "completed with a merge", status, merge ? merge : "none");
        if ((r = normalize_string(doc, "resource.lastMergeCommit.commitId", true, &sha, err)) < 0 ||
            (r = normalize_string(doc, "resource.targetRefName", false, &target, err)) < 0 ||
            (r = normalize_string(doc, "resource.title", false, &title, err)) < 0 ||
            (r = normalize_string(doc, "resource.createdBy.displayName", false, &author, err)) < 0 ||
            (r = azure_time(doc, "resource.closedDate", &closed, err)) < 0 ||
            (r = event_time(doc, received_us, &at, err)) < 0)
                return r;
        if (!normalize_is_sha(sha))
                return error_set(err, EBADMSG, "invalid_payload", "resource.lastMergeCommit.commitId",
                                 "merge commit '%.64s' is not a sha", sha);
        if (target && strncmp(target, "refs/heads/", 11) == 0)
                target += 11;
        r = repo_service(doc, o, &repo, &service, err);
        if (r >= 0)
                r = add_change(out, repo, service, sha, target, author, title,
                               closed != TIME_UNSET ? closed : at);
        free(repo);
        free(service);
        return r < 0 ? r : 1;
}

/* A deployment row; strings are copied. */
static int add_deployment(struct event_list *out, const char *key, char *service,
                          const char *environment, const char *status, const char *sha,
                          int64_t started, int64_t finished, int64_t updated) {
        struct event *e = service ? event_list_add(out, EVENT_DEPLOYMENT) : NULL;
        bool ok = true;

        if (!e) {
                free(service);
                return -ENOMEM;
        }
        e->deployment.key = event_strdup(key, &ok);
        e->deployment.service = service;
        e->deployment.environment = event_strdup(environment, &ok);
        e->deployment.status = event_strdup(status, &ok);
        e->deployment.sha = event_strdup(sha, &ok);
        e->deployment.started_at = started;
        e->deployment.finished_at = finished;
        e->deployment.updated_at = updated;
        return ok ? 1 : -ENOMEM;
}

/* A finished build's or release deployment's result -> ours, or NULL. partiallySucceeded
 * (tasks that may fail did) is a failure, like Jenkins' UNSTABLE: it deployed, but not
 * everything it meant to. rejected is how Release Management says a stage failed. */
static const char *outcome(const char *result) {
        static const char *const map[][2] = {
                { "succeeded", "success" },
                { "partiallySucceeded", "failure" },
                { "failed", "failure" },
                { "rejected", "failure" },
                { "canceled", "canceled" },
        };

        for (size_t i = 0; result && i < sizeof(map) / sizeof(map[0]); i++)
                if (strcmp(result, map[i][0]) == 0)
                        return map[i][1];
        return NULL;
}

/* The commit a build built: sourceVersion, else the sha ending sourceGetVersion
 * ("LG:refs/heads/main:<sha>" in XAML builds); NULL for other version control. */
static int build_sha(json_t *doc, const char **ret, struct error *err) {
        const char *version, *get;
        int r;

        *ret = NULL;
        if ((r = normalize_string(doc, "resource.sourceVersion", false, &version, err)) < 0 ||
            (r = normalize_string(doc, "resource.sourceGetVersion", false, &get, err)) < 0)
                return r;
        if (!version && get && strrchr(get, ':'))
                version = strrchr(get, ':') + 1;
        *ret = normalize_is_sha(version) ? version : NULL;
        return 0;
}

/* build.complete: a deployment when its definition's name contains the deploy pattern. */
static int build(json_t *doc, const struct normalize_options *o, struct event_list *out,
                 struct error *err) {
        const char *definition, *result, *repo, *sha, *status;
        char idbuf[32], key[48], *path = NULL, *service = NULL;
        const char *id;
        int64_t started, finished;
        int r;

        if ((r = normalize_string(doc, "resource.definition.name", true, &definition, err)) < 0)
                return r;
        if (!normalize_contains(definition, options(o)->deploy_pattern))
                return normalize_ignored(err, "build definition '%s' is not a deploy build (its "
                                         "name does not contain '%s')", definition,
                                         options(o)->deploy_pattern);
        /* resourceVersion 2.0 says status "completed" and the outcome in result. */
        if ((r = normalize_string(doc, "resource.result", false, &result, err)) < 0 ||
            (!result && (r = normalize_string(doc, "resource.status", true, &result, err)) < 0) ||
            (r = normalize_id(doc, "resource.id", true, idbuf, sizeof(idbuf), &id, err)) < 0 ||
            (r = normalize_string(doc, "resource.repository.name", false, &repo, err)) < 0 ||
            (r = build_sha(doc, &sha, err)) < 0 ||
            (r = azure_time(doc, "resource.startTime", &started, err)) < 0 ||
            (r = azure_time(doc, "resource.finishTime", &finished, err)) < 0)
                return r;
        status = outcome(result);
        if (!status)
                return normalize_ignored(err, "build result '%s' is not a deployment outcome", result);
        if (finished == TIME_UNSET)
                return error_set(err, EBADMSG, "invalid_payload", "resource.finishTime",
                                 "a completed build has no resource.finishTime");
        snprintf(key, sizeof(key), "build:%s", id);
        /* The repository it built, as pushes name it, else its definition. */
        if (repo) {
                r = repo_service(doc, o, &path, &service, err);
                free(path);
                if (r < 0)
                        return r;
        } else if (!(service = normalize_service(o, definition))) {
                return -ENOMEM;
        }
        return add_deployment(out, key, service, options(o)->build_environment, status, sha,
                              started, finished, finished);
}

/* The release definition's name (where each event version puts it), else the project's. */
static int release_service(json_t *doc, const struct normalize_options *o, char **ret,
                           struct error *err) {
        static const char *const paths[] = {
                "resource.environment.releaseDefinition.name",
                "resource.release.releaseDefinition.name",
                "resource.deployment.releaseDefinition.name",
                "resource.project.name",
        };
        const char *name = NULL;

        *ret = NULL;
        for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
                const char *v;
                int r = normalize_string(doc, paths[i], false, &v, err);

                if (r < 0)
                        return r;
                if (!name && v && *v)
                        name = v;
        }
        if (!name)
                return error_set(err, EBADMSG, "invalid_payload",
                                 "resource.release.releaseDefinition.name",
                                 "no release definition or project name");
        *ret = normalize_service(o, name);
        return *ret ? 0 : -ENOMEM;
}

/* The release's id: the first of these that is set (the samples leave some at 0). */
static int release_id(json_t *doc, char *buf, size_t size, const char **ret, struct error *err) {
        static const char *const paths[] = {
                "resource.environment.release.id",
                "resource.release.id",
                "resource.environment.releaseId",
        };

        *ret = NULL;
        for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
                char own[32];
                const char *v;
                int r = normalize_id(doc, paths[i], false, own, sizeof(own), &v, err);

                if (r < 0)
                        return r;
                if (!*ret && v && strcmp(v, "0") != 0) {
                        snprintf(buf, size, "%s", v);
                        *ret = buf;
                }
        }
        if (!*ret)
                return error_set(err, EBADMSG, "invalid_payload", "resource.environment.release.id",
                                 "no release id");
        return 0;
}

/* ms.vss-release.deployment-started-event / -completed-event: one deployment of a release
 * to a stage (its "environment"), both events updating the same row. */
static int release_deployment(json_t *doc, bool completed, int64_t received_us,
                              const struct normalize_options *o, struct event_list *out,
                              struct error *err) {
        const char *environment, *state, *status = "in_progress", *release, *stage;
        char relbuf[32], stagebuf[32], key[96], *service;
        int64_t at, started = TIME_UNSET, finished = TIME_UNSET;
        int r;

        if ((r = normalize_string(doc, "resource.environment.name", true, &environment, err)) < 0 ||
            (r = normalize_string(doc, "resource.environment.status", false, &state, err)) < 0 ||
            (r = normalize_id(doc, "resource.environment.id", true, stagebuf, sizeof(stagebuf),
                              &stage, err)) < 0 ||
            (r = release_id(doc, relbuf, sizeof(relbuf), &release, err)) < 0 ||
            (r = azure_time(doc, "resource.deployment.startedOn", &started, err)) < 0 ||
            (r = azure_time(doc, "resource.deployment.completedOn", &finished, err)) < 0 ||
            (r = event_time(doc, received_us, &at, err)) < 0)
                return r;
        if (!*environment)
                return error_set(err, EBADMSG, "invalid_payload", "resource.environment.name",
                                 "resource.environment.name is empty");
        if (completed) {
                status = outcome(state);
                if (!status)
                        return normalize_ignored(err, "stage status '%s' is not a deployment outcome",
                                                 state ? state : "none");
                if (finished == TIME_UNSET)
                        finished = at;
        } else if (started == TIME_UNSET) {
                started = at;
        }
        snprintf(key, sizeof(key), "release:%s/environment:%s", release, stage);
        if ((r = release_service(doc, o, &service, err)) < 0)
                return r;
        return add_deployment(out, key, service, environment, status, NULL, started,
                              completed ? finished : TIME_UNSET, at);
}

static int normalize(json_t *doc, const char *event, int64_t received_us,
                     const struct normalize_options *o, struct event_list *out,
                     struct error *err) {
        if (strcmp(event, "git.push") == 0)
                return push(doc, o, out, err);
        if (strcmp(event, "git.pullrequest.merged") == 0)
                return merged_pull_request(doc, received_us, o, out, err);
        if (strcmp(event, "build.complete") == 0)
                return build(doc, o, out, err);
        if (strcmp(event, "ms.vss-release.deployment-started-event") == 0)
                return release_deployment(doc, false, received_us, o, out, err);
        if (strcmp(event, "ms.vss-release.deployment-completed-event") == 0)
                return release_deployment(doc, true, received_us, o, out, err);
        return normalize_ignored(err, "Azure DevOps event '%s' is not used", event);
}

#define OFF(f) offsetof(struct azure_devops_options, f)
static const struct confkey keys[] = {
        { "azure_devops_token", KEY_SECRET, NULL, OFF(token), 0, 0, NULL,
          "Azure DevOps service hooks' Basic auth password(s) (any user name)", CONFKEY_LIVE },
        { "azure_devops_deploy_pattern", KEY_STRING, "deploy", OFF(deploy_pattern), 0, 0, NULL,
          "Azure DevOps build definitions whose name contains this (any case) are deployments",
          CONFKEY_LIVE },
        { "azure_devops_build_environment", KEY_STRING, "production", OFF(build_environment), 0, 0,
          NULL, "environment of such builds' deployments", CONFKEY_LIVE },
};
#undef OFF

const struct source source_azure_devops = {
        .name = "azure-devops",
        .secret_key = "azure_devops_token",
        SOURCE_KEYS(keys),
        SOURCE_OPTIONS(struct azure_devops_options),
        .auth_headers = { "Authorization" },
        .challenge = "Basic realm=\"doraloop\"",
        .verify = verify,
        .identify = identify,
        .normalize = normalize,
};
