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
#include "list.h"

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
        if (!list_visit(secrets, hmac_matches, &check))
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
        if (!list_visit(secrets, token_matches, presented))
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
