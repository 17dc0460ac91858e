/* config: one table with a row per key; loading from file, credentials, environment, flags. */
#include "config.h"

#include "../lib/normalize.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum key_type {
        KEY_STRING,
        KEY_SECRET,     /* a string never shown; may come from $CREDENTIALS_DIRECTORY */
        KEY_SIZE,       /* bytes, with an optional k/M/G (binary) suffix */
        KEY_LONG,
        KEY_BOOL,
};

struct key {
        const char *name;
        enum key_type type;
        const char *def;        /* default as text; NULL: unset */
        size_t offset;
        long min, max;          /* for KEY_LONG and KEY_SIZE */
        const char *(*check)(const char *value); /* extra validation: NULL or a problem */
        const char *help;
        bool restart;           /* read only at start: a reload keeps the running value */
};

static const char *check_listen(const char *v);
static const char *check_change_policy(const char *v);
static const char *check_service_map(const char *v);
static const char *check_service_paths(const char *v);
static const char *check_environment_list(const char *v);

#define OFF(f) offsetof(struct config, f)
#define RESTART true     /* a reload keeps the running value */
#define LIVE false       /* a reload applies it to requests that start after it */
static const struct key keys[] = {
        { "listen", KEY_STRING, "127.0.0.1:8080", OFF(listen), 0, 0, check_listen,
          "HOST:PORT to listen on ([::1]:8080 for IPv6; ignored under socket activation)", RESTART },
        { "db", KEY_STRING, "", OFF(db), 0, 0, NULL,
          "libpq connection string or URI (empty: libpq defaults and PG* variables)",
          RESTART },
        { "query_db", KEY_STRING, "", OFF(query_db), 0, 0, NULL,
          "libpq connection string the read API and the DORA figures read from, e.g. a "
          "streaming standby (empty: db); writes and the deployment gate always use db",
          RESTART },
        { "mirror_poll_ms", KEY_LONG, "100", OFF(mirror_poll_ms), 10, 3600000, NULL,
          "how often, at most, a read looks for rows other daemons wrote; LISTEN/NOTIFY on db "
          "shows them at once, this is the fallback (e.g. behind PgBouncer)", RESTART },
        { "spool_dir", KEY_STRING, "/var/lib/doraloop/spool", OFF(spool_dir), 0, 0, NULL,
          "directory for the on-disk spool", RESTART },
        { "max_body_bytes", KEY_SIZE, "1048576", OFF(max_body_bytes), 1, 256L << 20, NULL,
          "largest webhook body accepted; a larger one gets 413", LIVE },
        { "max_json_elements", KEY_LONG, "50000", OFF(max_json_elements), 100, 10000000, NULL,
          "most JSON values a body may hold (bounds the cost of its parse); more is a 400",
          LIVE },
        { "github_secret", KEY_SECRET, NULL, OFF(github_secret), 0, 0, NULL,
          "GitHub webhook secret(s), comma-separated while rotating", LIVE },
        { "gitlab_token", KEY_SECRET, NULL, OFF(gitlab_token), 0, 0, NULL,
          "GitLab secret token(s)", LIVE },
        { "jira_secret", KEY_SECRET, NULL, OFF(jira_secret), 0, 0, NULL,
          "Jira webhook secret(s) (HMAC) or ?token= value(s)", LIVE },
        { "jenkins_token", KEY_SECRET, NULL, OFF(jenkins_token), 0, 0, NULL,
          "Jenkins bearer / ?token= value(s)", LIVE },
        { "generic_token", KEY_SECRET, NULL, OFF(generic_token), 0, 0, NULL,
          "generic source bearer token(s)", LIVE },
        { "api_token", KEY_SECRET, NULL, OFF(api_token), 0, 0, NULL,
          "bearer token(s) for the read API (unset: open, logged as a warning)", LIVE },
        { "admin_token", KEY_SECRET, NULL, OFF(admin_token), 0, 0, NULL,
          "bearer token(s) for admin endpoints (unset: disabled)", LIVE },
        { "triage_token", KEY_SECRET, NULL, OFF(triage_token), 0, 0, NULL,
          "bearer token(s) for triage endpoints; admin_token passes them too (both unset: "
          "disabled)", LIVE },
        { "allow_unsigned", KEY_BOOL, "false", OFF(allow_unsigned), 0, 0, NULL,
          "accept deliveries for sources with no secret configured (local trials only)",
          LIVE },
        { "production_environments", KEY_STRING, "production,prod",
          OFF(production_environments), 0, 0, check_environment_list,
          "environment names that count as production (at most 32, 511 bytes)", RESTART },
        { "incident_link_window_hours", KEY_LONG, "24", OFF(incident_link_window_hours),
          0, 24 * 366, NULL, "how far back an incident links to a deployment", RESTART },
        { "change_policy", KEY_STRING, "auto", OFF(change_policy), 0, 0, check_change_policy,
          "auto | flag | off: production deployments that name no change request", RESTART },
        { "change_key_projects", KEY_STRING, "CHG", OFF(change_key_projects), 0, 0, NULL,
          "Jira project keys (comma-separated) whose issue keys (CHG-123) in commit messages, "
          "branch names and GitHub deployment descriptions name a deployment's change request", RESTART },
        { "service_map", KEY_STRING, "", OFF(service_map), 0, 0, check_service_map,
          "NAME=SERVICE,... mapping repositories and Jira projects/components to services",
          LIVE },
        { "service_paths", KEY_STRING, "", OFF(service_paths), 0, 0, check_service_paths,
          "owner/repo:path/prefix=SERVICE,... for monorepos: a pushed commit belongs to every "
          "service one of its files is under (whole path components), and only to those; one "
          "under none keeps the repository's service. Applies to deliveries from then on "
          "(replay to re-derive older ones)", LIVE },
        { "incident_severities", KEY_STRING, "", OFF(incident_severities), 0, 0, NULL,
          "severities (comma-separated, any case) whose incidents count for change failure "
          "rate, time to restore and failed deployment recovery time; others are stored and "
          "listed, not counted (empty: all count; with a list, an incident without a severity "
          "does not). A change rebuilds the figures at start", RESTART },
        { "github_deploy_workflow", KEY_STRING, "deploy", OFF(github_deploy_workflow), 0, 0,
          NULL, "GitHub workflow runs whose name contains this (any case) are deployments", LIVE },
        { "github_workflow_environment", KEY_STRING, "production",
          OFF(github_workflow_environment), 0, 0, NULL,
          "environment of such workflow runs", LIVE },
        { "incident_label", KEY_STRING, "incident", OFF(incident_label), 0, 0, NULL,
          "GitHub/GitLab issue label that makes an issue an incident", LIVE },
        { "gitlab_deploy_pattern", KEY_STRING, "deploy", OFF(gitlab_deploy_pattern), 0, 0,
          NULL, "GitLab pipelines with a job or stage containing this are deployments", LIVE },
        { "jira_incident_types", KEY_STRING, "Incident", OFF(jira_incident_types), 0, 0, NULL,
          "Jira issue types (comma-separated) that are incidents", LIVE },
        { "jira_change_types", KEY_STRING,
          "Change,Change Request,Standard Change,Normal Change,Emergency Change",
          OFF(jira_change_types), 0, 0, NULL,
          "Jira issue types (comma-separated) that are change requests", LIVE },
        { "jira_root_cause_field", KEY_STRING, "", OFF(jira_root_cause_field), 0, 0, NULL,
          "Jira custom field id (customfield_NNNNN) holding an incident's root cause", LIVE },
        { "jira_planned_start_field", KEY_STRING, "", OFF(jira_planned_start_field), 0, 0,
          NULL, "Jira custom field id holding a change's planned start", LIVE },
        { "jira_planned_end_field", KEY_STRING, "", OFF(jira_planned_end_field), 0, 0, NULL,
          "Jira custom field id holding a change's planned end", LIVE },
        { "jira_approvals_field", KEY_STRING, "", OFF(jira_approvals_field), 0, 0, NULL,
          "Jira custom field id of JSM's Approvals field: its latest decision approves or "
          "declines a change still pending by status",
          LIVE },
        { "jenkins_deploy_pattern", KEY_STRING, "deploy", OFF(jenkins_deploy_pattern), 0, 0,
          NULL, "Jenkins jobs whose name or path contains this are deployments", LIVE },
        { "jenkins_environment_param", KEY_STRING, "ENVIRONMENT",
          OFF(jenkins_environment_param), 0, 0, NULL,
          "Jenkins build parameter naming the environment", LIVE },
        { "writers", KEY_LONG, "2", OFF(writers), 1, 16, NULL,
          "writer threads, each with its own database connection", RESTART },
        { "batch_max", KEY_LONG, "256", OFF(batch_max), 1, 10000, NULL,
          "deliveries stored in one transaction at most", RESTART },
        { "queue_max", KEY_LONG, "4096", OFF(queue_max), 1, 1000000, NULL,
          "deliveries waiting for a writer at most; beyond it 503 with Retry-After", RESTART },
        { "http_threads", KEY_LONG, "0", OFF(http_threads), 0, 256, NULL,
          "HTTP threads (0: one per CPU)", RESTART },
        { "connection_timeout", KEY_LONG, "30", OFF(connection_timeout), 1, 3600, NULL,
          "seconds an idle or stalled connection is kept", RESTART },
        { "connection_limit", KEY_LONG, "1024", OFF(connection_limit), 1, 65536, NULL,
          "concurrent connections at most", RESTART },
        { "header_timeout", KEY_LONG, "10", OFF(header_timeout), 1, 3600, NULL,
          "seconds a new connection has to send its request headers in full, however slowly "
          "it trickles them (at most connection_timeout); then it is closed without an "
          "answer. Later requests on a kept-alive connection get connection_timeout",
          RESTART },
        { "per_ip_connection_limit", KEY_LONG, "256", OFF(per_ip_connection_limit), 0, 65536,
          NULL, "concurrent connections from one client address at most (more are closed at "
          "once; 0: no cap). Keep it below connection_limit, so that other addresses such as "
          "health probes keep room. Behind a reverse proxy every client has the proxy's "
          "address: set it to 0 or to what the proxy opens at most, and cap per client there",
          RESTART },
        { "read_threads", KEY_LONG, "2", OFF(read_threads), 1, 64, NULL,
          "threads answering the read API and /metrics, apart from the HTTP threads that take "
          "webhooks (at a lower priority)", RESTART },
        { "read_queue_max", KEY_LONG, "64", OFF(read_queue_max), 1, 100000, NULL,
          "reads waiting for a read thread at most; beyond it 503 with Retry-After", RESTART },
        { "series_max_buckets", KEY_LONG, "1000", OFF(series_max_buckets), 1, 3700, NULL,
          "buckets one /api/v1/dora/series answer holds at most; more is a 400", LIVE },
};
#undef OFF
#undef RESTART
#undef LIVE
#define N_KEYS (sizeof(keys) / sizeof(keys[0]))

static const char *check_listen(const char *v) {
        const char *colon = strrchr(v, ':');
        char *end;
        long port;

        if (!colon || colon == v)
                return "must be HOST:PORT";
        errno = 0;
        port = strtol(colon + 1, &end, 10);
        if (errno || *end || end == colon + 1 || port < 0 || port > 65535)
                return "must be HOST:PORT with a port from 0 to 65535";
        return NULL;
}

static const char *check_change_policy(const char *v) {
        if (strcmp(v, "auto") && strcmp(v, "flag") && strcmp(v, "off"))
                return "must be auto, flag or off";
        return NULL;
}

static const char *check_service_map(const char *v) {
        const char *p = v;

        while (*p) {
                const char *end = strchr(p, ',');
                size_t n = end ? (size_t) (end - p) : strlen(p);
                const char *eq = memchr(p, '=', n);

                if (n && (!eq || eq == p || eq == p + n - 1))
                        return "must be NAME=SERVICE,...";
                p += n + (end ? 1 : 0);
        }
        return NULL;
}

/* Every item must be REPO:PREFIX=SERVICE with all three non-empty. */
static const char *check_service_paths(const char *v) {
        for (const char *p = v; *p;) {
                size_t n = strcspn(p, ",");
                const char *colon = memchr(p, ':', n), *eq = NULL;

                for (size_t i = n; i > 0 && !eq; i--)
                        if (p[i - 1] == '=')
                                eq = p + i - 1;
                if (strspn(p, " \t") < n &&
                    (!colon || !eq || colon == p || eq < colon + 2 || eq == p + n - 1))
                        return "must be owner/repo:path/prefix=SERVICE,...";
                p += n + (p[n] == ',');
        }
        return NULL;
}

static const char *check_environment_list(const char *v) {
        size_t names = 0;

        if (strlen(v) > CONFIG_ENV_LIST_MAX_BYTES)
                return "must be at most 511 bytes";
        for (const char *p = v; *p;) {
                size_t n = strcspn(p, ","), lead = strspn(p, " ");

                names += lead < n; /* blank items are skipped, as when the list is used */
                p += n + (p[n] == ',');
        }
        return names > CONFIG_ENV_LIST_MAX ? "must name at most 32 environments" : NULL;
}

static const struct key *find_key(const char *name, size_t len) {
        for (size_t i = 0; i < N_KEYS; i++) {
                const char *k = keys[i].name;
                size_t j;

                for (j = 0; j < len && k[j]; j++) {
                        char c = name[j] == '-' ? '_' : (char) tolower((unsigned char) name[j]);
                        if (c != k[j])
                                break;
                }
                if (j == len && !k[j])
                        return &keys[i];
        }
        return NULL;
}

static void *field(struct config *cfg, const struct key *k) {
        return (char *) cfg + k->offset;
}

static const char *parse_size(const char *v, const struct key *k, size_t *ret) {
        char *end;
        unsigned long long n;
        unsigned shift = 0;

        if (!isdigit((unsigned char) *v))
                return "is not a size in bytes";
        errno = 0;
        n = strtoull(v, &end, 10);
        if (*end && !end[1]) {
                switch (tolower((unsigned char) *end)) {
                case 'k': shift = 10; end++; break;
                case 'm': shift = 20; end++; break;
                case 'g': shift = 30; end++; break;
                }
        }
        if (errno || *end)
                return "is not a size in bytes (digits, optionally followed by k, M or G)";
        if (n > (ULLONG_MAX >> 30) || (n << shift) < (unsigned long long) k->min ||
            (n << shift) > (unsigned long long) k->max)
                return "is out of range";
        *ret = (size_t) (n << shift);
        return NULL;
}

static const char *parse_long(const char *v, const struct key *k, long *ret) {
        char *end;
        long n;

        errno = 0;
        n = strtol(v, &end, 10);
        if (errno || end == v || *end)
                return "is not a whole number";
        if (n < k->min || n > k->max)
                return "is out of range";
        *ret = n;
        return NULL;
}

static const char *parse_bool(const char *v, bool *ret) {
        static const char *const yes[] = { "1", "true", "yes", "on" };
        static const char *const no[] = { "0", "false", "no", "off" };

        for (size_t i = 0; i < 4; i++) {
                if (strcasecmp(v, yes[i]) == 0)
                        return *ret = true, NULL;
                if (strcasecmp(v, no[i]) == 0)
                        return *ret = false, NULL;
        }
        return "is not a boolean (true or false)";
}

/* Sets one key from text; origin says where the value came from, for the error line. */
static int set_key(struct config *cfg, const struct key *k, const char *v, const char *origin,
                   char *errbuf, size_t errlen) {
        const char *problem = NULL;

        switch (k->type) {
        case KEY_STRING:
        case KEY_SECRET: {
                char **p = field(cfg, k);
                char *copy = strdup(v);

                if (!copy)
                        problem = "cannot be stored: out of memory";
                else {
                        free(*p);
                        *p = copy;
                }
                break;
        }
        case KEY_SIZE:
                problem = parse_size(v, k, field(cfg, k));
                break;
        case KEY_LONG:
                problem = parse_long(v, k, field(cfg, k));
                break;
        case KEY_BOOL:
                problem = parse_bool(v, field(cfg, k));
                break;
        }
        if (!problem && k->check)
                problem = k->check(v);
        if (problem) {
                if (k->type == KEY_SECRET)
                        snprintf(errbuf, errlen, "%s (from %s) %s", k->name, origin, problem);
                else
                        snprintf(errbuf, errlen, "%s (from %s): '%s' %s", k->name, origin, v,
                                 problem);
                return -EINVAL;
        }
        return 0;
}

static char *trim(char *s) {
        char *end;

        while (isspace((unsigned char) *s))
                s++;
        end = s + strlen(s);
        while (end > s && isspace((unsigned char) end[-1]))
                *--end = '\0';
        return s;
}

static int load_file(struct config *cfg, const char *path, bool must_exist, char *errbuf,
                     size_t errlen) {
        FILE *f = fopen(path, "re");
        char line[4096], origin[PATH_MAX + 32];
        int lineno = 0, r = 0;

        if (!f) {
                if (errno == ENOENT && !must_exist)
                        return 0;
                snprintf(errbuf, errlen, "config: cannot open '%s': %s", path, strerror(errno));
                return -errno;
        }
        while (r == 0 && fgets(line, sizeof(line), f)) {
                char *p, *eq, *key, *value;
                const struct key *k;

                lineno++;
                p = trim(line);
                if (!*p || *p == '#')
                        continue;
                eq = strchr(p, '=');
                if (!eq) {
                        snprintf(errbuf, errlen, "config: %s:%d: expected 'key = value'", path,
                                 lineno);
                        r = -EINVAL;
                        break;
                }
                *eq = '\0';
                key = trim(p);
                value = trim(eq + 1);
                if (value[0] == '"' && strlen(value) >= 2 && value[strlen(value) - 1] == '"') {
                        value[strlen(value) - 1] = '\0';
                        value++;
                }
                k = find_key(key, strlen(key));
                if (!k) {
                        snprintf(errbuf, errlen, "config: %s:%d: unknown key '%s'", path,
                                 lineno, key);
                        r = -EINVAL;
                        break;
                }
                snprintf(origin, sizeof(origin), "%s:%d", path, lineno);
                r = set_key(cfg, k, value, origin, errbuf, errlen);
        }
        fclose(f);
        return r;
}

/* systemd's LoadCredential= puts each secret in a file named after it. */
static int load_credentials(struct config *cfg, char *errbuf, size_t errlen) {
        const char *dir = getenv("CREDENTIALS_DIRECTORY");

        if (!dir || !*dir)
                return 0;
        for (size_t i = 0; i < N_KEYS; i++) {
                char path[PATH_MAX], value[4096];
                FILE *f;
                size_t n;
                int r;

                if (keys[i].type != KEY_SECRET)
                        continue;
                snprintf(path, sizeof(path), "%s/%s", dir, keys[i].name);
                f = fopen(path, "re");
                if (!f)
                        continue;
                n = fread(value, 1, sizeof(value) - 1, f);
                fclose(f);
                value[n] = '\0';
                r = set_key(cfg, &keys[i], trim(value), "credentials", errbuf, errlen);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int load_environment(struct config *cfg, char *errbuf, size_t errlen) {
        for (size_t i = 0; i < N_KEYS; i++) {
                char var[64];
                const char *v;
                size_t j;
                int r;

                memcpy(var, "DORALOOP_", 9);
                for (j = 0; keys[i].name[j] && j + 10 < sizeof(var); j++)
                        var[9 + j] = (char) toupper((unsigned char) keys[i].name[j]);
                var[9 + j] = '\0';
                v = getenv(var);
                if (!v)
                        continue;
                r = set_key(cfg, &keys[i], v, var, errbuf, errlen);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Walks --KEY VALUE / --KEY=VALUE flags; with cfg NULL it only finds --config. */
static int load_flags(struct config *cfg, int argc, char *const *argv, const char **ret_path,
                      char *errbuf, size_t errlen) {
        for (int i = 1; i < argc; i++) {
                const char *arg = argv[i], *name, *eq, *value;
                const struct key *k = NULL;
                size_t len;
                int r;

                if (strncmp(arg, "--", 2) != 0) {
                        snprintf(errbuf, errlen, "unexpected argument '%s' (see --help)", arg);
                        return -EINVAL;
                }
                name = arg + 2;
                eq = strchr(name, '=');
                len = eq ? (size_t) (eq - name) : strlen(name);
                if (!(len == 6 && strncmp(name, "config", 6) == 0)) {
                        k = find_key(name, len);
                        if (!k) {
                                snprintf(errbuf, errlen, "unknown option '--%.*s' (see --help)",
                                         (int) len, name);
                                return -EINVAL;
                        }
                }
                if (eq)
                        value = eq + 1;
                else if (i + 1 < argc)
                        value = argv[++i];
                else {
                        snprintf(errbuf, errlen, "option '--%.*s' needs a value", (int) len,
                                 name);
                        return -EINVAL;
                }
                if (!k) {
                        *ret_path = value;
                        continue;
                }
                if (!cfg)
                        continue;
                r = set_key(cfg, k, value, "command line", errbuf, errlen);
                if (r < 0)
                        return r;
        }
        return 0;
}

struct config *config_load(int argc, char *const *argv, char *errbuf, size_t errlen) {
        struct config *cfg = calloc(1, sizeof(*cfg));
        const char *path = NULL;

        if (!cfg) {
                snprintf(errbuf, errlen, "config: out of memory");
                return NULL;
        }
        for (size_t i = 0; i < N_KEYS; i++)
                if (keys[i].def && set_key(cfg, &keys[i], keys[i].def, "default", errbuf,
                                           errlen) < 0)
                        goto fail;
        if (load_flags(NULL, argc, argv, &path, errbuf, errlen) < 0)
                goto fail;
        if (!path)
                path = getenv("DORALOOP_CONFIG");
        if (load_file(cfg, path ? path : CONFIG_DEFAULT_PATH, path != NULL, errbuf, errlen) < 0 ||
            load_credentials(cfg, errbuf, errlen) < 0 ||
            load_environment(cfg, errbuf, errlen) < 0 ||
            load_flags(cfg, argc, argv, &path, errbuf, errlen) < 0)
                goto fail;
        return cfg;
fail:
        config_free(cfg);
        return NULL;
}

struct config *config_free(struct config *cfg) {
        if (!cfg)
                return NULL;
        for (size_t i = 0; i < N_KEYS; i++)
                if (keys[i].type == KEY_STRING || keys[i].type == KEY_SECRET)
                        free(*(char **) field(cfg, &keys[i]));
        free(cfg);
        return NULL;
}

struct normalize_options config_normalize_options(const struct config *cfg) {
        return (struct normalize_options) {
                .service_map = cfg->service_map,
                .service_paths = cfg->service_paths,
                .github_deploy_workflow = cfg->github_deploy_workflow,
                .github_workflow_environment = cfg->github_workflow_environment,
                .incident_label = cfg->incident_label,
                .gitlab_deploy_pattern = cfg->gitlab_deploy_pattern,
                .jira_incident_types = cfg->jira_incident_types,
                .jira_change_types = cfg->jira_change_types,
                .jira_root_cause_field = cfg->jira_root_cause_field,
                .jira_planned_start_field = cfg->jira_planned_start_field,
                .jira_planned_end_field = cfg->jira_planned_end_field,
                .jira_approvals_field = cfg->jira_approvals_field,
                .change_key_projects = cfg->change_key_projects,
                .jenkins_deploy_pattern = cfg->jenkins_deploy_pattern,
                .jenkins_environment_param = cfg->jenkins_environment_param,
                .max_json_elements = (size_t) cfg->max_json_elements,
        };
}

const char *config_string(const struct config *cfg, const char *key) {
        const struct key *k = find_key(key, strlen(key));

        if (!k || (k->type != KEY_STRING && k->type != KEY_SECRET))
                return NULL;
        return *(char *const *) ((const char *) cfg + k->offset);
}

void config_dump(const struct config *cfg, void (*fn)(const char *key, const char *value)) {
        for (size_t i = 0; i < N_KEYS; i++) {
                const void *p = (const char *) cfg + keys[i].offset;
                char text[64];
                const char *v = text;

                switch (keys[i].type) {
                case KEY_STRING:
                        v = *(char *const *) p;
                        break;
                case KEY_SECRET:
                        v = *(char *const *) p ? "(set)" : "(unset)";
                        break;
                case KEY_SIZE:
                        snprintf(text, sizeof(text), "%zu", *(const size_t *) p);
                        break;
                case KEY_LONG:
                        snprintf(text, sizeof(text), "%ld", *(const long *) p);
                        break;
                case KEY_BOOL:
                        v = *(const bool *) p ? "true" : "false";
                        break;
                }
                fn(keys[i].name, v);
        }
}

void config_print_keys(void) {
        for (size_t i = 0; i < N_KEYS; i++)
                printf("  %-27s %s%s%s%s\n", keys[i].name, keys[i].help,
                       keys[i].def && *keys[i].def ? " [" : "",
                       keys[i].def && *keys[i].def ? keys[i].def : "",
                       keys[i].def && *keys[i].def ? "]" : "");
}

/* What values key k takes, in words: "1 to 3600", "bytes (k, M, G suffixes), 1 to ...". */
static void describe_values(const struct key *k, char *buf, size_t len) {
        switch (k->type) {
        case KEY_SIZE:
                snprintf(buf, len, "bytes (k, M, G suffixes), %ld to %ld", k->min, k->max);
                break;
        case KEY_LONG:
                snprintf(buf, len, "%ld to %ld", k->min, k->max);
                break;
        case KEY_BOOL:
                snprintf(buf, len, "true or false");
                break;
        case KEY_SECRET:
                snprintf(buf, len, "secret; comma-separated while rotating");
                break;
        case KEY_STRING:
                snprintf(buf, len, "text");
                break;
        }
}

static const char *default_text(const struct key *k) {
        if (!k->def)
                return "unset";
        return *k->def ? k->def : "(empty)";
}

/* Writes s for a man page: backslashes and leading dots or quotes made literal. */
static void man_text(FILE *f, const char *s) {
        if (*s == '.' || *s == '\'')
                fputs("\\&", f);
        for (; *s; s++) {
                if (*s == '\\')
                        fputs("\\e", f);
                else if (*s == '-')
                        fputs("\\-", f);
                else
                        fputc(*s, f);
        }
}

/* Writes s for a Markdown table cell: '|' would end the cell. */
static void cell_text(FILE *f, const char *s) {
        for (; *s; s++)
                fputs(*s == '|' ? "\\|" : (char[2]) { *s, '\0' }, f);
}

void config_write_reference(FILE *f, bool man) {
        char values[96];

        if (!man) {
                fputs("| key | default | values | applies | meaning |\n|---|---|---|---|---|\n", f);
                for (size_t i = 0; i < N_KEYS; i++) {
                        describe_values(&keys[i], values, sizeof(values));
                        fprintf(f, "| %s | ", keys[i].name);
                        cell_text(f, default_text(&keys[i]));
                        fprintf(f, " | %s | %s | ", values, keys[i].restart ? "restart" : "reload");
                        cell_text(f, keys[i].help);
                        fputs(" |\n", f);
                }
                return;
        }
        for (size_t i = 0; i < N_KEYS; i++) {
                describe_values(&keys[i], values, sizeof(values));
                fprintf(f, ".TP\n.B %s\n", keys[i].name);
                man_text(f, keys[i].help);
                fputs("\n.br\nDefault: ", f);
                man_text(f, default_text(&keys[i]));
                fputs("; ", f);
                man_text(f, values);
                fprintf(f, "; applies on %s.\n", keys[i].restart ? "restart" : "reload");
        }
}

/* Whether key k holds the same value in a and b. */
static bool same_value(const struct config *a, const struct config *b, const struct key *k) {
        const void *pa = (const char *) a + k->offset, *pb = (const char *) b + k->offset;

        switch (k->type) {
        case KEY_STRING:
        case KEY_SECRET: {
                const char *sa = *(char *const *) pa, *sb = *(char *const *) pb;

                return sa == sb || (sa && sb && strcmp(sa, sb) == 0);
        }
        case KEY_SIZE:
                return *(const size_t *) pa == *(const size_t *) pb;
        case KEY_LONG:
                return *(const long *) pa == *(const long *) pb;
        case KEY_BOOL:
                return *(const bool *) pa == *(const bool *) pb;
        }
        return false;
}

struct config *config_reload(const struct config *old, int argc, char *const *argv,
                             char *ret_kept, size_t keptlen, char *errbuf, size_t errlen) {
        struct config *cfg = config_load(argc, argv, errbuf, errlen);
        size_t used = 0;

        if (keptlen)
                ret_kept[0] = '\0';
        if (!cfg)
                return NULL;
        for (size_t i = 0; i < N_KEYS; i++) {
                const struct key *k = &keys[i];
                void *p = field(cfg, k);
                const void *po = (const char *) old + k->offset;

                if (!k->restart || same_value(old, cfg, k))
                        continue;
                if (k->type == KEY_STRING || k->type == KEY_SECRET) {
                        const char *v = *(char *const *) po;
                        char *copy = v ? strdup(v) : NULL;

                        if (v && !copy) {
                                snprintf(errbuf, errlen, "config: out of memory");
                                return config_free(cfg);
                        }
                        free(*(char **) p);
                        *(char **) p = copy;
                } else if (k->type == KEY_SIZE) {
                        *(size_t *) p = *(const size_t *) po;
                } else if (k->type == KEY_LONG) {
                        *(long *) p = *(const long *) po;
                } else {
                        *(bool *) p = *(const bool *) po;
                }
                if (used < keptlen) {
                        int n = snprintf(ret_kept + used, keptlen - used, "%s%s",
                                         used ? ", " : "", k->name);

                        used += n > 0 ? (size_t) n : 0;
                }
        }
        return cfg;
}

/* Retired configs stay allocated until config_live_free(): a request handler may still
 * hold one it read before the swap, and reloads are too rare for this to matter. */
struct retired {
        struct config *cfg;
        struct retired *next;
};

struct config_live {
        _Atomic(struct config *) current;
        struct retired *retired;
};

struct config_live *config_live_new(struct config *cfg) {
        struct config_live *l = calloc(1, sizeof(*l));

        if (!l)
                return NULL;
        atomic_init(&l->current, cfg);
        return l;
}

const struct config *config_live_get(struct config_live *l) {
        return atomic_load_explicit(&l->current, memory_order_acquire);
}

int config_live_swap(struct config_live *l, struct config *cfg) {
        struct retired *r = malloc(sizeof(*r));

        if (!r)
                return -ENOMEM;
        r->cfg = atomic_exchange_explicit(&l->current, cfg, memory_order_acq_rel);
        r->next = l->retired;
        l->retired = r;
        return 0;
}

struct config_live *config_live_free(struct config_live *l) {
        if (!l)
                return NULL;
        while (l->retired) {
                struct retired *next = l->retired->next;

                config_free(l->retired->cfg);
                free(l->retired);
                l->retired = next;
        }
        config_free(atomic_load(&l->current));
        free(l);
        return NULL;
}
