/* target: what the three targets share (target.h). */
#include "target.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

int target_post_json(const struct config *cfg, const struct target_export *e, const char *url,
                     json_t *body, const char *auth, const char *userpwd, atomic_bool *stop,
                     struct target_result *ret) {
        char key[TARGET_ID_MAX + 40];
        const char *headers[4] = { "Content-Type: application/json",
                                   "Accept: application/json", key, auth };
        char *text = json_dumps(body, JSON_COMPACT);
        int r;

        memset(ret, 0, sizeof(*ret));
        if (!text) {
                snprintf(ret->answer.error, sizeof(ret->answer.error), "out of memory");
                return -ENOMEM;
        }
        snprintf(key, sizeof(key), "Idempotency-Key: %s", e->idempotency_key);
        r = outbound_post(&(struct outbound_request) {
                .url = url, .headers = headers, .n_headers = auth ? 4 : 3, .body = text,
                .body_len = strlen(text), .userpwd = userpwd,
                .timeout_s = cfg->discovery_timeout_seconds, .stop = stop }, &ret->answer);
        free(text);
        return r;
}

void target_score_line(json_t *item, char *buf, size_t len) {
        json_t *parts = json_object_get(item, "parts");

        snprintf(buf, len, "Score %g = impact %g h x (1 + log2 reach %g) x confidence %g x "
                 "(1 + recurrence %g)", json_number_value(json_object_get(item, "score")),
                 json_number_value(json_object_get(parts, "impact_hours")),
                 json_number_value(json_object_get(parts, "reach")),
                 json_number_value(json_object_get(parts, "confidence")),
                 json_number_value(json_object_get(parts, "recurrence")));
}

void target_evidence_line(json_t *item, const char *kind, char *buf, size_t len) {
        json_t *ids = json_object_get(json_object_get(item, "evidence"), kind), *id;
        size_t i, at;

        buf[0] = '\0';
        if (!json_array_size(ids) || len < 8)
                return;
        at = (size_t) snprintf(buf, len, "%s: ", kind);
        json_array_foreach(ids, i, id) {
                const char *s = json_string_value(id);

                if (!s || at >= len - 1)
                        continue;
                at += (size_t) snprintf(buf + at, len - at, "%s%s", i ? ", " : "", s);
        }
        if (at >= len - 1 && len > 4)       /* cut: say so */
                memcpy(buf + len - 4, "...", 4);
}

void target_answer_string(const char *body, const char *path, const char *key, char *buf,
                          size_t len) {
        json_t *doc = body ? json_loads(body, 0, NULL) : NULL;
        json_t *obj = path ? json_object_get(doc, path) : doc;
        json_t *v = json_object_get(obj, key);

        buf[0] = '\0';
        if (json_is_string(v))
                snprintf(buf, len, "%s", json_string_value(v));
        else if (json_is_integer(v))
                snprintf(buf, len, "%lld", (long long) json_integer_value(v));
        json_decref(doc);
}
