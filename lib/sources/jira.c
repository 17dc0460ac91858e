/* jira: Jira Cloud/Server and Jira Service Management webhooks. Signed with X-Hub-Signature
 * (HMAC-SHA256, "sha256=" prefix) when the webhook has a secret; automation rules, which
 * cannot sign, pass ?token= instead. The event type is the body's webhookEvent. */
#include <stdlib.h>

#include "../doc.h"
#include "../hook.h"
#include "../source.h"
#include "../verify.h"

static int verify(const struct hook_request *req, const char *secrets, struct error *err) {
        if (req->query_token && !hook_header(req, "X-Hub-Signature"))
                return verify_token(req->query_token, secrets, err);
        return verify_hmac_header(req, "X-Hub-Signature", "sha256=", secrets, err);
}

static int identify(const struct hook_request *req, json_t *doc, char **ret_delivery_id,
                    char **ret_event, struct error *err) {
        const char *header = hook_header(req, "X-Atlassian-Webhook-Identifier");
        const char *event = doc_string(doc, "webhookEvent");
        char *id = NULL;
        int r;

        /* A JSM automation "Send web request" carries no webhookEvent, only the issue. */
        if (!event && json_is_object(json_object_get(doc, "issue")))
                event = "automation";
        r = header ? source_copy_id(header, "X-Atlassian-Webhook-Identifier", &id, err)
                   : source_body_id(req, &id, err);
        if (r < 0)
                return r;
        r = source_copy_id(event, "webhookEvent", ret_event, err);
        if (r < 0) {
                free(id);
                return r;
        }
        *ret_delivery_id = id;
        return 0;
}

const struct source source_jira = {
        .name = "jira",
        .secret_key = "jira_secret",
        .verify = verify,
        .identify = identify,
};
