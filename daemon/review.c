/* review: GET /api/v1/review: the store's agenda of the window, with its scope, as JSON or
 * rendered as Markdown (lib/review_markdown.h). */
#include "review.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/buf.h"
#include "../lib/error.h"
#include "../lib/review_markdown.h"
#include "../lib/store_review.h"
#include "dora.h"
#include "params.h"
#include "reply.h"

/* An agenda's Markdown is a few KiB a service; this bounds a window of years. */
#define MARKDOWN_MAX (8u << 20)

struct review_read {
        const struct params_window *p;
        char *json;
};

static int read_agenda(struct store *s, void *ctx, struct error *err) {
        struct review_read *rd = ctx;

        free(rd->json);         /* a retry on a fresh connection starts again */
        rd->json = NULL;
        return store_review(s, rd->p->service, rd->p->from_us, rd->p->to_us, rd->p->env_label,
                            &rd->json, err);
}

/* The answer's Markdown as a JSON string (REPLY_MARKDOWN), doc consumed. */
static int markdown(json_t *doc, json_t **ret_body, struct error *err) {
        struct buf out;
        int r;

        buf_init(&out, MARKDOWN_MAX);
        r = review_markdown(doc, &out);
        json_decref(doc);
        if (r == 0)
                *ret_body = json_stringn(out.data ? out.data : "", out.len);
        buf_free(&out);
        if (r == -E2BIG)
                return params_bad(err, "window", "gives an agenda over 8 MiB: ask for a "
                                  "shorter window or one service");
        return r == 0 && *ret_body ? REPLY_MARKDOWN : reply_oom(err);
}

int review_agenda(const struct api *api, const struct api_request *req, json_t **ret_body,
                  struct error *err) {
        const char *format = req->arg(req->ctx, "format");
        struct params_window p;
        struct review_read rd = { .p = &p };
        json_t *agenda, *doc;
        int r;

        if (format && strcmp(format, "json") != 0 && strcmp(format, "markdown") != 0)
                return params_bad(err, "format", "must be json or markdown");
        r = params_window(req, &p, err);
        if (r)
                return r;
        r = api_with_store(api, read_agenda, &rd, err);
        if (r < 0) {
                free(rd.json);
                return r == -ENOMEM ? reply_oom(err) : reply_unavailable(err, err, "the review");
        }
        agenda = json_loads(rd.json, 0, NULL);
        free(rd.json);
        doc = agenda ? json_pack("{s:o,s:s,s:o,s:O}", "service",
                                 p.service ? json_string(p.service) : json_null(),
                                 "environment", p.env_label,
                                 "window", dora_window_json(p.from_us, p.to_us),
                                 "services", json_object_get(agenda, "services"))
                     : NULL;
        json_decref(agenda);
        if (!doc)
                return reply_oom(err);
        if (format && strcmp(format, "markdown") == 0)
                return markdown(doc, ret_body, err);
        *ret_body = doc;
        return 0;
}
