/* git: `doraloopctl import-git REPO --service S [--branch main] [--tags GLOB] [--since 90d]`.
 * Reads a local clone with `git` run as a subprocess with a fixed argv (posix_spawnp, no
 * shell): the branch's commits become generic changes, and each tag matching GLOB a
 * successful production deployment of the tagged commit at the tag's time (an annotated
 * tag's tagger date, a lightweight tag's commit date) shipping the commits since the
 * previous tag. The body is the same bytes for the same history, so a second run adds
 * nothing. */
#include "ctl.h"

#include <errno.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../lib/buf.h"
#include "../lib/event.h"
#include "../lib/timefmt.h"
#include "args.h"
#include "upload.h"

extern char **environ;

#define GIT_OUTPUT_MAX (512u << 20)
#define BODY_MAX (1u << 30)
#define FIELD_SEP '\x1f'
#define RECORD_SEP '\x1e'
#define COMMIT_FORMAT "--format=%H%x1f%cI%x1f%s%x1e"

struct tag {
        char *name, *sha, *at;  /* at: RFC 3339 */
        int64_t at_us;
};

struct history {
        const char *repo_dir, *service, *branch, *since;   /* since: git's --since, or NULL */
        int64_t since_us;                                     /* TIME_UNSET: no bound */
        char repository[256];
        struct buf body;
        size_t sent;
        uint64_t pos;
};

/* Runs git with argv (argv[0] "git") and its output into out. Returns 0, or -1 having said
 * why (a missing git, or git's own failure: its stderr is ours). */
static int run_git(char *const argv[], struct buf *out) {
        posix_spawn_file_actions_t fa;
        int fds[2], status, r;
        pid_t pid;
        char chunk[65536];
        ssize_t n;

        buf_init(out, GIT_OUTPUT_MAX);
        if (pipe(fds) < 0) {
                ctl_error("import-git: pipe: %s", strerror(errno));
                return -1;
        }
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, fds[1], STDOUT_FILENO);
        posix_spawn_file_actions_addclose(&fa, fds[0]);
        posix_spawn_file_actions_addclose(&fa, fds[1]);
        r = posix_spawnp(&pid, "git", &fa, NULL, argv, environ);
        posix_spawn_file_actions_destroy(&fa);
        close(fds[1]);
        if (r != 0) {
                close(fds[0]);
                ctl_error("import-git: cannot run git: %s", strerror(r));
                return -1;
        }
        r = 0;
        while ((n = read(fds[0], chunk, sizeof(chunk))) != 0) {
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 || buf_append(out, chunk, (size_t) n) < 0) {
                        r = -1;
                        break;
                }
        }
        close(fds[0]);
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
        if (r < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                ctl_error("import-git: git %s %s failed", argv[3], argv[4] ? argv[4] : "");
                return -1;
        }
        if (!out->data)
                return buf_puts(out, "") == 0 ? 0 : -1;
        return 0;
}

/* owner/name from a remote URL (https://host/owner/name.git, git@host:owner/name.git, a
 * path); the clone's directory name when there is no remote. */
static void repository_name(struct history *h) {
        char *const argv[] = { "git", "-C", (char *) h->repo_dir, "remote", "get-url", "origin",
                               NULL };
        struct buf out;
        const char *s, *name = h->repo_dir;
        size_t n;
        int slashes = 0;

        if (run_git(argv, &out) == 0 && out.len)
                name = out.data;
        else
                ctl_error("import-git: no remote 'origin'; the repository is named after "
                          "the directory");
        n = strcspn(name, "\n");
        while (n && name[n - 1] == '/')
                n--;
        if (n > 4 && strncmp(name + n - 4, ".git", 4) == 0)
                n -= 4;
        s = name + n;
        while (s > name && slashes < 2) {
                s--;
                if (*s == '/' || *s == ':')
                        slashes++;
        }
        if (*s == '/' || *s == ':')
                s++;
        snprintf(h->repository, sizeof(h->repository), "%.*s", (int) (name + n - s), s);
        buf_free(&out);
}

/* The next field of a record (up to sep), NUL-terminated in place; NULL at the end. */
static char *next_field(char **p, char sep) {
        char *start = *p, *end;

        if (!start || !*start)
                return NULL;
        end = strchr(start, sep);
        if (end) {
                *end = '\0';
                *p = end + 1;
        } else {
                *p = start + strlen(start);
        }
        return start;
}

/* Appends one generic body and a newline. */
static int emit(struct history *h, json_t *doc) {
        char *text = doc ? json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
        int r = text && buf_puts(&h->body, text) == 0 && buf_puts(&h->body, "\n") == 0 ? 0 : -1;

        free(text);
        json_decref(doc);
        if (r < 0)
                ctl_error("import-git: out of memory (or over %u MiB of history)", BODY_MAX >> 20);
        return r;
}

/* The commits of `git log` output as {"sha","timestamp","message"} objects. */
static json_t *parse_commits(char *text) {
        json_t *commits = json_array();
        char *rec, *p = text;

        while (commits && (rec = next_field(&p, RECORD_SEP))) {
                char *q = rec + strspn(rec, "\n"), *sha = next_field(&q, FIELD_SEP);
                char *at = next_field(&q, FIELD_SEP), *subject = q;

                json_t *message;

                if (!sha || !at)
                        continue;
                message = json_string(subject);        /* NULL when it is not UTF-8 */
                json_array_append_new(commits, json_pack("{s:s,s:s,s:o}", "sha", sha,
                                                         "timestamp", at, "message",
                                                         message ? message : json_string("")));
        }
        return commits;
}

static int log_commits(const struct history *h, const char *tip, const char *exclude,
                       json_t **ret) {
        char since[TIMEFMT_LEN + 10] = "";
        char *argv[10] = { "git", "-C", (char *) h->repo_dir, "log", COMMIT_FORMAT };
        size_t k = 5;
        struct buf out;

        if (h->since) {
                snprintf(since, sizeof(since), "--since=%s", h->since);
                argv[k++] = since;
        }
        argv[k++] = (char *) tip;
        if (exclude)
                argv[k++] = (char *) exclude;
        argv[k++] = "--";
        argv[k] = NULL;
        if (run_git(argv, &out) < 0) {
                buf_free(&out);
                return -1;
        }
        *ret = parse_commits(out.data);
        buf_free(&out);
        return *ret ? 0 : -1;
}

static int add_changes(struct history *h) {
        json_t *commits, *c;
        size_t i;
        int r = 0;

        if (log_commits(h, h->branch, NULL, &commits) < 0)
                return -1;
        json_array_foreach(commits, i, c) {
                r = emit(h, json_pack("{s:s,s:s,s:s,s:O,s:O,s:O}", "type", "change", "service",
                                      h->service, "repository", h->repository, "sha",
                                      json_object_get(c, "sha"), "timestamp",
                                      json_object_get(c, "timestamp"), "message",
                                      json_object_get(c, "message")));
                if (r < 0)
                        break;
        }
        json_decref(commits);
        return r;
}

static int by_time(const void *a, const void *b) {
        const struct tag *x = a, *y = b;

        return (x->at_us > y->at_us) - (x->at_us < y->at_us);
}

/* The tags matching glob, their commits and times, oldest first, within --since. */
static int read_tags(const struct history *h, const char *glob, struct tag **ret, size_t *ret_n) {
        char pattern[512];
        char *const argv[] = { "git", "-C", (char *) h->repo_dir, "for-each-ref",
                               "--format=%(refname:strip=2)%1f%(objecttype)%1f%(objectname)%1f"
                               "%(*objecttype)%1f%(*objectname)%1f%(taggerdate:iso-strict)%1f"
                               "%(committerdate:iso-strict)%1e",
                               pattern, NULL };
        struct tag *tags = NULL;
        size_t n = 0, cap = 0;
        struct buf out;
        char *rec, *p;

        snprintf(pattern, sizeof(pattern), "refs/tags/%s", glob);
        if (run_git(argv, &out) < 0) {
                buf_free(&out);
                return -1;
        }
        p = out.data;
        while ((rec = next_field(&p, RECORD_SEP))) {
                char *q = rec + strspn(rec, "\n"), *f[7];
                bool annotated;
                int64_t us;

                /* name, type, object, *type, *object, tagger date, committer date; the
                 * fields a lightweight tag lacks are empty */
                for (size_t i = 0; i < 7; i++) {
                        char *sep = strchr(q, FIELD_SEP);

                        f[i] = q;
                        if (sep)
                                *sep = '\0';
                        q = sep ? sep + 1 : q + strlen(q);
                }
                annotated = strcmp(f[1], "tag") == 0;
                if (annotated ? strcmp(f[3], "commit") != 0 : strcmp(f[1], "commit") != 0)
                        continue;       /* a tag of a tree or a blob: no deployment */
                if (timefmt_parse(annotated ? f[5] : f[6], &us) < 0)
                        continue;
                if (h->since_us != TIME_UNSET && us < h->since_us)
                        continue;
                if (n == cap) {
                        struct tag *t = realloc(tags, (cap = cap ? 2 * cap : 16) * sizeof(*t));

                        if (!t)
                                break;
                        tags = t;
                }
                tags[n++] = (struct tag) { strdup(f[0]), strdup(annotated ? f[4] : f[2]),
                                           strdup(annotated ? f[5] : f[6]), us };
        }
        buf_free(&out);
        qsort(tags, n, sizeof(*tags), by_time);
        *ret = tags;
        *ret_n = n;
        return 0;
}

static int add_deployments(struct history *h, const char *glob) {
        struct tag *tags = NULL;
        size_t n = 0;
        int r = read_tags(h, glob, &tags, &n);

        for (size_t i = 0; r == 0 && i < n; i++) {
                char exclude[128], id[300];
                json_t *commits;

                snprintf(exclude, sizeof(exclude), "^%s", i ? tags[i - 1].sha : "");
                r = log_commits(h, tags[i].sha, i ? exclude : NULL, &commits);
                if (r < 0)
                        break;
                /* the newest first, as many as a deployment may list */
                while (json_array_size(commits) > EVENT_LIST_MAX - 1)
                        json_array_remove(commits, json_array_size(commits) - 1);
                /* one repository may deploy several services: the key names both */
                snprintf(id, sizeof(id), "git:%.80s:%.120s:%.80s", h->service, h->repository,
                         tags[i].name);
                r = emit(h, json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:o}", "type",
                                      "deployment", "id", id, "service", h->service,
                                      "repository", h->repository, "environment", "production",
                                      "status", "success", "sha", tags[i].sha, "finished_at",
                                      tags[i].at, "commits", commits));
        }
        for (size_t i = 0; i < n; i++) {
                free(tags[i].name);
                free(tags[i].sha);
                free(tags[i].at);
        }
        free(tags);
        return r;
}

static ssize_t produce(void *arg, char *buf, size_t max) {
        struct history *h = arg;
        size_t n = h->body.len - h->sent;

        if (n > max)
                n = max;
        memcpy(buf, h->body.data + h->sent, n);
        h->sent += n;
        h->pos = h->sent;
        return (ssize_t) n;
}

/* --since: "90d" (days before now) or a time; git's --since then takes RFC 3339. */
static int parse_since(struct history *h, const char *since, char buf[TIMEFMT_LEN]) {
        char *end;
        long days = strtol(since, &end, 10);

        if (end != since && strcmp(end, "d") == 0 && days > 0 && days < 100000) {
                h->since_us = (int64_t) time(NULL) * 1000000 - (int64_t) days * 86400000000;
        } else if (timefmt_parse(since, &h->since_us) < 0) {
                ctl_error("import-git: --since takes a number of days (90d) or a time");
                return -1;
        }
        h->since = timefmt_format(h->since_us, buf);
        return 0;
}

static const char git_usage[] =
        "Usage: doraloopctl import-git REPO --service S [--branch main] [--tags GLOB]\n"
        "                              [--since 90d] [--json]\n"
        "Imports a local clone's history: the commits of the branch as changes of service S,\n"
        "and the tags matching GLOB (default: every tag) as successful production\n"
        "deployments of the tagged commit at the tag's time (annotated: tagger date;\n"
        "lightweight: commit date). --since bounds both (days, or a time; default: all).\n"
        "Token: DORALOOP_ADMIN_TOKEN or --token-file.\n";

int cmd_import_git(const struct ctl *cc, int argc, char **argv) {
        struct ctl c = *cc;
        struct history h = { .branch = "main", .since_us = TIME_UNSET };
        const char *glob = "*", *since = NULL;
        const struct args_option opts[] = { { "--service", &h.service, NULL },
                                            { "--branch", &h.branch, NULL },
                                            { "--tags", &glob, NULL },
                                            { "--since", &since, NULL },
                                            { NULL, NULL, NULL } };
        char since_buf[TIMEFMT_LEN];
        struct upload_source s;
        int r = args_parse(&c, argc, argv, opts, &h.repo_dir, 1, 1, git_usage);

        if (r != ARGS_OK)
                return r == ARGS_HELP ? CTL_OK : CTL_ERROR;
        if (!h.service || !*h.service) {
                ctl_error("import-git: --service is required");
                fputs(git_usage, stderr);
                return CTL_ERROR;
        }
        if (since && parse_since(&h, since, since_buf) < 0)
                return CTL_ERROR;
        repository_name(&h);
        buf_init(&h.body, BODY_MAX);
        if (add_changes(&h) < 0 || add_deployments(&h, glob) < 0) {
                buf_free(&h.body);
                return CTL_ERROR;
        }
        if (!h.body.data) {
                ctl_error("import-git: nothing to import (no commits on %s%s)", h.branch,
                          since ? " since then" : "");
                return CTL_ERROR;
        }
        s = (struct upload_source) { .produce = produce, .arg = &h, .pos = &h.pos,
                                     .total = h.body.len };
        r = upload_import(&c, &s, NULL);
        buf_free(&h.body);
        return r;
}
