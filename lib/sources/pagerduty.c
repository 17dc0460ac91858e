/* pagerduty: PagerDuty webhooks v3. A subscription signs each delivery with each of its
 * secrets: X-PagerDuty-Signature holds one v1=<hex HMAC-SHA256> per secret, comma-separated,
 * and any may match. body.event.id is the delivery id, body.event.event_type the event.
 * Incident events give an incident row keyed by the incident's id, dated by the event's
 * occurred_at; docs/sources.md says what each event type does to it. */
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../doc.h"
#include "../error.h"
#include "../event.h"
#include "../hmac.h"
#include "../hook.h"
#include "../list.h"
#include "../normalize.h"
#include "../source.h"
#include "../timefmt.h"

/* What its keys set (keys[] below). */
struct pagerduty_options {
        const char *secret;             /* read by http.c, through the config */
};

#define SIGNATURE_HEADER "X-PagerDuty-Signature"
#define SIGNATURES_MAX 8        /* v1= values looked at in one header; more are not read */

struct signatures {
        const struct hook_request *req;
        char hex[SIGNATURES_MAX][HMAC_HEX_LEN + 1];
        size_t n;
};

/* Collects the well-formed v1=<64 hex> items of the header value, lower-cased. */
static void parse_signatures(const char *value, struct signatures *s) {
        for (const char *p = value; *p && s->n < SIGNATURES_MAX;) {
                size_t len = strcspn(p, ","), lead = strspn(p, " \t");
                const char *item = p + lead;
                size_t n = len - (lead < len ? lead : len);

                while (n && (item[n - 1] == ' ' || item[n - 1] == '\t'))
                        n--;
                if (n == 3 + HMAC_HEX_LEN && strncasecmp(item, "v1=", 3) == 0) {
                        bool hex = true;

                        for (size_t i = 0; i < HMAC_HEX_LEN; i++) {
                                hex &= isxdigit((unsigned char) item[3 + i]) != 0;
                                s->hex[s->n][i] = (char) tolower((unsigned char) item[3 + i]);
                        }
                        s->hex[s->n][HMAC_HEX_LEN] = '\0';
                        s->n += hex;
                }
                p += len + (p[len] == ',');
        }
}

/* Whether secret's HMAC of the body is one of the signatures; every one is compared. */
static bool secret_signed(const char *secret, size_t len, const void *ctx) {
        const struct signatures *s = ctx;
        char hex[HMAC_HEX_LEN + 1];
        bool match = false;

        if (hmac_sha256_hex(secret, len, s->req->body, s->req->body_len, hex) < 0)
                return false;
        for (size_t i = 0; i < s->n; i++)
                match |= secret_equal(hex, HMAC_HEX_LEN, s->hex[i], HMAC_HEX_LEN);
        return match;
}

static int verify(const struct hook_request *req, const char *secrets, struct error *err) {
        const char *value = hook_header(req, SIGNATURE_HEADER);
        struct signatures s = { .req = req };

        if (!value)
                return error_set(err, EACCES, "missing_signature", SIGNATURE_HEADER,
                                 "Missing %s header", SIGNATURE_HEADER);
        parse_signatures(value, &s);
        if (s.n == 0)
                return error_set(err, EACCES, "bad_signature", SIGNATURE_HEADER,
                                 "%s holds no v1=<64 hex digits>", SIGNATURE_HEADER);
        if (!list_visit(secrets, secret_signed, &s))
                return error_set(err, EACCES, "bad_signature", SIGNATURE_HEADER,
                                 "%s does not match the body", SIGNATURE_HEADER);
        return 0;
}

static int identify(const struct hook_request *req, json_t *doc, char **ret_delivery_id,
                    char **ret_event, struct error *err) {
        int r;

        (void) req;
        r = source_copy_id(doc_string(doc, "event.id"), "event.id", ret_delivery_id, err);
        if (r < 0)
                return r;
        r = source_copy_id(doc_string(doc, "event.event_type"), "event.event_type", ret_event,
                           err);
        if (r < 0) {
                free(*ret_delivery_id);
                *ret_delivery_id = NULL;
        }
        return r;
}

/* What an incident event does to the incident row. */
enum effect { IGNORED, OPEN, RESOLVED, BY_STATUS };

static enum effect effect_of(const char *event) {
        static const struct { const char *event; enum effect effect; } table[] = {
                { "incident.triggered", OPEN },
                { "incident.reopened", OPEN },
                { "incident.acknowledged", OPEN },      /* still down: worked on */
                { "incident.unacknowledged", OPEN },
                { "incident.resolved", RESOLVED },      /* or merged into another */
                { "incident.priority_updated", BY_STATUS },
        };

        for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
                if (strcmp(event, table[i].event) == 0)
                        return table[i].effect;
        return IGNORED;
}

/* What one incident event says, read from the payload. */
struct incident_fields {
        const char *id, *title, *status, *service, *priority, *urgency, *resolve_reason;
        int64_t occurred, created;
};

static int read_fields(json_t *doc, int64_t received_us, struct incident_fields *f,
                       struct error *err) {
        json_t *data, *priority, *reason;
        int r;

        if ((r = normalize_time(doc, "event.occurred_at", false, &f->occurred, err)) < 0 ||
            (r = normalize_container(doc, "event.data", JSON_OBJECT, &data, err)) < 0 ||
            (r = normalize_string(data, "id", true, &f->id, err)) < 0 ||
            (r = normalize_string(data, "title", false, &f->title, err)) < 0 ||
            (r = normalize_string(data, "status", false, &f->status, err)) < 0 ||
            (r = normalize_string(data, "service.summary", true, &f->service, err)) < 0 ||
            (r = normalize_time(data, "created_at", false, &f->created, err)) < 0 ||
            (r = normalize_container(data, "priority", JSON_OBJECT, &priority, err)) < 0 ||
            (r = normalize_string(priority, "summary", false, &f->priority, err)) < 0 ||
            (r = normalize_string(data, "urgency", false, &f->urgency, err)) < 0 ||
            (r = normalize_container(data, "resolve_reason", JSON_OBJECT, &reason, err)) < 0 ||
            (r = normalize_string(reason, "type", false, &f->resolve_reason, err)) < 0)
                return r;
        if (!data)
                return error_set(err, EBADMSG, "invalid_payload", "event.data",
                                 "Missing event.data");
        if (f->occurred == TIME_UNSET)
                f->occurred = received_us;
        return 0;
}

static int normalize(json_t *doc, const char *event, int64_t received_us,
                     const struct normalize_options *o, struct event_list *out,
                     struct error *err) {
        enum effect effect = effect_of(event);
        struct incident_fields f = { 0 };
        const char *type, *status;
        bool ok = true;
        struct event *e;
        int r;

        if (effect == IGNORED)
                return normalize_ignored(err, "PagerDuty event '%s' does not change an "
                                         "incident's state", event);
        if ((r = normalize_string(doc, "event.data.type", false, &type, err)) < 0)
                return r;
        if (type && strcmp(type, "incident") != 0)
                return normalize_ignored(err, "PagerDuty event '%s' is about a '%s', not an "
                                         "incident", event, type);
        if ((r = read_fields(doc, received_us, &f, err)) < 0)
                return r;
        if (effect == BY_STATUS && f.status && strcmp(f.status, "resolved") == 0)
                return normalize_ignored(err, "the priority of resolved incident %s changed: its "
                                         "row keeps the resolution's", f.id);
        status = effect != RESOLVED ? "open"
                 : f.resolve_reason && strcmp(f.resolve_reason, "merge_resolve_reason") == 0
                 ? "deleted" : "resolved";
        e = event_list_add(out, EVENT_INCIDENT);
        if (!e)
                return -ENOMEM;
        e->incident.key = event_strdup(f.id, &ok);
        e->incident.service = normalize_service(o, f.service);
        ok &= e->incident.service != NULL;
        e->incident.title = event_strdup(f.title, &ok);
        e->incident.status = event_strdup(status, &ok);
        e->incident.severity = event_strdup(f.priority ? f.priority : f.urgency, &ok);
        /* An incident first seen after its trigger is opened no later than this event; the
         * store keeps the earliest opening it is given. */
        e->incident.opened_at = strcmp(event, "incident.triggered") != 0 &&
                                f.created != TIME_UNSET ? f.created : f.occurred;
        if (strcmp(status, "resolved") == 0)
                e->incident.resolved_at = f.occurred;
        e->incident.updated_at = f.occurred;
        return ok ? 1 : -ENOMEM;
}

#define OFF(f) offsetof(struct pagerduty_options, f)
static const struct confkey keys[] = {
        { "pagerduty_secret", KEY_SECRET, NULL, OFF(secret), 0, 0, NULL,
          "PagerDuty v3 webhook subscription signing secret(s)", CONFKEY_LIVE },
};
#undef OFF

const struct source source_pagerduty = {
        .name = "pagerduty",
        .secret_key = "pagerduty_secret",
        SOURCE_KEYS(keys),
        SOURCE_OPTIONS(struct pagerduty_options),
        .auth_headers = { SIGNATURE_HEADER },
        .verify_reads_body = true,
        .challenge = "HMAC-SHA256 realm=\"doraloop\", header=\"" SIGNATURE_HEADER "\"",
        .verify = verify,
        .identify = identify,
        .normalize = normalize,
};
