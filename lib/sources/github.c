/* github: GitHub webhooks. Signed with X-Hub-Signature-256 (HMAC-SHA256 of the body);
 * the delivery id and event type travel in headers. */
#include <stdlib.h>

#include "../hook.h"
#include "../source.h"
#include "../verify.h"

static int verify(const struct hook_request *req, const char *secrets, struct error *err) {
        return verify_hmac_header(req, "X-Hub-Signature-256", "sha256=", secrets, err);
}

static int identify(const struct hook_request *req, json_t *doc, char **ret_delivery_id,
                    char **ret_event, struct error *err) {
        char *id = NULL;
        int r;

        (void) doc;
        r = source_copy_id(hook_header(req, "X-GitHub-Delivery"), "X-GitHub-Delivery", &id, err);
        if (r < 0)
                return r;
        r = source_copy_id(hook_header(req, "X-GitHub-Event"), "X-GitHub-Event", ret_event, err);
        if (r < 0) {
                free(id);
                return r;
        }
        *ret_delivery_id = id;
        return 0;
}

const struct source source_github = {
        .name = "github",
        .secret_key = "github_secret",
        .verify = verify,
        .identify = identify,
};
