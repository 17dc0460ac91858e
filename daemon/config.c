/* config: one table with a row per key; loading from file, credentials, environment, flags.
 * The table is the core rows below with, where they say, the shared normalization keys
 * (lib/normalize.c) and each registered source's keys (lib/sources/), in registry order. */
#include "config.h"

#include "../lib/confkey.h"
#include "../lib/normalize.h"
#include "../lib/source.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *check_listen(const char *v);
static const char *check_change_policy(const char *v);
static const char *check_environment_list(const char *v);
static const char *check_days(const char *v);
static const char *check_hours(const char *v);
static const char *check_url(const char *v);

/* Where the sources' secrets, and the shared and the sources' settings, go in the table. */
#define SOURCE_SECRETS { NULL, KEY_SECRET, NULL, 0, 0, 0, NULL, NULL, false }
#define SOURCE_SETTINGS { NULL, KEY_STRING, NULL, 0, 0, 0, NULL, NULL, false }

#define OFF(f) offsetof(struct config, f)
#define RESTART CONFKEY_RESTART
#define LIVE CONFKEY_LIVE
static const struct confkey core_keys[] = {
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
        SOURCE_SECRETS,
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
        { "incident_severities", KEY_STRING, "", OFF(incident_severities), 0, 0, NULL,
          "severities (comma-separated, any case) whose incidents count for change failure "
          "rate, time to restore and failed deployment recovery time; others are stored and "
          "listed, not counted (empty: all count; with a list, an incident without a severity "
          "does not). A change rebuilds the figures at start", RESTART },
        SOURCE_SETTINGS,
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
        { "raw_retention_days", KEY_LONG, "0", OFF(raw_retention_days), 0, 36500, NULL,
          "days of deliveries events_raw keeps (0: all). Whole months past it are dropped "
          "hourly; the normalized tables, the figures and the insights stay, and a replay "
          "covers what is kept", RESTART },
        { "insight_window", KEY_STRING, "30d", OFF(insight_window), 0, 0, check_days,
          "the window insights are kept current for (Nd, 1 to 3660 days); recurrence looks at "
          "the three before it. GET /api/v1/insights?window= computes another one on demand",
          RESTART },
        { "insight_support_hours", KEY_STRING, "0.5", OFF(insight_support_hours), 0, 0,
          check_hours, "impact hours an insight's score counts per support request of its "
          "evidence (a decimal number, 0 to 10000)", RESTART },
        { "insight_failure_hours", KEY_STRING, "1", OFF(insight_failure_hours), 0, 0,
          check_hours, "impact hours an insight's score counts per failed deployment of its "
          "evidence (a decimal number, 0 to 10000)", RESTART },
        { "public_url", KEY_STRING, "", OFF(public_url), 0, 0, check_url,
          "doraloop's address as people reach it, for the links in what goes to product "
          "discovery (empty: http:// and listen)", LIVE },
        { "discovery_timeout_seconds", KEY_LONG, "10", OFF(discovery_timeout_seconds), 1, 600,
          NULL, "seconds one delivery to a product-discovery target may take; then it is "
          "retried with backoff", LIVE },
        { "discovery_webhook_url", KEY_STRING, "", OFF(discovery_webhook_url), 0, 0, check_url,
          "URL that accepted insights are POSTed to, signed (empty: no webhook)", LIVE },
        { "discovery_webhook_secret", KEY_SECRET, NULL, OFF(discovery_webhook_secret), 0, 0,
          NULL, "HMAC-SHA256 key of the webhook's X-Doraloop-Signature-256 header (unset: the "
          "webhook stays off)", LIVE },
        { "jpd_url", KEY_STRING, "", OFF(jpd_url), 0, 0, check_url,
          "Jira Product Discovery site, e.g. https://example.atlassian.net (empty: no JPD)",
          LIVE },
        { "jpd_project", KEY_STRING, "", OFF(jpd_project), 0, 0, NULL,
          "key of the JPD project ideas are created in", LIVE },
        { "jpd_email", KEY_STRING, "", OFF(jpd_email), 0, 0, NULL,
          "Atlassian account email of the API token", LIVE },
        { "jpd_api_token", KEY_SECRET, NULL, OFF(jpd_api_token), 0, 0, NULL,
          "Atlassian API token (basic auth with jpd_email)", LIVE },
        { "jpd_issue_type", KEY_STRING, "Idea", OFF(jpd_issue_type), 0, 0, NULL,
          "issue type of the ideas created", LIVE },
        { "productboard_url", KEY_STRING, "https://api.productboard.com", OFF(productboard_url),
          0, 0, check_url, "Productboard's API", LIVE },
        { "productboard_token", KEY_SECRET, NULL, OFF(productboard_token), 0, 0, NULL,
          "Productboard API token: accepted insights become notes (unset: no Productboard)",
          LIVE },
};
#undef OFF
#undef RESTART
#undef LIVE
#define N_CORE_KEYS (sizeof(core_keys) / sizeof(core_keys[0]))

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

/* "30d": whole days, 1 to 3660, as the window parameter takes them. */
static const char *check_days(const char *v) {
        char *end;
        long days;

        errno = 0;
        days = strtol(v, &end, 10);
        if (errno || end == v || strcmp(end, "d") != 0 || days < 1 || days > 3660 ||
            !isdigit((unsigned char) v[0]))
                return "must be a number of days from 1 to 3660 followed by d, e.g. 30d";
        return NULL;
}

/* Empty, or an http(s) URL without a trailing slash (paths are appended to it). */
static const char *check_url(const char *v) {
        size_t n = strlen(v);

        if (!n)
                return NULL;
        if ((strncmp(v, "http://", 7) != 0 && strncmp(v, "https://", 8) != 0) ||
            n <= 8 || v[n - 1] == '/' || strpbrk(v, " \t\r\n"))
                return "must be an http:// or https:// URL without a trailing slash";
        return NULL;
}

long config_insight_window_days(const struct config *cfg) {
        return strtol(cfg->insight_window, NULL, 10);
}

/* A plain decimal number from 0 to 10000 (digits, at most one point): it goes to SQL as
 * a numeric. */
static const char *check_hours(const char *v) {
        const char *why = "must be a decimal number from 0 to 10000, e.g. 0.5";
        size_t points = 0, digits = 0;

        for (const char *c = v; *c; c++) {
                if (*c == '.')
                        points++;
                else if (isdigit((unsigned char) *c))
                        digits++;
                else
                        return why;
        }
        if (!digits || points > 1 || strlen(v) > 20 || strtod(v, NULL) > 10000)
                return why;
        return NULL;
}

static const char *check_change_policy(const char *v) {
        if (strcmp(v, "auto") && strcmp(v, "flag") && strcmp(v, "off"))
                return "must be auto, flag or off";
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

/* A row of the whole table and where its value lives: in struct config itself, in the
 * shared normalization settings, or in source i's options struct. */
enum { GROUP_CORE = -2, GROUP_NORMALIZE = -1 };

struct key {
        const struct confkey *row;
        int group;              /* GROUP_CORE, GROUP_NORMALIZE or a source's index */
};

/* Far more than the rows there are; config_load() refuses to run if they ever outgrow it. */
#define TABLE_MAX 512

static struct key table[TABLE_MAX];
static size_t n_table;
static bool table_overflow;
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static void add_rows(const struct confkey *rows, size_t n, int group, bool secrets) {
        for (size_t i = 0; i < n; i++) {
                if ((rows[i].type == KEY_SECRET) != secrets)
                        continue;
                if (n_table == TABLE_MAX) {
                        table_overflow = true;
                        return;
                }
                table[n_table++] = (struct key) { &rows[i], group };
        }
}

static void add_sources(bool secrets) {
        for (size_t i = 0; i < source_count(); i++)
                add_rows(source_table[i]->keys, source_table[i]->n_keys, (int) i, secrets);
}

static void build_table(void) {
        for (size_t i = 0; i < N_CORE_KEYS; i++) {
                const struct confkey *row = &core_keys[i];

                if (row->name)
                        add_rows(row, 1, GROUP_CORE, row->type == KEY_SECRET);
                else if (row->type == KEY_SECRET)
                        add_sources(true);
                else {
                        add_rows(normalize_keys, normalize_n_keys, GROUP_NORMALIZE, false);
                        add_sources(false);
                }
        }
}

/* The whole table, built on first use. */
static const struct key *keys_all(size_t *ret_n) {
        pthread_once(&table_once, build_table);
        *ret_n = n_table;
        return table;
}

static const struct key *find_key(const char *name, size_t len) {
        size_t n;
        const struct key *keys = keys_all(&n);

        for (size_t i = 0; i < n; i++) {
                const char *k = keys[i].row->name;
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

/* The struct that holds key k's value in cfg. */
static const void *storage(const struct config *cfg, const struct key *k) {
        if (k->group == GROUP_CORE)
                return cfg;
        if (k->group == GROUP_NORMALIZE)
                return cfg->normalize;
        return cfg->normalize->sources[k->group];
}

static const void *value_of(const struct config *cfg, const struct key *k) {
        return (const char *) storage(cfg, k) + k->row->offset;
}

/* Writable: the config owns every struct storage() names (config_load() allocates them). */
static void *field(struct config *cfg, const struct key *k) {
        return (void *) value_of(cfg, k);
}

static bool is_string(const struct key *k) {
        return k->row->type == KEY_STRING || k->row->type == KEY_SECRET;
}

/* Sets one key from text; origin says where the value came from, for the error line. */
static int set_key(struct config *cfg, const struct key *key, const char *v, const char *origin,
                   char *errbuf, size_t errlen) {
        const struct confkey *k = key->row;
        const char *problem = NULL;

        if (is_string(key)) {
                char **p = field(cfg, key);
                char *copy = strdup(v);

                if (!copy)
                        problem = "cannot be stored: out of memory";
                else {
                        free(*p);
                        *p = copy;
                }
        }
        if (!problem)
                problem = confkey_parse(k, v, field(cfg, key));
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
        size_t n;
        const struct key *keys = keys_all(&n);

        if (!dir || !*dir)
                return 0;
        for (size_t i = 0; i < n; i++) {
                char path[PATH_MAX], value[4096];
                FILE *f;
                size_t len;
                int r;

                if (keys[i].row->type != KEY_SECRET)
                        continue;
                snprintf(path, sizeof(path), "%s/%s", dir, keys[i].row->name);
                f = fopen(path, "re");
                if (!f)
                        continue;
                len = fread(value, 1, sizeof(value) - 1, f);
                fclose(f);
                value[len] = '\0';
                r = set_key(cfg, &keys[i], trim(value), "credentials", errbuf, errlen);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int load_environment(struct config *cfg, char *errbuf, size_t errlen) {
        size_t n;
        const struct key *keys = keys_all(&n);

        for (size_t i = 0; i < n; i++) {
                char var[64];
                const char *v;
                size_t j;
                int r;

                memcpy(var, "DORALOOP_", 9);
                for (j = 0; keys[i].row->name[j] && j + 10 < sizeof(var); j++)
                        var[9 + j] = (char) toupper((unsigned char) keys[i].row->name[j]);
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

/* The structs the shared and the sources' keys are stored in, zeroed. */
static int alloc_groups(struct config *cfg) {
        cfg->normalize = calloc(1, sizeof(*cfg->normalize));
        if (!cfg->normalize)
                return -ENOMEM;
        for (size_t i = 0; i < source_count(); i++) {
                cfg->normalize->sources[i] = calloc(1, source_table[i]->options_size + 1);
                if (!cfg->normalize->sources[i])
                        return -ENOMEM;
        }
        return 0;
}

struct config *config_load(int argc, char *const *argv, char *errbuf, size_t errlen) {
        struct config *cfg = calloc(1, sizeof(*cfg));
        const char *path = NULL;
        size_t n;
        const struct key *keys = keys_all(&n);

        if (!cfg || alloc_groups(cfg) < 0) {
                snprintf(errbuf, errlen, "config: out of memory");
                return config_free(cfg);
        }
        if (table_overflow) {
                snprintf(errbuf, errlen, "config: more than %d keys", TABLE_MAX);
                return config_free(cfg);
        }
        for (size_t i = 0; i < n; i++)
                if (keys[i].row->def && set_key(cfg, &keys[i], keys[i].row->def, "default",
                                                errbuf, errlen) < 0)
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
        size_t n;
        const struct key *keys = keys_all(&n);

        if (!cfg)
                return NULL;
        for (size_t i = 0; i < n; i++)
                if (is_string(&keys[i]) && (keys[i].group == GROUP_CORE || cfg->normalize) &&
                    storage(cfg, &keys[i]))
                        free(*(char **) field(cfg, &keys[i]));
        if (cfg->normalize)
                for (size_t i = 0; i < source_count(); i++)
                        free((void *) cfg->normalize->sources[i]);
        free(cfg->normalize);
        free(cfg);
        return NULL;
}

struct normalize_options config_normalize_options(const struct config *cfg) {
        struct normalize_options o = *cfg->normalize;

        o.max_json_elements = (size_t) cfg->max_json_elements;
        return o;
}

const char *config_string(const struct config *cfg, const char *key) {
        const struct key *k = find_key(key, strlen(key));

        if (!k || !is_string(k))
                return NULL;
        return *(char *const *) value_of(cfg, k);
}

void config_dump(const struct config *cfg, void (*fn)(const char *key, const char *value)) {
        size_t n;
        const struct key *keys = keys_all(&n);

        for (size_t i = 0; i < n; i++) {
                const void *p = value_of(cfg, &keys[i]);
                char text[64];
                const char *v = text;

                switch (keys[i].row->type) {
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
                fn(keys[i].row->name, v);
        }
}

void config_print_keys(void) {
        size_t n;
        const struct key *keys = keys_all(&n);

        for (size_t i = 0; i < n; i++)
                printf("  %-27s %s%s%s%s\n", keys[i].row->name, keys[i].row->help,
                       keys[i].row->def && *keys[i].row->def ? " [" : "",
                       keys[i].row->def && *keys[i].row->def ? keys[i].row->def : "",
                       keys[i].row->def && *keys[i].row->def ? "]" : "");
}

/* What values key k takes, in words: "1 to 3600", "bytes (k, M, G suffixes), 1 to ...". */
static void describe_values(const struct confkey *k, char *buf, size_t len) {
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

static const char *default_text(const struct confkey *k) {
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
        size_t n;
        const struct key *keys = keys_all(&n);

        if (!man) {
                fputs("| key | default | values | applies | meaning |\n|---|---|---|---|---|\n", f);
                for (size_t i = 0; i < n; i++) {
                        describe_values(keys[i].row, values, sizeof(values));
                        fprintf(f, "| %s | ", keys[i].row->name);
                        cell_text(f, default_text(keys[i].row));
                        fprintf(f, " | %s | %s | ", values,
                                keys[i].row->restart ? "restart" : "reload");
                        cell_text(f, keys[i].row->help);
                        fputs(" |\n", f);
                }
                return;
        }
        for (size_t i = 0; i < n; i++) {
                describe_values(keys[i].row, values, sizeof(values));
                fprintf(f, ".TP\n.B %s\n", keys[i].row->name);
                man_text(f, keys[i].row->help);
                fputs("\n.br\nDefault: ", f);
                man_text(f, default_text(keys[i].row));
                fputs("; ", f);
                man_text(f, values);
                fprintf(f, "; applies on %s.\n", keys[i].row->restart ? "restart" : "reload");
        }
}

void config_write_secrets(FILE *f) {
        size_t n;
        const struct key *keys = keys_all(&n);

        for (size_t i = 0; i < n; i++)
                if (keys[i].row->type == KEY_SECRET)
                        fprintf(f, "%s\n", keys[i].row->name);
}

/* Whether key k holds the same value in a and b. */
static bool same_value(const struct config *a, const struct config *b, const struct key *k) {
        const void *pa = value_of(a, k), *pb = value_of(b, k);

        switch (k->row->type) {
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
        size_t used = 0, n;
        const struct key *keys = keys_all(&n);

        if (keptlen)
                ret_kept[0] = '\0';
        if (!cfg)
                return NULL;
        for (size_t i = 0; i < n; i++) {
                const struct key *k = &keys[i];
                enum confkey_type type = k->row->type;
                void *p = field(cfg, k);
                const void *po = value_of(old, k);

                if (!k->row->restart || same_value(old, cfg, k))
                        continue;
                if (is_string(k)) {
                        const char *v = *(char *const *) po;
                        char *copy = v ? strdup(v) : NULL;

                        if (v && !copy) {
                                snprintf(errbuf, errlen, "config: out of memory");
                                return config_free(cfg);
                        }
                        free(*(char **) p);
                        *(char **) p = copy;
                } else if (type == KEY_SIZE) {
                        *(size_t *) p = *(const size_t *) po;
                } else if (type == KEY_LONG) {
                        *(long *) p = *(const long *) po;
                } else {
                        *(bool *) p = *(const bool *) po;
                }
                if (used < keptlen) {
                        int w = snprintf(ret_kept + used, keptlen - used, "%s%s",
                                         used ? ", " : "", k->row->name);

                        used += w > 0 ? (size_t) w : 0;
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
