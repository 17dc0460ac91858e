/* config: doraloop's settings, from the config file, $CREDENTIALS_DIRECTORY, DORALOOP_*
 * environment variables and command-line flags, in rising precedence. One table in
 * config.c has a row per key. A config is immutable once loaded. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#define CONFIG_DEFAULT_PATH "/etc/doraloop/doraloop.conf"

struct config {
        char *listen;                   /* HOST:PORT */
        char *db;                       /* libpq conninfo or URI */
        char *spool_dir;
        size_t max_body_bytes;
        char *github_secret;
        char *gitlab_token;
        char *jira_secret;
        char *jenkins_token;
        char *generic_token;
        char *api_token;
        char *admin_token;
        bool allow_unsigned;
        char *production_environments;
        long incident_link_window_hours;
        char *change_policy;
        char *service_map;
        long writers;                   /* writer threads, each with its own connection */
        long batch_max;                 /* deliveries per group commit at most */
        long queue_max;                 /* deliveries waiting for a writer at most */
        long http_threads;              /* 0: one per CPU */
        long connection_timeout;        /* seconds a connection may stay idle */
        long connection_limit;
};

/* Builds a config from argv (flags: --config PATH and --KEY VALUE or --KEY=VALUE, with '-'
 * or '_' in KEY), the environment, credentials and the file. On error returns NULL and
 * writes one line naming the key and the problem to errbuf. The caller frees with
 * config_free(). */
struct config *config_load(int argc, char *const *argv, char *errbuf, size_t errlen);

/* NULL-safe; returns NULL. */
struct config *config_free(struct config *cfg);

/* The value of a string key by name (e.g. a source's secret_key), or NULL when unset. */
const char *config_string(const struct config *cfg, const char *key);

/* Calls fn for every key, with its value as text; secrets show as "(set)" or "(unset)". */
void config_dump(const struct config *cfg, void (*fn)(const char *key, const char *value));

/* Prints the keys with their defaults and descriptions, for --help. */
void config_print_keys(void);
