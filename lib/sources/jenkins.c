/* jenkins: the Notification plugin's JSON messages. The plugin cannot sign, so a bearer
 * token or ?token= authenticates. A build phase is delivered once, so build URL, number
 * and phase make the delivery id. Builds of deploy jobs (jenkins_deploy_pattern) are
 * deployments; every phase of one build updates the same deployment. */
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
struct jenkins_options {
        const char *token;              /* read by http.c, through the config */
        const char *deploy_pattern;
        const char *environment_param;
};

extern const struct source source_jenkins;

static const struct jenkins_options *options(const struct normalize_options *o) {
        return source_options(o, &source_jenkins);
}

static int verify(const struct hook_request *req, const char *secrets, struct error *err) {
        const char *token = verify_bearer_token(req);

        return verify_token(token ? token : req->query_token, secrets, err);
}

static int identify(const struct hook_request *req, json_t *doc, char **ret_delivery_id,
                    char **ret_event, struct error *err) {
        const char *url = doc_string(doc, "build.full_url");
        const char *phase = doc_string(doc, "build.phase");
        json_t *number = doc_get(doc, "build.number");
        char id[SOURCE_ID_MAX + 2];
        int r;

        (void) req;
        if (!url)
                url = doc_string(doc, "build.url");
        if (!url)
                return error_set(err, EBADMSG, "invalid_payload", "build.url",
                                 "Missing build.full_url or build.url");
        if (!json_is_integer(number))
                return error_set(err, EBADMSG, "invalid_payload", "build.number",
                                 "build.number must be an integer");
        if (!phase)
                return error_set(err, EBADMSG, "invalid_payload", "build.phase",
                                 "build.phase must be a string");
        r = snprintf(id, sizeof(id), "%s#%lld:%s", url, (long long) json_integer_value(number),
                     phase);
        if (r < 0 || (size_t) r >= sizeof(id))
                return error_set(err, EBADMSG, "invalid_payload", "build.url",
                                 "build.url is too long");
        r = source_copy_id(id, "build.url", ret_delivery_id, err);
        if (r < 0)
                return r;
        r = source_copy_id(phase, "build.phase", ret_event, err);
        if (r < 0) {
                free(*ret_delivery_id);
                *ret_delivery_id = NULL;
        }
        return r;
}

/* The repository path of a clone URL, without ".git": "https://host/org/repo.git",
 * "git@host:org/repo.git" and "ssh://git@host:22/group/sub/repo" give "org/repo" and
 * "group/sub/repo". Into buf; NULL when there is none. */
static const char *repo_path(const char *url, char *buf, size_t size) {
        const char *p = url, *scheme = strstr(url, "://");
        const char *colon = strchr(url, ':'), *slash = strchr(url, '/');
        size_t n;

        if (scheme)
                p = strchr(scheme + 3, '/');
        else if (colon && (!slash || colon < slash))
                p = colon + 1;  /* scp-like user@host:path */
        if (!p)
                return NULL;
        p += strspn(p, "/");
        n = strlen(p);
        while (n && p[n - 1] == '/')
                n--;
        if (n > 4 && strncmp(p + n - 4, ".git", 4) == 0)
                n -= 4;
        if (!n || n >= size)
                return NULL;
        memcpy(buf, p, n);
        buf[n] = '\0';
        return buf;
}

/* A build parameter's value (parameters is an object of name -> string), or NULL when
 * absent or empty. Parameter names may hold dots, so no dotted path. */
static int parameter(json_t *params, const char *name, const char **ret, struct error *err) {
        json_t *v = json_object_get(params, name);

        *ret = NULL;
        if (!v || json_is_null(v))
                return 0;
        if (!json_is_string(v))
                return error_set(err, EBADMSG, "invalid_payload", "build.parameters",
                                 "build.parameters.%.64s must be a string", name);
        *ret = *json_string_value(v) ? json_string_value(v) : NULL;
        return 0;
}

/* build.status of a finished build -> ours, or NULL. */
static const char *build_status(const char *status) {
        static const char *const map[][2] = {
                { "SUCCESS", "success" },
                { "FAILURE", "failure" },
                { "UNSTABLE", "failure" },      /* it ran, but what it deployed failed checks */
                { "ABORTED", "canceled" },
                { "NOT_BUILT", "canceled" },
        };

        for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
                if (strcmp(status, map[i][0]) == 0)
                        return map[i][1];
        return NULL;
}

static int normalize(json_t *doc, const char *event, int64_t received_us,
                     const struct normalize_options *o, struct event_list *out,
                     struct error *err) {
        const char *name, *job_url, *key, *result = NULL, *status, *commit, *scm_url, *env;
        const char *change, *rollback, *hotfix;
        char pathbuf[256], *service;
        json_t *params;
        int64_t at, updated;
        struct event *e;
        bool ok = true;
        int r;

        if ((r = normalize_string(doc, "name", true, &name, err)) < 0 ||
            (r = normalize_string(doc, "url", false, &job_url, err)) < 0)
                return r;
        /* A multibranch or foldered job's name is only its last part ("main"): its URL
         * "job/deploy-api/job/main/" shows the rest. */
        if (!normalize_contains(name, options(o)->deploy_pattern) &&
            !normalize_contains(job_url, options(o)->deploy_pattern))
                return normalize_ignored(err, "job '%s' is not a deploy job: neither its name nor "
                                         "its path contains '%s' (jenkins_deploy_pattern)",
                                         name, options(o)->deploy_pattern);
        if (strcmp(event, "QUEUED") == 0)
                return normalize_ignored(err, "a queued build has not started deploying");
        if (strcmp(event, "STARTED") == 0) {
                status = "in_progress";
        } else if (strcmp(event, "COMPLETED") == 0 || strcmp(event, "FINALIZED") == 0) {
                if ((r = normalize_string(doc, "build.status", true, &result, err)) < 0)
                        return r;
                status = build_status(result);
                if (!status)
                        return normalize_ignored(err, "build status '%s' is not used", result);
        } else {
                return normalize_ignored(err, "build phase '%s' is not used", event);
        }
        if ((r = normalize_string(doc, "build.full_url", false, &key, err)) < 0 ||
            (!key && (r = normalize_string(doc, "build.url", true, &key, err)) < 0) ||
            (r = normalize_time_or_epoch(doc, "build.timestamp", false, &at, err)) < 0 ||
            (r = normalize_string(doc, "build.scm.commit", false, &commit, err)) < 0 ||
            (r = normalize_string(doc, "build.scm.url", false, &scm_url, err)) < 0 ||
            (r = normalize_container(doc, "build.parameters", JSON_OBJECT, &params, err)) < 0 ||
            (r = parameter(params, options(o)->environment_param, &env, err)) < 0 ||
            (r = parameter(params, "CHANGE_REQUEST", &change, err)) < 0 ||
            (r = parameter(params, "ROLLBACK", &rollback, err)) < 0 ||
            (r = parameter(params, "HOTFIX", &hotfix, err)) < 0)
                return r;
        /* The plugin dates each phase in build.timestamp (epoch ms: the start for STARTED,
         * start + duration for COMPLETED, the time of sending for FINALIZED), which then
         * orders the phases; a FINALIZED after a COMPLETED moves the finish to after the
         * post-build steps (endpoints set to "Job Finalized" only get that one). Older
         * plugin versions, like the documented sample, send no time at all: the phase
         * happened when it arrived, but arrival orders nothing (a retried STARTED can come
         * after its COMPLETED), so updated_at stays unset and the further status wins. */
        updated = at;
        if (at == TIME_UNSET)
                at = received_us;
        /* Not a git commit (another SCM, or none): no sha to link changes by. */
        if (commit && !normalize_is_sha(commit))
                commit = NULL;
        service = scm_url && repo_path(scm_url, pathbuf, sizeof(pathbuf))
                ? normalize_repo_service(o, pathbuf) : normalize_service(o, name);
        e = service ? event_list_add(out, EVENT_DEPLOYMENT) : NULL;
        if (!e) {
                free(service);
                return -ENOMEM;
        }
        e->deployment.key = event_strdup(key, &ok);
        e->deployment.service = service;
        e->deployment.environment = event_strdup(env ? env : "production", &ok);
        e->deployment.status = event_strdup(status, &ok);
        e->deployment.sha = event_strdup(commit, &ok);
        e->deployment.change_request = event_strdup(change, &ok);
        e->deployment.rollback = rollback && strcasecmp(rollback, "true") == 0;
        e->deployment.hotfix = hotfix && strcasecmp(hotfix, "true") == 0;
        if (strcmp(status, "in_progress") == 0)
                e->deployment.started_at = at;
        else
                e->deployment.finished_at = at;
        e->deployment.updated_at = updated;
        return ok ? 1 : -ENOMEM;
}

#define OFF(f) offsetof(struct jenkins_options, f)
static const struct confkey keys[] = {
        { "jenkins_token", KEY_SECRET, NULL, OFF(token), 0, 0, NULL,
          "Jenkins bearer / ?token= value(s)", CONFKEY_LIVE },
        { "jenkins_deploy_pattern", KEY_STRING, "deploy", OFF(deploy_pattern), 0, 0, NULL,
          "Jenkins jobs whose name or path contains this are deployments", CONFKEY_LIVE },
        { "jenkins_environment_param", KEY_STRING, "ENVIRONMENT", OFF(environment_param), 0, 0, NULL,
          "Jenkins build parameter naming the environment", CONFKEY_LIVE },
};
#undef OFF

const struct source source_jenkins = {
        .name = "jenkins",
        .secret_key = "jenkins_token",
        SOURCE_KEYS(keys),
        SOURCE_OPTIONS(struct jenkins_options),
        .auth_headers = { "Authorization" },
        .query_token = true,
        .challenge = "Bearer realm=\"doraloop\"",
        .verify = verify,
        .identify = identify,
        .normalize = normalize,
};
