/* Unit tests for verify: the HMAC header, tokens and bearer parsing, with two secrets
 * while one is rotated, and the error code each refusal gives. */
#include "verify.h"

#include <errno.h>
#include <string.h>

#include "check.h"
#include "error.h"
#include "hook.h"

/* GitHub's documented example: this secret and body give this signature. */
#define SECRET "It's a Secret to Everybody"
#define BODY "Hello, World!"
#define SIG "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"

static int hmac_with(const char *name, const char *value, const char *secrets,
                     struct error *err) {
        struct hook_header h[] = { { "Content-Type", "application/json" }, { name, value } };
        struct hook_request req = { .body = BODY, .body_len = strlen(BODY), .headers = h,
                                    .n_headers = value ? 2 : 1 };

        memset(err, 0, sizeof(*err));
        return verify_hmac_header(&req, "X-Hub-Signature-256", "sha256=", secrets, err);
}

int main(void) {
        struct error err;

        /* HMAC: the header name and prefix are case-insensitive, and so is the hex. */
        CHECK(hmac_with("X-Hub-Signature-256", "sha256=" SIG, SECRET, &err) == 0);
        CHECK(hmac_with("x-hub-signature-256", "SHA256=" SIG, SECRET, &err) == 0);
        {
                char upper[sizeof("sha256=" SIG)];

                memcpy(upper, "sha256=" SIG, sizeof(upper));
                for (char *p = upper + 7; *p; p++)
                        if (*p >= 'a' && *p <= 'f')
                                *p = (char) (*p - 'a' + 'A');
                CHECK(hmac_with("X-Hub-Signature-256", upper, SECRET, &err) == 0);
        }
        /* Either of two secrets while rotating. */
        CHECK(hmac_with("X-Hub-Signature-256", "sha256=" SIG, "old," SECRET, &err) == 0);
        CHECK(hmac_with("X-Hub-Signature-256", "sha256=" SIG, SECRET ",new", &err) == 0);
        /* Refusals and their codes. */
        CHECK(hmac_with("X-Other", "sha256=" SIG, SECRET, &err) == -EACCES);
        CHECK_STR(err.code, "missing_signature");
        CHECK(hmac_with("X-Hub-Signature-256", NULL, SECRET, &err) == -EACCES);
        CHECK_STR(err.code, "missing_signature");
        CHECK(hmac_with("X-Hub-Signature-256", "sha1=" SIG, SECRET, &err) == -EACCES);
        CHECK_STR(err.code, "bad_signature");
        CHECK(hmac_with("X-Hub-Signature-256", "sha256=" SIG "0", SECRET, &err) == -EACCES);
        CHECK_STR(err.code, "bad_signature");
        CHECK(hmac_with("X-Hub-Signature-256", "sha256=", SECRET, &err) == -EACCES);
        CHECK_STR(err.code, "bad_signature");
        CHECK(hmac_with("X-Hub-Signature-256", "sha256=" SIG, "wrong", &err) == -EACCES);
        CHECK_STR(err.code, "bad_signature");
        CHECK(hmac_with("X-Hub-Signature-256", "sha256=" SIG, "wrong,also wrong", &err) == -EACCES);

        /* Tokens: exact, either of two, never empty. */
        CHECK(verify_token("t0ken", "t0ken", &err) == 0);
        CHECK(verify_token("new", "old,new", &err) == 0);
        CHECK(verify_token("t0ke", "t0ken", &err) == -EACCES);
        CHECK_STR(err.code, "bad_token");
        CHECK(verify_token("t0kenn", "t0ken", &err) == -EACCES);
        CHECK(verify_token("old,new", "old,new", &err) == -EACCES);     /* one value, not the list */
        CHECK(verify_token(NULL, "t0ken", &err) == -EACCES);
        CHECK_STR(err.msg, "Missing token");
        CHECK(verify_token("", "t0ken", &err) == -EACCES);

        /* Bearer: the scheme is case-insensitive; spaces after it are skipped. */
        CHECK_STR(verify_bearer("Bearer abc"), "abc");
        CHECK_STR(verify_bearer("bearer   abc"), "abc");
        CHECK(verify_bearer("Basic abc") == NULL);
        CHECK(verify_bearer("Bearerabc") == NULL);
        CHECK(verify_bearer(NULL) == NULL);
        {
                struct hook_header h[] = { { "authorization", "Bearer xyz" } };
                struct hook_request req = { .body = "", .headers = h, .n_headers = 1 };

                CHECK_STR(verify_bearer_token(&req), "xyz");
                req.n_headers = 0;
                CHECK(verify_bearer_token(&req) == NULL);
        }
        return check_summary();
}
