/* bitbucket: Bitbucket Cloud webhooks. Signed with X-Hub-Signature (HMAC-SHA256 of the
 * body); the delivery id and event key travel in headers. Pushes to branches give a change
 * per new commit; a merged pull request gives its merge commit. Bitbucket Pipelines
 * deployments come in through the generic source (docs/sources.md has the recipe). */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "../error.h"
#include "../event.h"
#include "../hook.h"
#include "../normalize.h"
#include "../source.h"
#include "../verify.h"

/* What its keys set (keys[] below). */
struct bitbucket_options {
        const char *secret;             /* read by http.c, through the config */
};

static int verify(const struct hook_request *req, const char *secrets, struct error *err) {
        return verify_hmac_header(req, "X-Hub-Signature", "sha256=", secrets, err);
}

static int identify(const struct hook_request *req, json_t *doc, char **ret_delivery_id,
                    char **ret_event, struct error *err) {
        (void) doc;
        return source_identify(req, hook_header(req, "X-Request-UUID"), "X-Request-UUID",
                               false, hook_header(req, "X-Event-Key"), "X-Event-Key",
                               ret_delivery_id, ret_event, err);
}

/* What every change of one delivery shares. */
struct repo_ctx {
        const char *repo, *branch;
        char *service;
};

/* A commit's author: the Bitbucket user's display name, else the name part of the raw
 * "Name <email>" (commits by an address no account has). */
static int author_name(json_t *commit, char *buf, size_t size, const char **ret,
                       struct error *err) {
        const char *raw, *lt;
        size_t n;
        int r;

        if ((r = normalize_string(commit, "author.user.display_name", false, ret, err)) < 0 ||
            (r = normalize_string(commit, "author.raw", false, &raw, err)) < 0)
                return r;
        if (*ret || !raw)
                return 0;
        lt = strchr(raw, '<');
        n = lt ? (size_t) (lt - raw) : strlen(raw);
        while (n && raw[n - 1] == ' ')
                n--;
        if (n >= size)
                n = size - 1;
        memcpy(buf, raw, n);
        buf[n] = '\0';
        *ret = n ? buf : NULL;
        return 0;
}

/* Adds the change of one listed commit (once, however many changes of the push list it).
 * head_date dates a commit listed without a date when it is the pushed head. */
static int add_commit(struct event_list *out, json_t *commit, const struct repo_ctx *c,
                      const char *head, int64_t head_date, struct error *err) {
        const char *sha, *message, *author;
        char namebuf[256];
        int64_t at;
        struct event *e;
        bool ok = true;
        int r;

        if (!json_is_object(commit))
                return error_set(err, EBADMSG, "invalid_payload", "commits",
                                 "commits must hold objects");
        if ((r = normalize_string(commit, "hash", true, &sha, err)) < 0 ||
            (r = normalize_time(commit, "date", false, &at, err)) < 0 ||
            (r = normalize_string(commit, "message", false, &message, err)) < 0 ||
            (r = author_name(commit, namebuf, sizeof(namebuf), &author, err)) < 0)
                return r;
        if (!normalize_is_sha(sha))
                return error_set(err, EBADMSG, "invalid_payload", "hash",
                                 "commit hash '%.64s' is not a sha", sha);
        if (at == TIME_UNSET && head && strcmp(sha, head) == 0)
                at = head_date;
        if (at == TIME_UNSET)
                return error_set(err, EBADMSG, "invalid_payload", "date",
                                 "commit %.12s has no date", sha);
        for (size_t i = 0; i < out->n; i++)
                if (strcmp(out->items[i].change.sha, sha) == 0)
                        return 0;
        /* service_paths: the change model has no files yet, and Bitbucket lists none per
         * commit (only a diff link), so a monorepo's commits keep the repository's service. */
        if (out->n >= EVENT_LIST_MAX)
                return error_set(err, EBADMSG, "invalid_payload", "commits",
                                 "push lists more than %d commits", EVENT_LIST_MAX);
        e = event_list_add(out, EVENT_CHANGE);
        if (!e)
                return -ENOMEM;
        e->change = (struct event_change) {
                .service = event_strdup(c->service, &ok), .repo = event_strdup(c->repo, &ok),
                .sha = event_strdup(sha, &ok), .branch = event_strdup(c->branch, &ok),
                .author = event_strdup(author, &ok), .message = event_strdup(message, &ok),
                .committed_at = at,
        };
        return ok ? 0 : -ENOMEM;
}

/* One entry of push.changes: a ref moved. Only a branch that still exists has new commits. */
static int push_change(json_t *change, struct repo_ctx *c, struct event_list *out,
                       struct error *err) {
        const char *type, *branch, *head;
        json_t *commits;
        int64_t head_date;
        int r;

        if (!json_is_object(change))
                return error_set(err, EBADMSG, "invalid_payload", "push.changes",
                                 "push.changes must hold objects");
        if ((r = normalize_container(change, "commits", JSON_ARRAY, &commits, err)) < 0 ||
            (r = normalize_string(change, "new.type", false, &type, err)) < 0 ||
            (r = normalize_string(change, "new.name", false, &branch, err)) < 0 ||
            (r = normalize_string(change, "new.target.hash", false, &head, err)) < 0 ||
            (r = normalize_time(change, "new.target.date", false, &head_date, err)) < 0)
                return r;
        /* new is null when the branch was deleted; tags point at commits pushed before. */
        if (!type || strcmp(type, "branch") != 0 || !branch)
                return 0;
        c->branch = branch;
        /* Bitbucket lists at most the 5 newest commits of a change (truncated: true beyond);
         * the older ones are shipped by ancestry only when another source reports them. */
        for (size_t i = 0; i < json_array_size(commits); i++) {
                r = add_commit(out, json_array_get(commits, i), c, head, head_date, err);
                if (r < 0)
                        return normalize_element_error(r, err, "commits", i);
        }
        return 0;
}

static int push(json_t *doc, const struct normalize_options *o, struct event_list *out,
                struct error *err) {
        struct repo_ctx c = { 0 };
        json_t *changes;
        int r;

        if ((r = normalize_container(doc, "push.changes", JSON_ARRAY, &changes, err)) < 0 ||
            (r = normalize_string(doc, "repository.full_name", true, &c.repo, err)) < 0)
                return r;
        c.service = normalize_repo_service(o, c.repo);
        if (!c.service)
                return -ENOMEM;
        for (size_t i = 0; r >= 0 && i < json_array_size(changes); i++)
                r = normalize_element_error(push_change(json_array_get(changes, i), &c, out, err),
                                            err, "push.changes", i);
        free(c.service);
        if (r < 0)
                return r;
        if (out->n == 0)
                return normalize_ignored(err, "push carries no new commits on a branch");
        return (int) out->n;
}

/* pullrequest:fulfilled is a merge: the merge commit landed on the destination branch, when
 * the pull request was last updated (Bitbucket sends no merge time of its own). */
static int fulfilled_pull_request(json_t *doc, const struct normalize_options *o,
                                  struct event_list *out, struct error *err) {
        const char *state, *sha, *branch, *title, *author, *repo;
        int64_t updated;
        char *service;
        struct event *e;
        bool ok = true;
        int r;

        if ((r = normalize_string(doc, "pullrequest.state", true, &state, err)) < 0 ||
            (r = normalize_string(doc, "pullrequest.merge_commit.hash", false, &sha, err)) < 0 ||
            (r = normalize_string(doc, "pullrequest.destination.branch.name", false, &branch,
                                  err)) < 0 ||
            (r = normalize_string(doc, "pullrequest.title", false, &title, err)) < 0 ||
            (r = normalize_string(doc, "pullrequest.author.display_name", false, &author,
                                  err)) < 0 ||
            (r = normalize_time(doc, "pullrequest.updated_on", true, &updated, err)) < 0 ||
            (r = normalize_string(doc, "repository.full_name", true, &repo, err)) < 0)
                return r;
        if (strcmp(state, "MERGED") != 0 || !sha)
                return normalize_ignored(err, "pull request %s without a merge commit", state);
        /* Bitbucket Cloud names the merge commit by 12 hex digits. A change is identified by
         * its full sha: kept short, it would count a second time beside the repo:push that
         * brings the same merge commit in full. */
        if (!normalize_is_sha(sha))
                return normalize_ignored(err, "merge commit '%.64s' is not a full sha: its "
                                         "repo:push brings it as a change", sha);
        service = normalize_repo_service(o, repo);
        e = service ? event_list_add(out, EVENT_CHANGE) : NULL;
        if (!e) {
                free(service);
                return -ENOMEM;
        }
        e->change = (struct event_change) {
                .service = service, .repo = event_strdup(repo, &ok),
                .sha = event_strdup(sha, &ok), .branch = event_strdup(branch, &ok),
                .author = event_strdup(author, &ok), .message = event_strdup(title, &ok),
                .committed_at = updated,
        };
        return ok ? 1 : -ENOMEM;
}

static int normalize(json_t *doc, const char *event, int64_t received_us,
                     const struct normalize_options *o, struct event_list *out,
                     struct error *err) {
        (void) received_us; /* Bitbucket dates what it sends */
        if (strcmp(event, "repo:push") == 0)
                return push(doc, o, out, err);
        if (strcmp(event, "pullrequest:fulfilled") == 0)
                return fulfilled_pull_request(doc, o, out, err);
        return normalize_ignored(err, "Bitbucket event '%s' is not used", event);
}

#define OFF(f) offsetof(struct bitbucket_options, f)
static const struct confkey keys[] = {
        { "bitbucket_secret", KEY_SECRET, NULL, OFF(secret), 0, 0, NULL,
          "Bitbucket Cloud webhook secret(s) (HMAC)", CONFKEY_LIVE },
};
#undef OFF

const struct source source_bitbucket = {
        .name = "bitbucket",
        .secret_key = "bitbucket_secret",
        SOURCE_KEYS(keys),
        SOURCE_OPTIONS(struct bitbucket_options),
        .auth_headers = { "X-Hub-Signature" },
        .verify_reads_body = true,
        .event_header = "X-Event-Key",
        .challenge = "HMAC-SHA256 realm=\"doraloop\", header=\"X-Hub-Signature\"",
        .verify = verify,
        .identify = identify,
        .normalize = normalize,
};
