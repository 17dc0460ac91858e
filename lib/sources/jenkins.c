/* jenkins: the Notification plugin's JSON messages. The plugin cannot sign, so a bearer
 * token or ?token= authenticates. A build phase is delivered once, so build URL, number
 * and phase make the delivery id. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "../doc.h"
#include "../error.h"
#include "../hook.h"
#include "../source.h"
#include "../verify.h"

static int verify(const struct hook_request *req, const char *secrets, struct error *err) {
        const char *token = verify_bearer_token(req);

        return verify_token(token ? token : req->query_token, secrets, err);
}

static int identify(const struct hook_request *req, json_t *doc, char **ret_delivery_id,
                    char **ret_event, struct error *err) {
        const char *url = doc_string(doc, "build.full_url");
        const char *phase = doc_string(doc, "build.phase");
        json_t *number = doc_get(doc, "build.number");
        char id[SOURCE_ID_MAX + 2];
        int r;

        (void) req;
        if (!url)
                url = doc_string(doc, "build.url");
        if (!url)
                return error_set(err, EBADMSG, "invalid_payload", "build.url",
                                 "Missing build.full_url or build.url");
        if (!json_is_integer(number))
                return error_set(err, EBADMSG, "invalid_payload", "build.number",
                                 "build.number must be an integer");
        if (!phase)
                return error_set(err, EBADMSG, "invalid_payload", "build.phase",
                                 "build.phase must be a string");
        r = snprintf(id, sizeof(id), "%s#%lld:%s", url, (long long) json_integer_value(number),
                     phase);
        if (r < 0 || (size_t) r >= sizeof(id))
                return error_set(err, EBADMSG, "invalid_payload", "build.url",
                                 "build.url is too long");
        r = source_copy_id(id, "build.url", ret_delivery_id, err);
        if (r < 0)
                return r;
        r = source_copy_id(phase, "build.phase", ret_event, err);
        if (r < 0) {
                free(*ret_delivery_id);
                *ret_delivery_id = NULL;
        }
        return r;
}

const struct source source_jenkins = {
        .name = "jenkins",
        .secret_key = "jenkins_token",
        .verify = verify,
        .identify = identify,
};
