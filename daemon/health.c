/* health: the liveness and readiness probes. */
#include "health.h"

#include <errno.h>
#include <stdio.h>

#include "../lib/error.h"
#include "../lib/store.h"
#include "../lib/store_standby.h"
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

static int read_lag(struct store *s, void *ctx, struct error *err) {
        struct health_standby *hs = ctx;

        return store_standby_lag(s, &hs->standby, &hs->lag_s, err);
}

int health_standby(const struct api *api, struct health_standby *ret, struct error *err) {
        *ret = (struct health_standby) { .separate = api->primary && api->primary != api->pool };
        if (!ret->separate)
                return 0;
        return api_with_store(api, read_lag, ret, err);
}

/* Whether the caller may hear libpq's reasons (a socket path, a host). */
static bool may_see_why(const struct api_request *req) {
        const char *tokens = req->cfg->api_token;
        struct error auth = { 0 };

        return tokens && *tokens && auth_check(req->cfg, AUTH_API, req->authorization, &auth) == 0;
}

/* Ready: the database answers (and query_db, when it is another one) and no acknowledged
 * delivery still waits in the spool. Why a database does not answer (a socket path,
 * libpq's text) is shown to api_token holders only; anyone else hears that it does not.
 * A standby's replica_lag_seconds is shown, never a reason to be unready. */
int health_ready(const struct api *api, const struct api_request *req, json_t **ret_body,
                 struct error *err) {
        struct health_standby hs = { .separate = false };
        struct writer_stats st;
        char reason[320];

        writer_get_stats(api->writer, &st);
        if (api_with_primary(api, ping, NULL, err) < 0)
                snprintf(reason, sizeof(reason), "%s", may_see_why(req) ? err->msg
                         : "The database does not answer");
        else if (health_standby(api, &hs, err) < 0)
                snprintf(reason, sizeof(reason), "%s", may_see_why(req) ? err->msg
                         : "The query database (query_db) does not answer");
        else if (st.spooled > 0)
                snprintf(reason, sizeof(reason), "%zu deliveries in the spool wait to be "
                         "replayed into the database", st.spooled);
        else
                reason[0] = '\0';
        *ret_body = json_pack("{s:s,s:s*,s:I,s:I}", "status", reason[0] ? "unavailable" : "ready",
                              "reason", reason[0] ? reason : NULL, "queued",
                              (json_int_t) st.queued, "spooled", (json_int_t) st.spooled);
        if (*ret_body && hs.standby)
                json_object_set_new(*ret_body, "replica_lag_seconds", json_real(hs.lag_s));
        if (!reason[0])
                return 0;
        return error_set(err, EAGAIN, "unavailable", NULL, "%s", reason);
}
