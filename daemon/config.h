/* config: doraloop's settings, from the config file, $CREDENTIALS_DIRECTORY, DORALOOP_*
 * environment variables and command-line flags, in rising precedence. One table has a row
 * per key: config.c's core rows, lib/normalize.c's shared ones and each registered source's
 * (lib/sources/). A config is immutable once loaded; a reload (SIGHUP) builds a new one and
 * swaps it into a struct config_live, which request handlers read once per request. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

struct normalize_options;

#define CONFIG_DEFAULT_PATH "/etc/doraloop/doraloop.conf"

/* An environment list (production_environments, the environment parameter) names at most
 * CONFIG_ENV_LIST_MAX environments in at most CONFIG_ENV_LIST_MAX_BYTES bytes; more is
 * refused, never cut. Plain numbers: they are also spelled into messages. */
#define CONFIG_ENV_LIST_MAX 32
#define CONFIG_ENV_LIST_MAX_BYTES 511

struct config {
        char *listen;                   /* HOST:PORT */
        char *db;                       /* libpq conninfo or URI */
        char *query_db;                 /* the reads' conninfo; empty: db */
        long mirror_poll_ms;            /* the mirror's polling for others' rows */
        char *spool_dir;
        size_t max_body_bytes;
        long max_json_elements;         /* values per body at most (lib/doc.h) */
        char *api_token;
        char *admin_token;
        char *triage_token;             /* the insights' triage endpoints (auth.h) */
        bool allow_unsigned;
        char *production_environments;
        long incident_link_window_hours;
        char *change_policy;
        char *incident_severities;      /* the severities that count; empty: all */
        long writers;                   /* writer threads, each with its own connection */
        long batch_max;                 /* deliveries per group commit at most */
        long queue_max;                 /* deliveries waiting for a writer at most */
        long http_threads;              /* 0: one per CPU */
        long connection_timeout;        /* seconds a connection may stay idle */
        long connection_limit;
        long header_timeout;            /* seconds a new connection's request headers may take */
        long per_ip_connection_limit;   /* 0: no cap */
        long read_threads;              /* threads answering the read API and /metrics */
        long read_queue_max;            /* reads waiting for one of them at most */
        long series_max_buckets;        /* buckets in one /api/v1/dora/series answer at most */
        /* The shared normalization settings (service_map, incident_label,
         * change_key_projects) and, in its sources[], each source's keys, its secret among
         * them: lib/normalize.h, lib/sources/. Read them with config_string() or
         * config_normalize_options(). */
        struct normalize_options *normalize;
        long raw_retention_days;        /* 0: keep every delivery */
        char *insight_window;           /* "30d": the window insights are kept for */
        char *insight_support_hours;    /* a decimal number: impact hours per support request */
        char *insight_failure_hours;    /* the same per failed deployment */
        /* Delivery to product discovery (daemon/sender.h): a target is on when its URL (or,
         * for Productboard, its token) is set. */
        char *public_url;               /* doraloop's address in links; empty: http://listen */
        long discovery_timeout_seconds; /* per delivery attempt */
        char *discovery_webhook_url;
        char *discovery_webhook_secret;
        char *jpd_url;
        char *jpd_project;
        char *jpd_email;
        char *jpd_api_token;
        char *jpd_issue_type;
        char *productboard_url;
        char *productboard_token;
};

/* The days of an insight_window value ("30d") config_load() accepted. */
long config_insight_window_days(const struct config *cfg);

/* Builds a config from argv (flags: --config PATH and --KEY VALUE or --KEY=VALUE, with '-'
 * or '_' in KEY), the environment, credentials and the file. On error returns NULL and
 * writes one line naming the key and the problem to errbuf. The caller frees with
 * config_free(). */
struct config *config_load(int argc, char *const *argv, char *errbuf, size_t errlen);

/* NULL-safe; returns NULL. */
struct config *config_free(struct config *cfg);

/* The normalization settings of cfg; the strings are borrowed from it. */
struct normalize_options config_normalize_options(const struct config *cfg);

/* For a reload: loads a new config from the same argv (so the file and the credentials are
 * read again), then puts back the running value of every key that only takes effect at
 * start (listen, db, writers, ...), naming those that had changed in ret_kept (", "
 * separated; empty when none). Returns the new config, or NULL with errbuf filled when it
 * does not validate; old is only read. */
struct config *config_reload(const struct config *old, int argc, char *const *argv,
                             char *ret_kept, size_t keptlen, char *errbuf, size_t errlen);

/* The running config, swapped whole on reload. */
struct config_live;

/* Takes ownership of cfg. Returns NULL on OOM (cfg is then still the caller's). */
struct config_live *config_live_new(struct config *cfg);

/* The current config, borrowed: it stays valid until config_live_free(), so a request may
 * keep the pointer it read at its start. Thread-safe, lock-free. */
const struct config *config_live_get(struct config_live *l);

/* Makes cfg (owned from now on) the current config; the previous one is retired, not freed.
 * Returns 0, or -ENOMEM with nothing changed (cfg is then still the caller's). Call from one
 * thread at a time; concurrent config_live_get() calls are fine. */
int config_live_swap(struct config_live *l, struct config *cfg)
        __attribute__((warn_unused_result));

/* Frees the current and every retired config; NULL-safe, returns NULL. No reader may be
 * left. */
struct config_live *config_live_free(struct config_live *l);

/* The value of a string key by name (e.g. a source's secret_key), or NULL when unset. */
const char *config_string(const struct config *cfg, const char *key);

/* Calls fn for every key, with its value as text; secrets show as "(set)" or "(unset)". */
void config_dump(const struct config *cfg, void (*fn)(const char *key, const char *value));

/* Prints the keys with their defaults and descriptions, for --help. */
void config_print_keys(void);

/* Writes the reference of every key (default, values, reload or restart, meaning) from the
 * table: a Markdown table for docs/configuration.md, or man page paragraphs for
 * doraloop.conf(5). scripts/gen-config-docs writes both; a test holds them to it. */
void config_write_reference(FILE *f, bool man);

/* Writes the name of every secret key, one a line: scripts/gen-config-docs makes the
 * service's LoadCredential= lines and the sample file's secret lines from them. */
void config_write_secrets(FILE *f);
