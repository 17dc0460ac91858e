/* health: the liveness and readiness probes. */
#include "health.h"

#include <errno.h>
#include <stdio.h>

#include "../lib/error.h"
#include "../lib/store.h"
#include "auth.h"
#include "config.h"
#include "writer.h"

int health_alive(const struct api *api, const struct api_request *req, json_t **ret_body,
                 struct error *err) {
        (void) api;
        (void) req;
        (void) err;
        *ret_body = json_pack("{s:s}", "status", "ok");
        return 0;
}

static int ping(struct store *s, void *ctx, struct error *err) {
        (void) ctx;
        return store_ping(s, err);
}

/* Ready: the database answers and no acknowledged delivery still waits in the spool. Why
 * the database does not answer (a socket path, libpq's text) is shown to api_token holders
 * only; anyone else hears that it does not. */
int health_ready(const struct api *api, const struct api_request *req, json_t **ret_body,
                 struct error *err) {
        const char *tokens = req->cfg->api_token;
        struct error auth = { 0 };
        struct writer_stats st;
        char reason[320];

        writer_get_stats(api->writer, &st);
        if (api_with_store(api, ping, NULL, err) < 0) {
                if (tokens && *tokens &&
                    auth_check(req->cfg, AUTH_API, req->authorization, &auth) == 0)
                        snprintf(reason, sizeof(reason), "%s", err->msg);
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
        if (!reason[0])
                return 0;
        return error_set(err, EAGAIN, "unavailable", NULL, "%s", reason);
}
