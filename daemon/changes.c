/* changes: the change-control read API and the deployment gate. */
#include "changes.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../lib/changectl.h"
#include "../lib/doc.h"
#include "../lib/error.h"
#include "../lib/store_changes.h"
#include "../lib/timefmt.h"
#include "api.h"
#include "config.h"
#include "log.h"

#define PREFIX "/api/v1/changes"
#define KEY_MAX 255
#define LIST_LIMIT_DEFAULT 50
#define LIST_LIMIT_MAX 500

bool changes_path(const char *path) {
        return strncmp(path, PREFIX, strlen(PREFIX)) == 0 &&
               (path[strlen(PREFIX)] == '\0' || path[strlen(PREFIX)] == '/');
}

static int error_reply(json_t **ret_body, int status, const char *code, const char *msg) {
        *ret_body = doc_error(code, "%s", msg);
        return status;
}

static int unavailable(json_t **ret_body, const struct error *err) {
        log_warning("Failed to read change requests: %s", err->msg);
        return error_reply(ret_body, 503, "unavailable", err->msg[0] ? err->msg : "Out of memory");
}

/* Parses JSON text the database built into the reply. */
static int json_reply(json_t **ret_body, char *text) {
        json_error_t jerr;

        *ret_body = json_loads(text, 0, &jerr);
        free(text);
        return *ret_body ? 200 : error_reply(ret_body, 503, "unavailable", "Malformed answer");
}

struct one {
        const char *key;
        char *json;
        struct store_change_brief brief;
};

static int read_one(struct store *s, void *ctx, struct error *err) {
        struct one *o = ctx;

        return store_change_json(s, o->key, &o->json, err);
}

static int read_brief(struct store *s, void *ctx, struct error *err) {
        struct one *o = ctx;

        return store_change_brief(s, o->key, &o->brief, err);
}

static int gate(const struct api *api, const struct api_request *req, const char *key,
                json_t **ret_body) {
        const char *service = req->arg(req->ctx, "service");
        const char *environment = req->arg(req->ctx, "environment");
        struct one o = { .key = key };
        struct error err = { 0 };
        struct changectl_record rec;
        struct timespec now;
        char reason[400];
        bool allowed;

        if (service && !*service)
                return error_reply(ret_body, 400, "invalid_parameter", "service is empty");
        if (environment && !*environment)
                return error_reply(ret_body, 400, "invalid_parameter", "environment is empty");
        if (api_with_store(api, read_brief, &o, &err) < 0)
                return unavailable(ret_body, &err);
        rec = (struct changectl_record) {
                .found = o.brief.found, .key = key, .status = o.brief.status,
                .planned_start = o.brief.planned_start, .planned_end = o.brief.planned_end,
                .services = (const char *const *) o.brief.services,
                .n_services = o.brief.n_services,
        };
        clock_gettime(CLOCK_REALTIME, &now);
        allowed = changectl_gate(&rec, service, environment, req->cfg->production_environments,
                                 (int64_t) now.tv_sec * 1000000 + now.tv_nsec / 1000, reason,
                                 sizeof(reason));
        store_change_brief_free(&o.brief);
        *ret_body = json_pack("{s:b,s:s,s:s,s:s*,s:s*}", "allowed", allowed, "reason", reason,
                              "change_request", key, "service", service, "environment",
                              environment);
        return 200;
}

struct list {
        struct change_filter filter;
        char *json;
};

static int read_list(struct store *s, void *ctx, struct error *err) {
        struct list *l = ctx;

        return store_changes_json(s, &l->filter, &l->json, err);
}

static int list(const struct api *api, const struct api_request *req, json_t **ret_body) {
        static const char *const statuses[] = { "pending", "approved", "declined",
                                                "implementing", "completed", "canceled" };
        const char *limit = req->arg(req->ctx, "limit"), *since = req->arg(req->ctx, "since");
        struct list l = { .filter = { .limit = LIST_LIMIT_DEFAULT, .since_us = INT64_MIN } };
        struct error err = { 0 };

        l.filter.service = req->arg(req->ctx, "service");
        l.filter.status = req->arg(req->ctx, "status");
        l.filter.after = req->arg(req->ctx, "cursor");
        if (l.filter.status) {
                bool known = false;

                for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++)
                        known |= strcmp(l.filter.status, statuses[i]) == 0;
                if (!known)
                        return error_reply(ret_body, 400, "invalid_parameter",
                                           "status must be pending, approved, declined, "
                                           "implementing, completed or canceled");
        }
        if (limit) {
                char *end;
                long n = strtol(limit, &end, 10);

                if (!*limit || *end || n < 1 || n > LIST_LIMIT_MAX)
                        return error_reply(ret_body, 400, "invalid_parameter",
                                           "limit must be a whole number from 1 to 500");
                l.filter.limit = (int) n;
        }
        if (since && timefmt_parse(since, &l.filter.since_us) < 0)
                return error_reply(ret_body, 400, "invalid_parameter",
                                   "since must be an RFC 3339 time");
        if (api_with_store(api, read_list, &l, &err) < 0)
                return unavailable(ret_body, &err);
        return json_reply(ret_body, l.json);
}

int changes_handle(const struct api *api, const struct api_request *req, json_t **ret_body) {
        const char *rest = req->path + strlen(PREFIX);
        char key[KEY_MAX + 1];
        const char *slash;
        size_t n;
        struct one o = { .key = key };
        struct error err = { 0 };

        if (!*rest)
                return list(api, req, ret_body);
        rest++;
        slash = strchr(rest, '/');
        n = slash ? (size_t) (slash - rest) : strlen(rest);
        if (n == 0 || n > KEY_MAX)
                return error_reply(ret_body, 404, "not_found", "No such change request");
        memcpy(key, rest, n);
        key[n] = '\0';
        if (slash && strcmp(slash, "/gate") == 0)
                return gate(api, req, key, ret_body);
        if (slash)
                return error_reply(ret_body, 404, "not_found", "No such endpoint");
        if (api_with_store(api, read_one, &o, &err) < 0)
                return unavailable(ret_body, &err);
        if (!o.json)
                return error_reply(ret_body, 404, "not_found", "No such change request");
        return json_reply(ret_body, o.json);
}
