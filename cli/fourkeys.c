/* fourkeys: one events_raw row to one import line (fourkeys.h). Four Keys kept the body it
 * received in "metadata" as a JSON string; a recorded delivery hands it to our source
 * unchanged, and a generic body is built from the fields Four Keys' queries use
 * (queries/deployments.sql, incidents.sql in dora-team/fourkeys). */
#include "fourkeys.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "../lib/buf.h"
#include "../lib/doc.h"
#include "../lib/timefmt.h"

/* GitLab's X-Gitlab-Event for the object_kind Four Keys stored as event_type. */
static const char *const gitlab_events[][2] = {
        { "push", "Push Hook" },           { "tag_push", "Tag Push Hook" },
        { "merge_request", "Merge Request Hook" }, { "note", "Note Hook" },
        { "issue", "Issue Hook" },         { "pipeline", "Pipeline Hook" },
        { "job", "Job Hook" },             { "build", "Job Hook" },
        { "deployment", "Deployment Hook" },
};

struct row {
        const char *event_type, *source, *time_created;
        char id[300];           /* fourkeys:<msg_id> */
        json_t *metadata;       /* the body, parsed */
        const char *metadata_text;
};

static int fail(char *why, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(char *why, size_t len, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(why, len, fmt, ap);
        va_end(ap);
        return -1;
}

/* Four Keys' source with its "mock" suffix (test data it generated) removed, into buf. */
static void base_source(const char *source, char *buf, size_t len) {
        size_t n = strlen(source);

        if (n > 4 && strcmp(source + n - 4, "mock") == 0)
                n -= 4;
        snprintf(buf, len, "%.*s", (int) n, source);
}

/* Appends doc's compact text to out; false on OOM or when past out's bound. */
static bool append_json(struct buf *out, json_t *doc) {
        char *text = doc ? json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
        bool ok = text && buf_puts(out, text) == 0;

        free(text);
        json_decref(doc);
        return ok;
}

static int recorded(const struct row *r, const char *source, json_t *headers, struct buf *out,
                    char *why, size_t len) {
        json_t *line = json_pack("{s:s,s:o,s:s}", "source", source, "headers", headers, "raw",
                                 r->metadata_text);

        return append_json(out, line) ? 0 : fail(why, len, "out of memory");
}

static int github(const struct row *r, struct buf *out, char *why, size_t len) {
        return recorded(r, "github", json_pack("{s:s,s:s}", "X-GitHub-Event", r->event_type,
                                               "X-GitHub-Delivery", r->id), out, why, len);
}

static int gitlab(const struct row *r, struct buf *out, char *why, size_t len) {
        for (size_t i = 0; i < sizeof(gitlab_events) / sizeof(gitlab_events[0]); i++)
                if (strcmp(r->event_type, gitlab_events[i][0]) == 0)
                        return recorded(r, "gitlab",
                                        json_pack("{s:s,s:s}", "X-Gitlab-Event",
                                                  gitlab_events[i][1], "X-Gitlab-Event-UUID",
                                                  r->id), out, why, len);
        return fail(why, len, "GitLab event_type '%.40s' is not one Four Keys stored",
                    r->event_type);
}

/* A generic body under the row's delivery id (Idempotency-Key). */
static int generic(const struct row *r, json_t *body, struct buf *out, char *why, size_t len) {
        json_t *line;

        if (!body)
                return fail(why, len, "out of memory");
        line = json_pack("{s:s,s:{s:s},s:o}", "source", "generic", "headers", "Idempotency-Key",
                         r->id, "body", body);
        return append_json(out, line) ? 0 : fail(why, len, "out of memory");
}

/* time_created (RFC 3339, or BigQuery's "YYYY-MM-DD HH:MM:SS[.ffffff] UTC") as RFC 3339. */
static bool row_time(const struct row *r, char buf[TIMEFMT_LEN]) {
        char text[TIMEFMT_LEN];
        size_t n;
        int64_t us;

        if (!r->time_created || strlen(r->time_created) >= sizeof(text))
                return false;
        snprintf(text, sizeof(text), "%s", r->time_created);
        n = strlen(text);
        if (n > 4 && strcmp(text + n - 4, " UTC") == 0)
                text[n - 4] = '\0';
        if (timefmt_parse(text, &us) < 0)
                return false;
        timefmt_format(us, buf);
        return true;
}

static int deployment(const struct row *r, const char *kind, const char *service,
                      const char *sha, bool success, struct buf *out, char *why, size_t len) {
        char at[TIMEFMT_LEN];

        if (!service || !*service)
                return fail(why, len, "%s row without the service's name", kind);
        if (!row_time(r, at))
                return fail(why, len, "time_created is not a time");
        return generic(r, json_pack("{s:s,s:s,s:s,s:s,s:s,s:s*,s:s}", "type", "deployment",
                                    "id", r->id, "service", service, "environment",
                                    "production", "status", success ? "success" : "failure",
                                    "sha", sha, "finished_at", at), out, why, len);
}

/* Cloud Build: a SUCCESS build is a deployment of substitutions.COMMIT_SHA. */
static int cloud_build(const struct row *r, struct buf *out, char *why, size_t len) {
        const char *status = doc_string(r->metadata, "status");

        if (!status || strcmp(status, "SUCCESS") != 0)
                return fail(why, len, "a Cloud Build build with status '%.40s' is not a "
                            "deployment (Four Keys counts SUCCESS only)", status ? status : "");
        return deployment(r, "Cloud Build", doc_string(r->metadata, "substitutions.REPO_NAME"),
                          doc_string(r->metadata, "substitutions.COMMIT_SHA"), true, out, why,
                          len);
}

/* CircleCI: a completed workflow whose name says deploy. */
static int circleci(const struct row *r, struct buf *out, char *why, size_t len) {
        const char *name = doc_string(r->metadata, "workflow.name");
        const char *status = doc_string(r->metadata, "workflow.status");

        if (strcmp(r->event_type, "workflow-completed") != 0 || !name || !strstr(name, "deploy"))
                return fail(why, len, "a CircleCI %.40s that is not a deploy workflow",
                            r->event_type);
        return deployment(r, "CircleCI", doc_string(r->metadata, "project.name"),
                          doc_string(r->metadata, "pipeline.vcs.revision"),
                          status && strcmp(status, "success") == 0, out, why, len);
}

/* PagerDuty (V3 webhooks): incident.triggered opens, incident.resolved resolves. */
static int pagerduty(const struct row *r, struct buf *out, char *why, size_t len) {
        const char *id = doc_string(r->metadata, "event.data.id");
        const char *service = doc_string(r->metadata, "event.data.service.summary");
        const char *opened = doc_string(r->metadata, "event.data.created_at");
        const char *at = doc_string(r->metadata, "event.occurred_at");
        bool resolved = strcmp(r->event_type, "incident.resolved") == 0;

        if (!resolved && strcmp(r->event_type, "incident.triggered") != 0)
                return fail(why, len, "PagerDuty event_type '%.40s' is not an incident's "
                            "opening or resolution", r->event_type);
        if (!id || !service || !(opened || at))
                return fail(why, len, "a PagerDuty incident without event.data.id, its "
                            "service's summary or a time");
        return generic(r, json_pack("{s:s,s:s,s:s,s:s,s:s,s:s*}", "type", "incident", "id", id,
                                    "service", service, "status", resolved ? "resolved" : "open",
                                    "opened_at", opened ? opened : at, "resolved_at",
                                    resolved ? at : NULL), out, why, len);
}

/* The last segment of a repository URL, without ".git", into buf; NULL when there is none. */
static const char *repo_name(const char *url, char *buf, size_t len) {
        const char *s;
        size_t n;

        if (!url)
                return NULL;
        n = strlen(url);
        while (n && url[n - 1] == '/')
                n--;
        if (n > 4 && strncmp(url + n - 4, ".git", 4) == 0)
                n -= 4;
        s = url + n;
        while (s > url && s[-1] != '/' && s[-1] != ':')
                s--;
        if (s == url + n)
                return NULL;
        snprintf(buf, len, "%.*s", (int) (url + n - s), s);
        return buf;
}

/* Argo CD (a notification template of the user's): a SUCCESS is a deployment of commit_sha;
 * the service is its app (or application), else its repository's name. */
static int argocd(const struct row *r, struct buf *out, char *why, size_t len) {
        const char *status = doc_string(r->metadata, "status");
        const char *service = doc_string(r->metadata, "app");
        char name[256];

        if (!status || strcmp(status, "SUCCESS") != 0)
                return fail(why, len, "an argocd sync with status '%.40s' is not a deployment "
                            "(Four Keys counts SUCCESS only)", status ? status : "");
        if (!service)
                service = doc_string(r->metadata, "application");
        if (!service)
                service = repo_name(doc_string(r->metadata, "repo_url"), name, sizeof(name));
        return deployment(r, "argocd", service, doc_string(r->metadata, "commit_sha"), true,
                          out, why, len);
}

/* Tekton: a successful PipelineRun of the catalog's gitrevision / gitrepositoryurl params. */
static int tekton(const struct row *r, struct buf *out, char *why, size_t len) {
        json_t *params = doc_get(r->metadata, "data.pipelineRun.spec.params"), *p;
        const char *sha = NULL, *url = NULL;
        char name[256];
        size_t i;

        if (strcmp(r->event_type, "dev.tekton.event.pipelinerun.successful.v1") != 0)
                return fail(why, len, "a tekton %.60s is not a successful pipelinerun",
                            r->event_type);
        json_array_foreach(params, i, p) {
                const char *n = doc_string(p, "name"), *v = doc_string(p, "value");

                if (n && strcmp(n, "gitrevision") == 0)
                        sha = v;
                else if (n && strcmp(n, "gitrepositoryurl") == 0)
                        url = v;
        }
        if (!sha || !url)
                return fail(why, len, "a tekton pipelinerun without the gitrevision and "
                            "gitrepositoryurl params");
        return deployment(r, "tekton", repo_name(url, name, sizeof(name)), sha, true, out, why,
                          len);
}

static int map_row(struct row *r, struct buf *out, char *why, size_t len) {
        char source[64];

        base_source(r->source, source, sizeof(source));
        if (strcmp(source, "github") == 0)
                return github(r, out, why, len);
        if (strcmp(source, "gitlab") == 0)
                return gitlab(r, out, why, len);
        if (strcmp(source, "cloud_build") == 0)
                return cloud_build(r, out, why, len);
        if (strcmp(source, "circleci") == 0)
                return circleci(r, out, why, len);
        if (strcmp(source, "pagerduty") == 0)
                return pagerduty(r, out, why, len);
        if (strcmp(source, "argocd") == 0)
                return argocd(r, out, why, len);
        if (strcmp(source, "tekton") == 0)
                return tekton(r, out, why, len);
        return fail(why, len, "source '%.40s' has no mapping (github, gitlab, cloud_build, "
                    "circleci, pagerduty, argocd and tekton have)", r->source);
}

int fourkeys_map(const char *text, size_t len, struct buf *out, char *why, size_t why_len) {
        struct row r = { 0 };
        const char *msg_id;
        json_t *row;
        int ret;

        row = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
        if (!json_is_object(row)) {
                json_decref(row);
                return fail(why, why_len, "not a JSON object (one events_raw row a line)");
        }
        msg_id = doc_string(row, "msg_id");
        r.event_type = doc_string(row, "event_type");
        r.source = doc_string(row, "source");
        r.time_created = doc_string(row, "time_created");
        r.metadata_text = doc_string(row, "metadata");
        if (!msg_id || !*msg_id || !r.event_type || !r.source || !r.metadata_text)
                ret = fail(why, why_len, "a row needs msg_id, event_type, source and metadata "
                           "as strings");
        else if (strlen(msg_id) > 200)
                ret = fail(why, why_len, "msg_id is longer than 200 bytes");
        else if (!(r.metadata = json_loads(r.metadata_text, JSON_REJECT_DUPLICATES, NULL)))
                ret = fail(why, why_len, "metadata is not JSON");
        else {
                snprintf(r.id, sizeof(r.id), "fourkeys:%s", msg_id);
                ret = map_row(&r, out, why, why_len);
        }
        json_decref(r.metadata);
        json_decref(row);
        return ret;
}
