/* generic: doraloop's own JSON body (API.md, "Generic source body") for any other CI/CD
 * system or script. Bearer token; Idempotency-Key header, else the body's SHA-256, is the
 * delivery id; the body's "type" is the event. */
#include <stdlib.h>

#include "../doc.h"
#include "../hook.h"
#include "../source.h"
#include "../verify.h"

static int verify(const struct hook_request *req, const char *secrets, struct error *err) {
        return verify_token(verify_bearer_token(req), secrets, err);
}

static int identify(const struct hook_request *req, json_t *doc, char **ret_delivery_id,
                    char **ret_event, struct error *err) {
        const char *key = hook_header(req, "Idempotency-Key");
        char *id = NULL;
        int r;

        r = key ? source_copy_id(key, "Idempotency-Key", &id, err)
                : source_body_id(req, &id, err);
        if (r < 0)
                return r;
        r = source_copy_id(doc_string(doc, "type"), "type", ret_event, err);
        if (r < 0) {
                free(id);
                return r;
        }
        *ret_delivery_id = id;
        return 0;
}

const struct source source_generic = {
        .name = "generic",
        .secret_key = "generic_token",
        .verify = verify,
        .identify = identify,
};
