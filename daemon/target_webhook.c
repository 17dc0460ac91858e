/* target_webhook: the generic webhook (API.md): POST {"type":"insight","version":N,
 * "insight":{...}} to discovery_webhook_url, signed with X-Doraloop-Signature-256:
 * sha256=HMAC-SHA256(discovery_webhook_secret, the exact body). Any 2xx is delivered. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/hmac.h"
#include "config.h"
#include "target.h"

static bool configured(const struct config *cfg) {
        return *cfg->discovery_webhook_url && cfg->discovery_webhook_secret &&
               *cfg->discovery_webhook_secret;
}

static int send_export(const struct config *cfg, const struct target_export *e,
                       atomic_bool *stop, struct target_result *ret) {
        char hex[HMAC_HEX_LEN + 1], signature[HMAC_HEX_LEN + 40], key[TARGET_ID_MAX + 40];
        const char *headers[4] = { "Content-Type: application/json", key, signature,
                                   "Accept: application/json" };
        json_t *body = json_pack("{s:s, s:i, s:O}", "type", "insight", "version", e->version,
                                 "insight", e->item);
        char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
        int r;

        json_decref(body);
        memset(ret, 0, sizeof(*ret));
        if (!text) {
                snprintf(ret->answer.error, sizeof(ret->answer.error), "out of memory");
                return -ENOMEM;
        }
        if (hmac_sha256_hex(cfg->discovery_webhook_secret, strlen(cfg->discovery_webhook_secret),
                            text, strlen(text), hex) < 0) {
                free(text);
                snprintf(ret->answer.error, sizeof(ret->answer.error), "cannot sign the body");
                return -EIO;
        }
        snprintf(signature, sizeof(signature), "X-Doraloop-Signature-256: sha256=%s", hex);
        snprintf(key, sizeof(key), "Idempotency-Key: %s", e->idempotency_key);
        r = outbound_post(&(struct outbound_request) {
                .url = cfg->discovery_webhook_url, .headers = headers, .n_headers = 4,
                .body = text, .body_len = strlen(text),
                .timeout_s = cfg->discovery_timeout_seconds, .stop = stop }, &ret->answer);
        free(text);
        return r;
}

const struct target target_webhook = { "webhook", configured, send_export };
