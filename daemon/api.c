/* api: /healthz, /readyz and the read API under /api/v1. */
#include "api.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/delivery.h"
#include "../lib/doc.h"
#include "../lib/normalize.h"
#include "../lib/error.h"
#include "../lib/store.h"
#include "../lib/verify.h"
#include "changes.h"
#include "config.h"
#include "dbpool.h"
#include "dora.h"
#include "log.h"
#include "replay.h"
#include "writer.h"

#define LIST_LIMIT_DEFAULT 50
#define LIST_LIMIT_MAX 500

static int reply_error(json_t **ret_body, int status, const char *code, const char *msg) {
        *ret_body = doc_error(code, "%s", msg);
        return status;
}

int api_with_store(const struct api *api, int (*fn)(struct store *, void *, struct error *),
                      void *ctx, struct error *err) {
        for (int attempt = 0; attempt < 2; attempt++) {
                struct store *s = NULL;
                int r = dbpool_acquire(api->pool, &s, err);

                if (r < 0)
                        return r;
                r = fn(s, ctx, err);
                dbpool_release(api->pool, s);
                if (r != -EIO || attempt == 1)
                        return r;
        }
        return -EIO;
}

static int ping(struct store *s, void *ctx, struct error *err) {
        (void) ctx;
        return store_ping(s, err);
}

/* Ready: the database answers and no acknowledged delivery still waits in the spool. Why
 * the database does not answer (a socket path, libpq's text) is shown to api_token holders
 * only; anyone else hears that it does not. */
static int readyz(const struct api *api, const struct api_request *req, json_t **ret_body) {
        const char *tokens = req->cfg->api_token;
        struct error err = { 0 }, auth = { 0 };
        struct writer_stats st;
        char reason[320];

        writer_get_stats(api->writer, &st);
        if (api_with_store(api, ping, NULL, &err) < 0) {
                if (tokens && *tokens &&
                    verify_token(verify_bearer(req->authorization), tokens, &auth) == 0)
                        snprintf(reason, sizeof(reason), "%s", err.msg);
                else
                        snprintf(reason, sizeof(reason), "The database does not answer");
        } else if (st.spooled > 0)
                snprintf(reason, sizeof(reason), "%zu deliveries in the spool wait to be "
                         "replayed into the database", st.spooled);
        else
                reason[0] = '\0';
        *ret_body = json_pack("{s:s,s:s*,s:I,s:I}", "status", reason[0] ? "unavailable" : "ready",
                              "reason", reason[0] ? reason : NULL, "queued",
                              (json_int_t) st.queued, "spooled", (json_int_t) st.spooled);
        return reason[0] ? 503 : 200;
}

struct list_ctx {
        struct delivery_filter filter;
        json_t *items;
        int64_t last_id;
};

static int add_row(void *ctx, const struct delivery_row *r) {
        struct list_ctx *c = ctx;
        json_t *item = json_pack("{s:I,s:s,s:s,s:s,s:s,s:s,s:o}", "id", (json_int_t) r->id,
                                 "source", r->source, "delivery_id", r->delivery_id, "event",
                                 r->event, "received_at", r->received_at, "status", r->status,
                                 "error", r->error ? json_string(r->error) : json_null());

        if (!item || json_array_append_new(c->items, item) < 0)
                return -ENOMEM;
        c->last_id = r->id;
        return 0;
}

static int list(struct store *s, void *ctx, struct error *err) {
        struct list_ctx *c = ctx;

        json_array_clear(c->items);
        return store_list_deliveries(s, &c->filter, add_row, c, err);
}

bool api_parse_positive(const char *v, long long max, long long *ret) {
        char *end;
        long long n;

        if (!v || !*v)
                return false;
        errno = 0;
        n = strtoll(v, &end, 10);
        if (errno || *end || n < 1 || n > max)
                return false;
        *ret = n;
        return true;
}

static int deliveries(const struct api *api, const struct api_request *req, json_t **ret_body) {
        static const char *const statuses[] = { "received", "normalized", "ignored", "error" };
        const char *limit = req->arg(req->ctx, "limit"), *cursor = req->arg(req->ctx, "cursor");
        struct list_ctx c = { .filter = { .limit = LIST_LIMIT_DEFAULT } };
        struct error err = { 0 };
        long long n;
        char next[24];
        int r;

        c.filter.source = req->arg(req->ctx, "source");
        c.filter.status = req->arg(req->ctx, "status");
        if (c.filter.status) {
                bool known = false;

                for (size_t i = 0; i < 4; i++)
                        known |= strcmp(c.filter.status, statuses[i]) == 0;
                if (!known)
                        return reply_error(ret_body, 400, "invalid_parameter",
                                           "status must be received, normalized, ignored or error");
        }
        if (limit) {
                if (!api_parse_positive(limit, LIST_LIMIT_MAX, &n))
                        return reply_error(ret_body, 400, "invalid_parameter",
                                           "limit must be a whole number from 1 to 500");
                c.filter.limit = (int) n;
        }
        if (cursor) {
                if (!api_parse_positive(cursor, INT64_MAX, &n))
                        return reply_error(ret_body, 400, "invalid_parameter",
                                           "cursor is not one this API gave out");
                c.filter.before_id = n;
        }
        c.items = json_array();
        if (!c.items)
                return reply_error(ret_body, 503, "unavailable", "Out of memory");
        r = api_with_store(api, list, &c, &err);
        if (r < 0) {
                json_decref(c.items);
                log_warning("Failed to list deliveries: %s", err.msg);
                return reply_error(ret_body, 503, "unavailable", err.msg[0] ? err.msg
                                                                           : "Out of memory");
        }
        snprintf(next, sizeof(next), "%" PRId64, c.last_id);
        *ret_body = json_pack("{s:o,s:o}", "items", c.items, "next_cursor",
                              r == c.filter.limit ? json_string(next) : json_null());
        return 200;
}

static bool authorized(const char *tokens, const struct api_request *req, json_t **ret_body,
                       int *ret_status) {
        struct error err = { 0 };

        if (verify_token(verify_bearer(req->authorization), tokens, &err) == 0)
                return true;
        *ret_status = reply_error(ret_body, 401, err.code, err.msg);
        return false;
}

/* /api/v1/replay: POST starts re-deriving every normalized table from events_raw (e.g.
 * after an upgrade changed a parser, or service_map changed) as a background job
 * (daemon/replay.h); GET says how the current or last one goes. */
static int replay(const struct api *api, const struct api_request *req, json_t **ret_body) {
        if (strcmp(req->method, "POST") == 0)
                return replay_start(api->replay, req->cfg, ret_body);
        return replay_status(api->replay, ret_body);
}

int api_handle(const struct api *api, const struct api_request *req, json_t **ret_body) {
        bool get = strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0;
        int status;

        if (strcmp(req->path, "/api/v1/replay") == 0) {
                if (strcmp(req->method, "POST") != 0 && !get)
                        return reply_error(ret_body, 405, "method_not_allowed",
                                           "Use GET or POST on this path");
                if (!req->cfg->admin_token || !*req->cfg->admin_token)
                        return reply_error(ret_body, 401, "bad_token",
                                           "admin_token is not configured, so admin endpoints "
                                           "are disabled");
                if (!authorized(req->cfg->admin_token, req, ret_body, &status))
                        return status;
                return replay(api, req, ret_body);
        }
        if (strcmp(req->path, "/healthz") == 0 || strcmp(req->path, "/readyz") == 0 ||
            strcmp(req->path, "/api/v1/deliveries") == 0 || dora_path(req->path) ||
            changes_path(req->path)) {
                if (!get)
                        return reply_error(ret_body, 405, "method_not_allowed",
                                           "Use GET on this path");
        } else {
                return reply_error(ret_body, 404, "not_found", "No such endpoint");
        }

        if (strcmp(req->path, "/healthz") == 0) {
                *ret_body = json_pack("{s:s}", "status", "ok");
                return 200;
        }
        if (strcmp(req->path, "/readyz") == 0)
                return readyz(api, req, ret_body);

        if (req->cfg->api_token && *req->cfg->api_token &&
            !authorized(req->cfg->api_token, req, ret_body, &status))
                return status;
        if (dora_path(req->path))
                return dora_handle(api, req, ret_body);
        if (changes_path(req->path))
                return changes_handle(api, req, ret_body);
        return deliveries(api, req, ret_body);
}
