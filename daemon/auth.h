/* auth: the four auth classes a route can have, and the one check of a request's bearer
 * token against the class's configured tokens. */
#pragma once

struct config;
struct error;

enum route_auth {
        AUTH_NONE,      /* anyone (health probes, the dashboard, webhooks: a source checks
                         * its own credential) */
        AUTH_API,       /* api_token; open while api_token is unset */
        AUTH_TRIAGE,    /* triage_token or admin_token; refused while both are unset */
        AUTH_ADMIN,     /* admin_token; refused while it is unset */
        _AUTH_MAX,
};

/* Whether the Authorization header value authorization (NULL: none) passes class under
 * cfg. Returns 0, or -EACCES with err's code "bad_token" and why. Thread-safe. */
int auth_check(const struct config *cfg, enum route_auth class, const char *authorization,
               struct error *err) __attribute__((warn_unused_result));
