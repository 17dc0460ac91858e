/* gitlab: GitLab webhooks. A shared token in X-Gitlab-Token; the event type in
 * X-Gitlab-Event and a delivery id in X-Gitlab-Event-UUID (GitLab 15.x+; older
 * instances send none, and the body's SHA-256 stands in). */
#include <stdlib.h>

#include "../hook.h"
#include "../source.h"
#include "../verify.h"

static int verify(const struct hook_request *req, const char *secrets, struct error *err) {
        return verify_token(hook_header(req, "X-Gitlab-Token"), secrets, err);
}

static int identify(const struct hook_request *req, json_t *doc, char **ret_delivery_id,
                    char **ret_event, struct error *err) {
        const char *uuid = hook_header(req, "X-Gitlab-Event-UUID");
        char *id = NULL;
        int r;

        (void) doc;
        r = uuid ? source_copy_id(uuid, "X-Gitlab-Event-UUID", &id, err)
                 : source_body_id(req, &id, err);
        if (r < 0)
                return r;
        r = source_copy_id(hook_header(req, "X-Gitlab-Event"), "X-Gitlab-Event", ret_event, err);
        if (r < 0) {
                free(id);
                return r;
        }
        *ret_delivery_id = id;
        return 0;
}

const struct source source_gitlab = {
        .name = "gitlab",
        .secret_key = "gitlab_token",
        .verify = verify,
        .identify = identify,
};
