/* auth: checks a bearer token against the tokens of a route's auth class. */
#include "auth.h"

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>

#include "../lib/error.h"
#include "../lib/verify.h"
#include "config.h"

static bool set(const char *tokens) {
        return tokens && *tokens;
}

/* The presented token against one or two token lists (either may pass; unset ones are
 * skipped); the caller has made sure at least one is set. */
static int check_tokens(const char *presented, const char *first, const char *second,
                        struct error *err) {
        int r = -EACCES;

        if (set(first))
                r = verify_token(presented, first, err);
        if (r < 0 && set(second))
                r = verify_token(presented, second, err);
        return r;
}

int auth_check(const struct config *cfg, enum route_auth class, const char *authorization,
               struct error *err) {
        const char *presented = verify_bearer(authorization);

        switch (class) {
        case AUTH_NONE:
                return 0;
        case AUTH_API:
                return set(cfg->api_token) ? check_tokens(presented, cfg->api_token, NULL, err)
                                           : 0;
        case AUTH_TRIAGE:
                if (!set(cfg->triage_token) && !set(cfg->admin_token))
                        return error_set(err, EACCES, "bad_token", "triage_token",
                                         "Neither triage_token nor admin_token is configured, "
                                         "so triage endpoints are disabled");
                return check_tokens(presented, cfg->triage_token, cfg->admin_token, err);
        case AUTH_ADMIN:
        case _AUTH_MAX:
                break;
        }
        if (!set(cfg->admin_token))
                return error_set(err, EACCES, "bad_token", "admin_token",
                                 "admin_token is not configured, so admin endpoints are "
                                 "disabled");
        return check_tokens(presented, cfg->admin_token, NULL, err);
}
