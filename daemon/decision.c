/* decision: POST /api/v1/insights/{id}/decision. */
#include "decision.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "../lib/doc.h"
#include "../lib/error.h"
#include "../lib/store_insights.h"
#include "../lib/utf8.h"
#include "config.h"
#include "log.h"
#include "params.h"
#include "reply.h"

#define REASON_MAX 2000         /* characters (API.md gives none; a paragraph, not a file) */
#define ACTOR_MAX 200
#define ACTOR_DEFAULT "api"     /* when the body names no one */

/* What the body asks. */
struct decision {
        const char *decision, *reason, *actor;  /* borrowed from the parsed body */
};

/* The number of characters of s (well-formed UTF-8 without NUL: doc_parse checked). */
static size_t chars(const char *s) {
        size_t n = 0;

        for (size_t len; *s; s += len ? len : 1, n++)
                len = utf8_char_len(s);
        return n;
}

static int bad(struct error *err, const char *field, const char *why) {
        return error_set(err, EBADMSG, "invalid_payload", field, "%s: %s", field, why);
}

/* A string member of doc: its value in *ret (NULL when absent, or null, and optional).
 * Refused: any other type, an empty or blank string, more than max characters. */
static int string_member(json_t *doc, const char *name, size_t max, bool required,
                         const char **ret, struct error *err) {
        json_t *v = json_object_get(doc, name);
        const char *s;

        *ret = NULL;
        if ((!v || json_is_null(v)) && !required)
                return 0;       /* an optional null is absent (doraloopctl sends one) */
        if (!v)
                return bad(err, name, "is required");
        if (!json_is_string(v))
                return bad(err, name, "must be a string");
        s = json_string_value(v);
        if (s[strspn(s, " \t\r\n")] == '\0')
                return bad(err, name, "must not be empty");
        if (chars(s) > max) {
                char why[64];

                snprintf(why, sizeof(why), "must be at most %zu characters", max);
                return bad(err, name, why);
        }
        *ret = s;
        return 0;
}

/* The body's three members into *d; nothing else is taken, so that a typo is refused,
 * not ignored. */
static int read_body(json_t *doc, struct decision *d, struct error *err) {
        const char *key;
        json_t *v;
        int r;

        json_object_foreach(doc, key, v) {
                if (strcmp(key, "decision") != 0 && strcmp(key, "reason") != 0 &&
                    strcmp(key, "actor") != 0)
                        return error_set(err, EBADMSG, "invalid_payload", key,
                                         "%s: unknown member; the body takes decision, "
                                         "reason and actor", key);
        }
        r = string_member(doc, "decision", 16, true, &d->decision, err);
        if (r == 0 && strcmp(d->decision, "accept") != 0 && strcmp(d->decision, "dismiss") != 0)
                r = bad(err, "decision", "must be accept or dismiss");
        if (r == 0)
                r = string_member(doc, "reason", REASON_MAX, true, &d->reason, err);
        if (r == 0)
                r = string_member(doc, "actor", ACTOR_MAX, false, &d->actor, err);
        if (r == 0 && !d->actor)
                d->actor = ACTOR_DEFAULT;
        return r;
}

/* What the store answered. */
struct decide {
        const char *id;
        const struct decision *d;
        char outcome[16];
        json_t *item;
};

static int take_answer(void *ctx, const struct store_row *r) {
        struct decide *x = ctx;

        snprintf(x->outcome, sizeof(x->outcome), "%s", r->values[0] ? r->values[0] : "");
        json_decref(x->item);
        x->item = r->values[1] ? json_loads(r->values[1], 0, NULL) : NULL;
        return r->values[1] && !x->item ? -EPROTO : 0;
}

static int decide(struct store *s, void *ctx, struct error *err) {
        struct decide *x = ctx;

        json_decref(x->item);   /* a retry on a fresh connection starts again */
        x->item = NULL;
        x->outcome[0] = '\0';
        return store_insight_decide(s, x->id, x->d->decision, x->d->reason, x->d->actor,
                                    take_answer, x, err);
}

int decision_post(const struct api *api, const struct api_request *req, json_t **ret_body,
                  struct error *err) {
        char id[PARAMS_KEY_MAX + 1];
        struct decision d = { NULL, NULL, NULL };
        struct decide x = { .id = id, .d = &d };
        json_t *doc = NULL;
        int r;

        if (params_key(req, id, "insight", err) < 0)
                return -ENOENT;
        r = doc_parse_bounded(req->body ? req->body : "", req->body_len,
                              (size_t) req->cfg->max_json_elements, &doc, err);
        if (r == 0)
                r = read_body(doc, &d, err);
        if (r < 0) {
                json_decref(doc);
                return r;
        }
        /* A write: never on query_db, which may be a standby. */
        r = api_with_primary(api, decide, &x, err);
        if (r < 0)
                r = r == -ENOMEM ? reply_oom(err) : reply_unavailable(err, err, "a decision");
        else if (strcmp(x.outcome, "unknown") == 0 || !x.item)
                r = error_set(err, ENOENT, "not_found", NULL, "No such insight");
        else if (strcmp(x.outcome, "conflict") == 0)
                r = error_set(err, EBUSY, "conflict", NULL,
                              "Insight %s is %s already: its versions go to the outbox, so it "
                              "cannot be dismissed", id,
                              json_string_value(json_object_get(x.item, "status")));
        else if (strcmp(x.outcome, "decided") == 0)
                log_info("Insight %s: %s by %s", id, d.decision, d.actor);
        json_decref(doc);
        if (r < 0) {
                json_decref(x.item);
                return r;
        }
        *ret_body = x.item;
        return 0;
}
