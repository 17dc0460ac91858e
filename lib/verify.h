/* verify: the authentication schemes webhook sources share (HMAC header, token, bearer).
 * Each takes the configured secrets as a comma-separated list, so that two secrets verify
 * while one is rotated. All return 0, or -EACCES with err->code set to the API error code. */
#pragma once

struct error;
struct hook_request;

/* Checks header `<prefix><hex HMAC-SHA256(secret, body)>` (e.g. prefix "sha256="). */
int verify_hmac_header(const struct hook_request *req, const char *header, const char *prefix,
                       const char *secrets, struct error *err)
        __attribute__((warn_unused_result));

/* Checks a presented token (NULL when the request carried none). */
int verify_token(const char *presented, const char *secrets, struct error *err)
        __attribute__((warn_unused_result));

/* The token of an `Authorization: Bearer <token>` header value (may be NULL), or NULL.
 * Borrowed from the value. */
const char *verify_bearer(const char *authorization);

/* The bearer token of req's Authorization header, or NULL. Borrowed from req. */
const char *verify_bearer_token(const struct hook_request *req);
