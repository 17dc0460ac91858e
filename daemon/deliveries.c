/* deliveries: the list of stored deliveries. */
#include "deliveries.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "../lib/delivery.h"
#include "../lib/error.h"
#include "../lib/store.h"
#include "log.h"
#include "params.h"

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

static int check_status(const char *status, struct error *err) {
        static const char *const statuses[] = { "received", "normalized", "ignored", "error" };

        if (!status)
                return 0;
        for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++)
                if (strcmp(status, statuses[i]) == 0)
                        return 0;
        return error_set(err, EBADMSG, "invalid_parameter", "status",
                         "status: must be received, normalized, ignored or error");
}

int deliveries_list(const struct api *api, const struct api_request *req, json_t **ret_body,
                    struct error *err) {
        struct list_ctx c = { .filter = { .limit = PARAMS_LIMIT_DEFAULT } };
        char next[24];
        int r;

        c.filter.source = req->arg(req->ctx, "source");
        c.filter.status = req->arg(req->ctx, "status");
        r = check_status(c.filter.status, err);
        if (r == 0)
                r = params_limit(req, &c.filter.limit, err);
        if (r == 0)
                r = params_cursor(req, &c.filter.before_id, err);
        if (r < 0)
                return r;
        c.items = json_array();
        if (!c.items)
                return error_set(err, ENOMEM, "unavailable", NULL, "Out of memory");
        r = api_with_store(api, list, &c, err);
        if (r < 0) {
                json_decref(c.items);
                log_warning("Failed to list deliveries: %s", err->msg);
                return r;
        }
        snprintf(next, sizeof(next), "%" PRId64, c.last_id);
        *ret_body = json_pack("{s:o,s:o}", "items", c.items, "next_cursor",
                              r == c.filter.limit ? json_string(next) : json_null());
        return 0;
}
