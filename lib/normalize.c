/* normalize: settings and typed field readers shared by the sources' normalize(). */
#include "normalize.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "doc.h"
#include "error.h"
#include "event.h"
#include "list.h"
#include "timefmt.h"

int normalize_ignored(struct error *err, const char *fmt, ...) {
        va_list ap;

        if (err) {
                err->code = NULL;
                err->field = NULL;
                va_start(ap, fmt);
                vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
                va_end(ap);
        }
        return 0;
}

struct normalize_options normalize_defaults(void) {
        return (struct normalize_options) {
                .service_map = "",
                .service_paths = "",
                .github_deploy_workflow = "deploy",
                .github_workflow_environment = "production",
                .incident_label = "incident",
                .gitlab_deploy_pattern = "deploy",
                .jira_incident_types = "Incident",
                .jira_change_types = "Change,Change Request,Standard Change,Normal Change,"
                                     "Emergency Change",
                .jira_root_cause_field = "",
                .jira_planned_start_field = "",
                .jira_planned_end_field = "",
                .jira_approvals_field = "",
                .change_key_projects = "CHG",
                .jenkins_deploy_pattern = "deploy",
                .jenkins_environment_param = "ENVIRONMENT",
        };
}

static bool item_equals(const char *item, size_t len, const void *ctx) {
        const char *value = ctx;

        return strlen(value) == len && strncasecmp(item, value, len) == 0;
}

bool normalize_in_list(const char *list, const char *value) {
        return value && list_visit(list, item_equals, value);
}

struct map_lookup {
        const char *name;
        const char *service;
        size_t service_len;
};

/* The first entry naming m->name wins; later ones are visited but ignored. */
static bool map_matches(const char *item, size_t len, const void *ctx) {
        struct map_lookup *m = (struct map_lookup *) ctx;
        const char *eq = memchr(item, '=', len), *service;
        size_t klen, slen;

        if (!eq || m->service)
                return false;
        klen = (size_t) (eq - item);
        service = eq + 1;
        slen = len - klen - 1;
        while (klen && isspace((unsigned char) item[klen - 1]))
                klen--;
        if (strlen(m->name) != klen || strncasecmp(item, m->name, klen) != 0)
                return false;
        while (slen && isspace((unsigned char) *service))
                service++, slen--;
        if (!slen)
                return false;
        m->service = service;
        m->service_len = slen;
        return true;
}

char *normalize_service(const struct normalize_options *o, const char *name) {
        struct map_lookup m = { .name = name };

        if (!name)
                return NULL;
        if (list_visit(o->service_map, map_matches, &m))
                return strndup(m.service, m.service_len);
        return strdup(name);
}

char *normalize_repo_service(const struct normalize_options *o, const char *repo) {
        struct map_lookup m = { .name = repo };
        const char *slash;

        if (!repo)
                return NULL;
        if (list_visit(o->service_map, map_matches, &m))
                return strndup(m.service, m.service_len);
        slash = strrchr(repo, '/');
        return strdup(slash && slash[1] ? slash + 1 : repo);
}

bool normalize_contains(const char *haystack, const char *needle) {
        size_t n = needle ? strlen(needle) : 0;

        if (!haystack || !n)
                return false;
        for (const char *p = haystack; *p; p++)
                if (strncasecmp(p, needle, n) == 0)
                        return true;
        return false;
}

static int wrong_type(struct error *err, const char *path, const char *want) {
        return error_set(err, EBADMSG, "invalid_payload", path, "%s must be %s", path, want);
}

/* The value at a dotted path. Absent (or null on the way) gives NULL; something other than
 * an object on the way is a wrong type, so a mangled parent never reads as "absent". */
static int lookup(json_t *obj, const char *path, json_t **ret, struct error *err) {
        char key[128];
        const char *p = path;

        *ret = NULL;
        while (*p) {
                const char *dot = strchr(p, '.');
                size_t n = dot ? (size_t) (dot - p) : strlen(p);

                if (!obj || json_is_null(obj))
                        return 0;
                if (!json_is_object(obj)) {
                        return error_set(err, EBADMSG, "invalid_payload", path,
                                         "%.*s must be an object", (int) (p - path - 1), path);
                }
                if (n >= sizeof(key))
                        return 0;
                memcpy(key, p, n);
                key[n] = '\0';
                obj = json_object_get(obj, key);
                p += n + (dot ? 1 : 0);
        }
        *ret = obj;
        return 0;
}

static int missing(struct error *err, const char *path) {
        return error_set(err, EBADMSG, "invalid_payload", path, "%s is missing", path);
}

int normalize_string(json_t *obj, const char *path, bool required, const char **ret,
                     struct error *err) {
        json_t *v;
        int r = lookup(obj, path, &v, err);

        *ret = NULL;
        if (r < 0)
                return r;
        if (!v || json_is_null(v))
                return required ? missing(err, path) : 0;
        if (!json_is_string(v))
                return wrong_type(err, path, "a string");
        *ret = json_string_value(v);
        if (required && !**ret)
                return missing(err, path);
        return 0;
}

static int out_of_range(struct error *err, const char *path) {
        return error_set(err, ERANGE, "invalid_payload", path, "%s is out of range: times go "
                         TIMEFMT_RANGE_TEXT, path);
}

static int read_time(json_t *obj, const char *path, bool required, bool epoch, int64_t *ret,
                     struct error *err) {
        json_t *v;
        int r = lookup(obj, path, &v, err);

        *ret = TIME_UNSET;
        if (r < 0)
                return r;
        if (!v || json_is_null(v))
                return required ? missing(err, path) : 0;
        if (json_is_string(v)) {
                r = timefmt_parse(json_string_value(v), ret);
                if (r == -ERANGE)
                        return out_of_range(err, path);
                if (r < 0)
                        return error_set(err, EBADMSG, "invalid_payload", path,
                                         "%s is not an RFC 3339 time", path);
                return 0;
        }
        if (epoch && json_is_integer(v)) {
                json_int_t n = json_integer_value(v);

                /* Seconds until the year 5138, milliseconds after 1973: unambiguous. */
                if (n < 0 || n > 100000000000000LL)
                        return error_set(err, EBADMSG, "invalid_payload", path,
                                         "%s is out of range", path);
                *ret = n > 100000000000LL ? (int64_t) n * 1000 : (int64_t) n * 1000000;
                if (!timefmt_in_range(*ret)) {
                        *ret = TIME_UNSET;
                        return out_of_range(err, path);
                }
                return 0;
        }
        return wrong_type(err, path, epoch ? "an RFC 3339 string or a number" :
                                             "an RFC 3339 string");
}

int normalize_time(json_t *obj, const char *path, bool required, int64_t *ret,
                   struct error *err) {
        return read_time(obj, path, required, false, ret, err);
}

int normalize_time_or_epoch(json_t *obj, const char *path, bool required, int64_t *ret,
                            struct error *err) {
        return read_time(obj, path, required, true, ret, err);
}

int normalize_bool(json_t *obj, const char *path, bool *ret, struct error *err) {
        json_t *v;
        int r = lookup(obj, path, &v, err);

        *ret = false;
        if (r < 0)
                return r;
        if (!v || json_is_null(v))
                return 0;
        if (!json_is_boolean(v))
                return wrong_type(err, path, "true or false");
        *ret = json_is_true(v);
        return 0;
}

int normalize_container(json_t *obj, const char *path, json_type want, json_t **ret,
                        struct error *err) {
        json_t *v;
        int r = lookup(obj, path, &v, err);

        *ret = NULL;
        if (r < 0)
                return r;
        if (!v || json_is_null(v))
                return 0;
        if (json_typeof(v) != want)
                return wrong_type(err, path, want == JSON_OBJECT ? "an object" : "an array");
        *ret = v;
        return 0;
}

int normalize_id(json_t *obj, const char *path, bool required, char *buf, size_t size,
                 const char **ret, struct error *err) {
        json_t *v;
        int r = lookup(obj, path, &v, err);

        *ret = NULL;
        if (r < 0)
                return r;
        if (!v || json_is_null(v))
                return required ? missing(err, path) : 0;
        if (!json_is_integer(v))
                return wrong_type(err, path, "an integer");
        snprintf(buf, size, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        *ret = buf;
        return 0;
}

bool normalize_is_sha(const char *s) {
        size_t n = 0;

        if (!s)
                return false;
        for (; s[n]; n++)
                if (!isxdigit((unsigned char) s[n]))
                        return false;
        return n == 40 || n == 64;
}

struct key_search {
        const char *text;
        char *buf;
        size_t size;
        const char *found;
        size_t found_at;
};

/* Finds "<PROJECT>-<digits>" standing alone (not inside a longer word or number). */
static bool find_key(const char *project, size_t len, const void *ctx) {
        struct key_search *k = (struct key_search *) ctx;

        for (const char *p = k->text; (p = strstr(p, "-")) != NULL; p++) {
                const char *start = p - len, *end = p + 1;

                if (start < k->text || strncmp(start, project, len) != 0 ||
                    !isdigit((unsigned char) *end))
                        continue;
                if (start > k->text && isalnum((unsigned char) start[-1]))
                        continue;
                while (isdigit((unsigned char) *end))
                        end++;
                if (isalnum((unsigned char) *end))
                        continue;
                if (!k->found || (size_t) (start - k->text) < k->found_at) {
                        if ((size_t) (end - start) >= k->size)
                                return false;
                        memcpy(k->buf, start, (size_t) (end - start));
                        k->buf[end - start] = '\0';
                        k->found = k->buf;
                        k->found_at = (size_t) (start - k->text);
                }
                break;
        }
        return false; /* look through every project: the earliest key wins */
}

const char *normalize_change_key(const char *text, const char *projects, char *buf,
                                 size_t size) {
        struct key_search k = { .text = text, .buf = buf, .size = size };

        if (!text || !projects)
                return NULL;
        list_visit(projects, find_key, &k);
        return k.found;
}

int normalize_element_error(int r, struct error *err, const char *array, size_t i) {
        char msg[sizeof(err->msg)];

        if (r >= 0 || !err)
                return r;
        if (snprintf(msg, sizeof(msg), "%s[%zu]: %s", array, i, err->msg) >= 0)
                memcpy(err->msg, msg, sizeof(msg));
        return r;
}

int normalize_push_commit(struct event_list *out, json_t *commit,
                          const struct normalize_options *o, const char *repo,
                          const char *service, const char *branch, struct error *err) {
        static const char *const file_keys[] = { "added", "modified", "removed", NULL };
        const char *sha, *message, *author;
        int64_t at;
        struct event *e;
        bool ok = true;
        int r;

        if ((r = normalize_string(commit, "id", true, &sha, err)) < 0 ||
            (r = normalize_time(commit, "timestamp", true, &at, err)) < 0 ||
            (r = normalize_string(commit, "message", false, &message, err)) < 0 ||
            (r = normalize_string(commit, "author.name", false, &author, err)) < 0)
                return r;
        if (!normalize_is_sha(sha))
                return error_set(err, EBADMSG, "invalid_payload", "commits.id",
                                 "commit id '%.64s' is not a sha", sha);
        for (size_t i = 0; i < out->n; i++)
                if (out->items[i].kind == EVENT_CHANGE &&
                    strcmp(out->items[i].change.sha, sha) == 0)
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
        if (!ok)
                return -ENOMEM;
        return normalize_change_files(commit, file_keys, o, &e->change, err);
}

/* One entry of service_paths, "owner/repo:path/prefix=SERVICE", cut into its parts (not
 * NUL-terminated: lengths). The prefix loses its slashes at both ends. */
struct path_entry {
        const char *repo, *prefix, *service;
        size_t repo_len, prefix_len, service_len;
};

static size_t trimmed(const char **s, size_t n) {
        while (n && isspace((unsigned char) **s))
                (*s)++, n--;
        while (n && isspace((unsigned char) (*s)[n - 1]))
                n--;
        return n;
}

static bool parse_path_entry(const char *item, size_t len, struct path_entry *ret) {
        const char *eq = NULL, *colon;

        for (size_t i = len; i > 0 && !eq; i--)
                if (item[i - 1] == '=')
                        eq = item + i - 1;
        colon = eq ? memchr(item, ':', (size_t) (eq - item)) : NULL;
        if (!colon)
                return false;
        ret->repo = item;
        ret->repo_len = trimmed(&ret->repo, (size_t) (colon - item));
        ret->prefix = colon + 1;
        ret->prefix_len = trimmed(&ret->prefix, (size_t) (eq - colon - 1));
        while (ret->prefix_len && *ret->prefix == '/')
                ret->prefix++, ret->prefix_len--;
        while (ret->prefix_len && ret->prefix[ret->prefix_len - 1] == '/')
                ret->prefix_len--;
        ret->service = eq + 1;
        ret->service_len = trimmed(&ret->service, len - (size_t) (eq + 1 - item));
        return ret->repo_len && ret->prefix_len && ret->service_len;
}

static bool same_repo(const struct path_entry *p, const char *repo) {
        return repo && strlen(repo) == p->repo_len && strncasecmp(p->repo, repo, p->repo_len) == 0;
}

static bool names_repo(const char *item, size_t len, const void *ctx) {
        struct path_entry p;

        return parse_path_entry(item, len, &p) && same_repo(&p, ctx);
}

/* Whole path components: "services/checkout" holds services/checkout/main.go, not
 * services/checkout-v2/main.go. */
static bool under_prefix(const char *file, const struct path_entry *p) {
        while (*file == '/')
                file++;
        return strncmp(file, p->prefix, p->prefix_len) == 0 &&
               (file[p->prefix_len] == '\0' || file[p->prefix_len] == '/');
}

int normalize_change_files(json_t *obj, const char *const *keys,
                           const struct normalize_options *o, struct event_change *c,
                           struct error *err) {
        size_t total = 0;
        int r = 0;

        if (!list_visit(o->service_paths, names_repo, c->repo))
                return 0;
        for (size_t k = 0; keys[k]; k++) {
                json_t *files;

                if ((r = normalize_container(obj, keys[k], JSON_ARRAY, &files, err)) < 0)
                        return r;
                total += json_array_size(files);
        }
        c->files = calloc(total ? total : 1, sizeof(*c->files));
        if (!c->files)
                return -ENOMEM;
        for (size_t k = 0; keys[k]; k++) {
                json_t *files = json_object_get(obj, keys[k]), *f;
                size_t i;

                json_array_foreach(files, i, f) {
                        if (!json_is_string(f))
                                return error_set(err, EBADMSG, "invalid_payload", keys[k],
                                                 "%s must hold strings (file paths)", keys[k]);
                        c->files[c->n_files] = strdup(json_string_value(f));
                        if (!c->files[c->n_files])
                                return -ENOMEM;
                        c->n_files++;
                }
        }
        return 0;
}

/* The services of service_paths one change's files belong to, each once, in the order of
 * the setting. */
struct path_match {
        const struct event_change *change;
        struct path_entry found[64];
        size_t n_found;
        bool overflow;
};

static bool has_service(const struct path_match *m, const struct path_entry *p) {
        for (size_t i = 0; i < m->n_found; i++)
                if (m->found[i].service_len == p->service_len &&
                    memcmp(m->found[i].service, p->service, p->service_len) == 0)
                        return true;
        return false;
}

static bool match_entry(const char *item, size_t len, const void *ctx) {
        struct path_match *m = (struct path_match *) ctx;
        struct path_entry p;

        if (!parse_path_entry(item, len, &p) || !same_repo(&p, m->change->repo) ||
            has_service(m, &p))
                return false;
        for (size_t i = 0; i < m->change->n_files; i++) {
                if (!under_prefix(m->change->files[i], &p))
                        continue;
                if (m->n_found == sizeof(m->found) / sizeof(m->found[0])) {
                        m->overflow = true;
                        return false;
                }
                m->found[m->n_found++] = p;
                return true;
        }
        return false;
}

/* A copy of change c (indexed, as l may move) for another service, without its files. */
static int copy_for_service(struct event_list *l, size_t c, const struct path_entry *p,
                            struct error *err) {
        struct event *e = event_list_add(l, EVENT_CHANGE);
        const struct event_change *from;
        bool ok = true;

        if (!e)
                return l->n >= EVENT_LIST_MAX
                        ? error_set(err, EBADMSG, "invalid_payload", "service_paths",
                                    "a push whose commits belong to several services makes "
                                    "more than %d rows", EVENT_LIST_MAX)
                        : -ENOMEM;
        from = &l->items[c].change;
        e->change = (struct event_change) {
                .service = strndup(p->service, p->service_len),
                .repo = event_strdup(from->repo, &ok), .sha = event_strdup(from->sha, &ok),
                .branch = event_strdup(from->branch, &ok),
                .author = event_strdup(from->author, &ok),
                .message = event_strdup(from->message, &ok),
                .committed_at = from->committed_at,
        };
        return ok && e->change.service ? 0 : -ENOMEM;
}

int normalize_map_paths(const struct normalize_options *o, struct event_list *l,
                        struct error *err) {
        size_t n0 = l->n;
        int r = 0;

        if (!o->service_paths || !*o->service_paths)
                return 0;
        for (size_t c = 0; c < n0 && r >= 0; c++) {
                struct path_match m = { .change = &l->items[c].change };
                char *service;

                if (l->items[c].kind != EVENT_CHANGE || !l->items[c].change.files)
                        continue;
                list_visit(o->service_paths, match_entry, &m);
                if (m.overflow)
                        return error_set(err, EBADMSG, "invalid_payload", "service_paths",
                                         "a commit belongs to more than %zu services",
                                         sizeof(m.found) / sizeof(m.found[0]));
                if (!m.n_found)
                        continue;       /* it keeps its repository's service */
                service = strndup(m.found[0].service, m.found[0].service_len);
                if (!service)
                        return -ENOMEM;
                free(l->items[c].change.service);
                l->items[c].change.service = service;
                for (size_t i = 1; i < m.n_found && r >= 0; i++)
                        r = copy_for_service(l, c, &m.found[i], err);
        }
        return r < 0 ? r : (int) (l->n - n0);
}

/* The digits of a severity number at s, standing alone: their count, or 0. */
static size_t severity_digits(const char *s) {
        size_t n = strspn(s, "0123456789");

        return n && n <= 3 && !isalnum((unsigned char) s[n]) ? n : 0;
}

const char *normalize_severity_label(const char *label, char *buf, size_t size) {
        const char *rest = NULL;
        size_t n;

        if (!label)
                return NULL;
        if (strncasecmp(label, "severity", 8) == 0 && (label[8] == ':' || label[8] == '-')) {
                rest = label + 9 + (label[9] == ':');
                if (!severity_digits(rest))
                        return *rest ? rest : NULL;     /* "severity:high" is "high" */
        } else if (strncasecmp(label, "sev", 3) == 0) {
                rest = label + 3;
                rest += *rest == ':' || *rest == '-';
                rest += *rest == ':';
        } else if ((label[0] == 'S' || label[0] == 's') && severity_digits(label + 1) &&
                   !label[1 + severity_digits(label + 1)]) {
                rest = label + 1;                      /* "S1", the label alone */
        }
        n = rest ? severity_digits(rest) : 0;
        if (!n || size < n + 4)
                return NULL;
        snprintf(buf, size, "sev%.*s", (int) n, rest);
        return buf;
}
