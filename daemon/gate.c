/* gate: may a pipeline deploy under this change request now? (lib/changectl.c decides) */
#include "gate.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>

#include "../lib/changectl.h"
#include "../lib/error.h"
#include "../lib/store_changes.h"
#include "config.h"
#include "params.h"
#include "reply.h"

struct one {
        const char *key;
        struct store_change_brief brief;
};

static int read_brief(struct store *s, void *ctx, struct error *err) {
        struct one *o = ctx;

        return store_change_brief(s, o->key, &o->brief, err);
}

int gate_answer(const struct api *api, const struct api_request *req, json_t **ret_body,
                struct error *err) {
        const char *service = req->arg(req->ctx, "service");
        const char *environment = req->arg(req->ctx, "environment");
        char key[PARAMS_KEY_MAX + 1];
        struct one o = { .key = key };
        struct changectl_record rec;
        struct timespec now;
        char reason[400];
        bool allowed;

        if (params_key(req, key, "change request", err) < 0)
                return -ENOENT;
        if (service && !*service)
                return error_set(err, EBADMSG, "invalid_parameter", "service",
                                 "service: must not be empty");
        if (environment && !*environment)
                return error_set(err, EBADMSG, "invalid_parameter", "environment",
                                 "environment: must not be empty");
        if (api_with_primary(api, read_brief, &o, err) < 0)     /* never a standby's */
                return reply_unavailable(err, err, "a gate");
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
