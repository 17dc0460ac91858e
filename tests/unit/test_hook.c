/* Unit tests for hook: header lookup on a received request, as every source's verify() and
 * identify() use it: case-insensitive, whole names only, the first of repeated ones. */
#include "hook.h"

#include <stddef.h>

#include "check.h"

int main(void) {
        const struct hook_header headers[] = {
                { "X-GitHub-Event", "push" },
                { "X-Hub-Signature-256", "sha256=first" },
                { "x-hub-signature-256", "sha256=second" },    /* a repeat: never read */
                { "X-Empty", "" },
                { "X-Gitlab-Token", "t" },
        };
        const struct hook_request req = { .body = "{}", .body_len = 2, .headers = headers,
                                          .n_headers = sizeof(headers) / sizeof(headers[0]) };
        const struct hook_request none = { .body = "", .headers = NULL, .n_headers = 0 };
        const struct hook_request first_two = { .headers = headers, .n_headers = 2 };

        /* Names are case-insensitive (RFC 9110 5.1); the value comes back as it is. */
        CHECK_STR(hook_header(&req, "X-GitHub-Event"), "push");
        CHECK_STR(hook_header(&req, "x-github-event"), "push");
        CHECK_STR(hook_header(&req, "X-GITHUB-EVENT"), "push");
        /* Repeated: the first wins, whatever the case of the later one. */
        CHECK_STR(hook_header(&req, "X-Hub-Signature-256"), "sha256=first");
        /* Present and empty is "", not NULL: a source can tell it from absent. */
        CHECK(hook_header(&req, "X-Empty") != NULL);
        CHECK_STR(hook_header(&req, "X-Empty"), "");
        /* The last header is reached (no off-by-one at the end). */
        CHECK_STR(hook_header(&req, "x-gitlab-token"), "t");

        /* Whole names only: neither a prefix nor an extension of a name matches. */
        CHECK(hook_header(&req, "X-GitHub") == NULL);
        CHECK(hook_header(&req, "X-GitHub-Event2") == NULL);
        CHECK(hook_header(&req, "X-Hub-Signature") == NULL);
        CHECK(hook_header(&req, "") == NULL);
        CHECK(hook_header(&req, "X-Jenkins-Token") == NULL);

        /* n_headers bounds the walk: past it nothing is read (headers[2..] exist in memory
         * but are not part of first_two), and no headers at all is NULL for any name. */
        CHECK(hook_header(&first_two, "X-Gitlab-Token") == NULL);
        CHECK_STR(hook_header(&first_two, "x-hub-signature-256"), "sha256=first");
        CHECK(hook_header(&none, "X-GitHub-Event") == NULL);
        return check_summary();
}
