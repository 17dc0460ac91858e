/* normalize: settings and typed field readers shared by the sources' normalize().
 * A reader refuses a field of the wrong JSON type with -EBADMSG naming the field, so a
 * malformed payload ends as status "error" with a precise message, never as wrong rows. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

struct error;
struct event_change;
struct event_list;

/* What decides how payloads map to rows; all borrowed strings, never NULL (may be ""). */
struct normalize_options {
        const char *service_map;                /* NAME=SERVICE,... */
        const char *service_paths;              /* owner/repo:path/prefix=SERVICE,... */
        const char *github_deploy_workflow;     /* workflow names containing it deploy */
        const char *github_workflow_environment;/* environment of such a workflow run */
        const char *incident_label;             /* GitHub/GitLab issue label for incidents */
        const char *gitlab_deploy_pattern;      /* pipeline jobs/stages containing it deploy */
        const char *jira_incident_types;        /* comma-separated issue type names */
        const char *jira_change_types;          /* comma-separated issue type names */
        const char *jira_root_cause_field;      /* custom field id holding the root cause */
        const char *jira_planned_start_field;   /* custom field ids of a change's window */
        const char *jira_planned_end_field;
        const char *jira_approvals_field;       /* custom field id of JSM's Approvals */
        const char *change_key_projects;        /* Jira project keys of change requests */
        const char *jenkins_deploy_pattern;     /* job names containing it deploy */
        const char *jenkins_environment_param;  /* build parameter naming the environment */
        size_t max_json_elements;               /* a body's values at most; 0: doc.h's default */
};

/* Says why a delivery is not used (err->msg, shown in GET /api/v1/deliveries) and returns
 * 0, normalize()'s "ignored". */
int normalize_ignored(struct error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Returns the documented defaults for every option. */
struct normalize_options normalize_defaults(void);

/* The service for name: its service_map entry, else name itself. A malloc'd string, or NULL
 * on OOM (name NULL: NULL). */
char *normalize_service(const struct normalize_options *o, const char *name);

/* The service of a repository "owner/repo" (GitLab "group/sub/project"): its service_map
 * entry, else the part after the last '/'. A malloc'd string, or NULL on OOM or NULL repo. */
char *normalize_repo_service(const struct normalize_options *o, const char *repo);

/* Case-insensitive: haystack contains needle (an empty needle never matches). */
bool normalize_contains(const char *haystack, const char *needle);

/* Case-insensitive membership of value in a comma-separated list (items trimmed). */
bool normalize_in_list(const char *list, const char *value);

/* Readers: the value at path below obj. Absent or null gives NULL / TIME_UNSET / false and
 * 0; the wrong type gives -EBADMSG (err->field = path), as does a missing required value. */
int normalize_string(json_t *obj, const char *path, bool required, const char **ret,
                     struct error *err) __attribute__((warn_unused_result));

/* A time as an RFC 3339 string. One outside timefmt's range (lib/timefmt.h) gives -ERANGE,
 * which delivery_normalize() turns into a refusal. */
int normalize_time(json_t *obj, const char *path, bool required, int64_t *ret,
                   struct error *err) __attribute__((warn_unused_result));

/* A time as an RFC 3339 string, or a number of seconds (legacy GitHub pushes) or, above
 * 1e11, of milliseconds (Jira's "timestamp", JSM automation) since the epoch: only for
 * fields the vendor documents as numbers. */
int normalize_time_or_epoch(json_t *obj, const char *path, bool required, int64_t *ret,
                            struct error *err) __attribute__((warn_unused_result));

int normalize_bool(json_t *obj, const char *path, bool *ret, struct error *err)
        __attribute__((warn_unused_result));

/* An object or array (want JSON_OBJECT / JSON_ARRAY); absent or null gives NULL. */
int normalize_container(json_t *obj, const char *path, json_type want, json_t **ret,
                        struct error *err) __attribute__((warn_unused_result));

/* An integer id, as text in buf (size >= 32). */
int normalize_id(json_t *obj, const char *path, bool required, char *buf, size_t size,
                 const char **ret, struct error *err) __attribute__((warn_unused_result));

/* Prefixes a reader's error with the array element it is about: "commits[3]: id is
 * missing". Returns r. Thread-safe (err is the caller's). */
int normalize_element_error(int r, struct error *err, const char *array, size_t i);

/* A change from one commit of a push as GitHub and GitLab list it ({id, timestamp, message,
 * author.name, added, modified, removed}) on branch; a commit listed twice is one change.
 * Its files are kept (normalize_change_files) for normalize_map_paths. Returns 0 or a
 * negative errno (-EBADMSG naming the field). */
int normalize_push_commit(struct event_list *out, json_t *commit,
                          const struct normalize_options *o, const char *repo,
                          const char *service, const char *branch, struct error *err)
        __attribute__((warn_unused_result));

/* What a source calls to report the files a change touched: the strings of the arrays
 * named in keys (NULL-terminated, e.g. "added", "modified", "removed") below obj, copied
 * into c->files, but only when service_paths names c->repo (nothing else reads them).
 * Returns 0, -EBADMSG (an array of something else than strings) or -ENOMEM. */
int normalize_change_files(json_t *obj, const char *const *keys,
                           const struct normalize_options *o, struct event_change *c,
                           struct error *err) __attribute__((warn_unused_result));

/* The monorepo mapping, once for every source (delivery_normalize runs it after the
 * source's normalize()): a change listing its files belongs to every service whose
 * service_paths prefix (whole path components) one of them has, and only to those: it
 * becomes one change per such service (the first keeps the row, the others are copies
 * appended to l); one matching none keeps its repository's service. Returns the number of
 * rows added, -EBADMSG past EVENT_LIST_MAX or -ENOMEM. Thread-safe. */
int normalize_map_paths(const struct normalize_options *o, struct event_list *l,
                        struct error *err) __attribute__((warn_unused_result));

/* The severity an issue label names, for GitHub and GitLab: "sev1", "sev-1", "sev:1",
 * "severity:1", "severity::1" and "S1" (any case) are all "sev1"; "severity:<word>" (or
 * "severity::<word>") is that word as written. NULL when the label names none; else buf
 * or a pointer into label. */
const char *normalize_severity_label(const char *label, char *buf, size_t size);

/* The first change-request key ("CHG-123") of one of the comma-separated projects in
 * text, copied into buf; NULL when there is none. */
const char *normalize_change_key(const char *text, const char *projects, char *buf,
                                 size_t size);

/* Whether s is a 40-hex-digit commit sha (SHA-1) or 64 (SHA-256 repositories). */
bool normalize_is_sha(const char *s);
