/* verify: the authentication schemes webhook sources share. */
#include "verify.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "error.h"
#include "hmac.h"
#include "hook.h"

/* Calls match(secret, len, ctx) for each trimmed, non-empty secret of a comma-separated list;
 * true when any matches. Every secret is tried, so timing does not tell which one matched. */
static bool any_secret(const char *secrets, bool (*match)(const char *, size_t, const void *),
                       const void *ctx) {
        bool matched = false;
        const char *p = secrets;

        while (p && *p) {
                const char *end = strchr(p, ',');
                size_t len = end ? (size_t) (end - p) : strlen(p);
                const char *s = p;

                while (len && isspace((unsigned char) *s))
                        s++, len--;
                while (len && isspace((unsigned char) s[len - 1]))
                        len--;
                if (len && match(s, len, ctx))
                        matched = true;
                p = end ? end + 1 : NULL;
        }
        return matched;
}

struct hmac_check {
        const struct hook_request *req;
        char presented[HMAC_HEX_LEN + 1];
};

static bool hmac_matches(const char *secret, size_t len, const void *ctx) {
        const struct hmac_check *c = ctx;
        char hex[HMAC_HEX_LEN + 1];

        if (hmac_sha256_hex(secret, len, c->req->body, c->req->body_len, hex) < 0)
                return false;
        return secret_equal(hex, HMAC_HEX_LEN, c->presented, HMAC_HEX_LEN);
}

int verify_hmac_header(const struct hook_request *req, const char *header, const char *prefix,
                       const char *secrets, struct error *err) {
        const char *value = hook_header(req, header);
        size_t plen = strlen(prefix);
        struct hmac_check check = { .req = req };

        if (!value)
                return error_set(err, EACCES, "missing_signature", header,
                                 "Missing %s header", header);
        if (strncasecmp(value, prefix, plen) != 0 || strlen(value + plen) != HMAC_HEX_LEN)
                return error_set(err, EACCES, "bad_signature", header,
                                 "%s is not %s<64 hex digits>", header, prefix);
        for (size_t i = 0; i < HMAC_HEX_LEN; i++)
                check.presented[i] = (char) tolower((unsigned char) value[plen + i]);
        if (!any_secret(secrets, hmac_matches, &check))
                return error_set(err, EACCES, "bad_signature", header,
                                 "%s does not match the body", header);
        return 0;
}

static bool token_matches(const char *secret, size_t len, const void *ctx) {
        const char *presented = ctx;

        return secret_equal(secret, len, presented, strlen(presented));
}

int verify_token(const char *presented, const char *secrets, struct error *err) {
        if (!presented || !*presented)
                return error_set(err, EACCES, "bad_token", NULL, "Missing token");
        if (!any_secret(secrets, token_matches, presented))
                return error_set(err, EACCES, "bad_token", NULL, "Token does not match");
        return 0;
}

const char *verify_bearer_token(const struct hook_request *req) {
        return verify_bearer(hook_header(req, "Authorization"));
}

const char *verify_bearer(const char *v) {
        if (!v || strncasecmp(v, "Bearer ", 7) != 0)
                return NULL;
        v += 7;
        while (*v == ' ')
                v++;
        return v;
}
