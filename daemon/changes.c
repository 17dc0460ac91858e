/* changes: the change-control read API and the deployment gate. */
#include "changes.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../lib/changectl.h"
#include "../lib/error.h"
#include "../lib/store_changes.h"
#include "../lib/timefmt.h"
#include "config.h"
#include "log.h"
#include "params.h"

#define KEY_MAX 255

/* -EIO (503) from what the database or memory refused, in err. */
static int unavailable(struct error *err) {
        char msg[sizeof(err->msg)];

        snprintf(msg, sizeof(msg), "%s", err->msg[0] ? err->msg : "Out of memory");
        log_warning("Failed to read change requests: %s", msg);
        return error_set(err, EIO, "unavailable", NULL, "%s", msg);
}

/* Parses JSON text the database built into the reply. */
static int json_reply(json_t **ret_body, char *text, struct error *err) {
        json_error_t jerr;

        *ret_body = json_loads(text, 0, &jerr);
        free(text);
        return *ret_body ? 0 : error_set(err, EIO, "unavailable", NULL, "Malformed answer");
}

/* The {key} of the path into key; -ENOENT (404) when it is longer than any key. */
static int key_of(const struct api_request *req, char key[KEY_MAX + 1], struct error *err) {
        if (req->param_len > KEY_MAX)
                return error_set(err, ENOENT, "not_found", NULL, "No such change request");
        memcpy(key, req->param, req->param_len);
        key[req->param_len] = '\0';
        return 0;
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

int changes_gate(const struct api *api, const struct api_request *req, json_t **ret_body,
                 struct error *err) {
        const char *service = req->arg(req->ctx, "service");
        const char *environment = req->arg(req->ctx, "environment");
        char key[KEY_MAX + 1];
        struct one o = { .key = key };
        struct changectl_record rec;
        struct timespec now;
        char reason[400];
        bool allowed;

        if (key_of(req, key, err) < 0)
                return -ENOENT;
        if (service && !*service)
                return error_set(err, EBADMSG, "invalid_parameter", "service",
                                 "service: must not be empty");
        if (environment && !*environment)
                return error_set(err, EBADMSG, "invalid_parameter", "environment",
                                 "environment: must not be empty");
        if (api_with_store(api, read_brief, &o, err) < 0)
                return unavailable(err);
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
        return 0;
}

struct list {
        struct change_filter filter;
        char *json;
};

static int read_list(struct store *s, void *ctx, struct error *err) {
        struct list *l = ctx;

        return store_changes_json(s, &l->filter, &l->json, err);
}

int changes_list(const struct api *api, const struct api_request *req, json_t **ret_body,
                 struct error *err) {
        static const char *const statuses[] = { "pending", "approved", "declined",
                                                "implementing", "completed", "canceled" };
        const char *since = req->arg(req->ctx, "since");
        struct list l = { .filter = { .since_us = INT64_MIN } };

        l.filter.service = req->arg(req->ctx, "service");
        l.filter.status = req->arg(req->ctx, "status");
        l.filter.after = req->arg(req->ctx, "cursor");
        if (l.filter.status) {
                bool known = false;

                for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++)
                        known |= strcmp(l.filter.status, statuses[i]) == 0;
                if (!known)
                        return error_set(err, EBADMSG, "invalid_parameter", "status",
                                         "status: must be pending, approved, declined, "
                                         "implementing, completed or canceled");
        }
        if (params_limit(req, &l.filter.limit, err) < 0)
                return -EBADMSG;
        if (since && timefmt_parse(since, &l.filter.since_us) < 0)
                return error_set(err, EBADMSG, "invalid_parameter", "since",
                                 "since: must be an RFC 3339 time");
        if (api_with_store(api, read_list, &l, err) < 0)
                return unavailable(err);
        return json_reply(ret_body, l.json, err);
}

int changes_one(const struct api *api, const struct api_request *req, json_t **ret_body,
                struct error *err) {
        char key[KEY_MAX + 1];
        struct one o = { .key = key };

        if (key_of(req, key, err) < 0)
                return -ENOENT;
        if (api_with_store(api, read_one, &o, err) < 0)
                return unavailable(err);
        if (!o.json)
                return error_set(err, ENOENT, "not_found", NULL, "No such change request");
        return json_reply(ret_body, o.json, err);
}
