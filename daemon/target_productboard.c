/* target_productboard: Productboard notes (API.md): POST {productboard_url}/notes with the
 * Bearer token, {"title","content","display_url","source":{"origin":"doraloop",
 * "record_id":"<id>/<version>"},"tags":["doraloop","<service>"]}. Each version is a note of
 * its own, its content plain text lines; the answer's data.id is the external id, its
 * links.html the address. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "target.h"

static bool configured(const struct config *cfg) {
        return cfg->productboard_token && *cfg->productboard_token && *cfg->productboard_url;
}

static int send_export(const struct config *cfg, const struct target_export *e,
                       atomic_bool *stop, struct target_result *ret) {
        static const char *const kinds[] = { "incidents", "problems", "observations",
                                             "deployments" };
        char url[TARGET_URL_MAX + 16], auth[1024], line[1024], content[8192];
        size_t at;
        json_t *body;
        int r;

        target_score_line(e->item, line, sizeof(line));
        at = (size_t) snprintf(content, sizeof(content), "%s", line);
        for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
                target_evidence_line(e->item, kinds[k], line, sizeof(line));
                if (*line && at < sizeof(content))
                        at += (size_t) snprintf(content + at, sizeof(content) - at,
                                                "\n%s", line);
        }
        body = json_pack("{s:O?, s:s, s:s, s:{s:s, s:s}, s:[s, O?]}",
                         "title", json_object_get(e->item, "title"), "content", content,
                         "display_url", e->link, "source", "origin", "doraloop", "record_id",
                         e->idempotency_key, "tags", "doraloop",
                         json_object_get(e->item, "service"));
        if (!body) {
                memset(ret, 0, sizeof(*ret));
                snprintf(ret->answer.error, sizeof(ret->answer.error), "out of memory");
                return -ENOMEM;
        }
        snprintf(url, sizeof(url), "%s/notes", cfg->productboard_url);
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", cfg->productboard_token);
        r = target_post_json(cfg, e, url, body, auth, NULL, stop, ret);
        json_decref(body);
        if (r == 0 && ret->answer.status / 100 == 2) {
                target_answer_string(ret->answer.body, "data", "id", ret->external_id,
                                     sizeof(ret->external_id));
                target_answer_string(ret->answer.body, "links", "html", ret->external_url,
                                     sizeof(ret->external_url));
        }
        return r;
}

const struct target target_productboard = { "productboard", configured, send_export };
