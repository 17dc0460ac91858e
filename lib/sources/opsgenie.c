/* opsgenie: Opsgenie's Webhook integration, which posts every alert action. It cannot sign:
 * a bearer token (a custom header) or ?token= authenticates. Its bodies carry no delivery
 * id, so the SHA-256 of the body is one; body.action is the event. Alert actions give an
 * incident row keyed by the alert's id, dated by the alert's updatedAt; docs/sources.md says
 * what each action does to it. */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../doc.h"
#include "../error.h"
#include "../event.h"
#include "../hook.h"
#include "../normalize.h"
#include "../source.h"
#include "../timefmt.h"
#include "../verify.h"

/* What its keys set (keys[] below). */
struct opsgenie_options {
        const char *token;              /* read by http.c, through the config */
};

/* The service of an alert with no entity, before service_map. */
#define NO_ENTITY_SERVICE "opsgenie"

static int verify(const struct hook_request *req, const char *secrets, struct error *err) {
        const char *token = verify_bearer_token(req);

        return verify_token(token ? token : req->query_token, secrets, err);
}

static int identify(const struct hook_request *req, json_t *doc, char **ret_delivery_id,
                    char **ret_event, struct error *err) {
        return source_identify(req, NULL, NULL, true, doc_string(doc, "action"), "action",
                               ret_delivery_id, ret_event, err);
}

/* What an alert action does to the incident row. */
enum effect { IGNORED, OPEN, RESOLVED, DELETED, BY_STATUS };

static enum effect effect_of(const char *action) {
        static const struct { const char *action; enum effect effect; } table[] = {
                { "Create", OPEN },
                { "Acknowledge", OPEN },        /* still down: worked on */
                { "UnAcknowledge", OPEN },
                { "Close", RESOLVED },
                { "Delete", DELETED },
                { "UpdatePriority", BY_STATUS },
        };

        for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
                if (strcmp(action, table[i].action) == 0)
                        return table[i].effect;
        return IGNORED;
}

/* The alert's priority as Opsgenie names it, P1 (critical) to P5, into buf; the API sends
 * "P3", older integrations 3. NULL when absent; anything else is an error. */
static int read_priority(json_t *alert, char buf[4], const char **ret, struct error *err) {
        json_t *v = json_object_get(alert, "priority");
        const char *s = json_string_value(v);

        *ret = NULL;
        if (!v || json_is_null(v))
                return 0;
        if (json_is_integer(v) && json_integer_value(v) >= 1 && json_integer_value(v) <= 5) {
                snprintf(buf, 4, "P%d", (int) json_integer_value(v));
                *ret = buf;
                return 0;
        }
        if (s && strlen(s) == 2 && (s[0] == 'P' || s[0] == 'p') && s[1] >= '1' && s[1] <= '5') {
                snprintf(buf, 4, "P%c", s[1]);
                *ret = buf;
                return 0;
        }
        return error_set(err, EBADMSG, "invalid_payload", "alert.priority",
                         "alert.priority must be P1 to P5");
}

/* What one alert action says, read from the payload. */
struct alert_fields {
        const char *id, *message, *entity, *status, *priority;
        char priority_buf[4];
        int64_t updated, created;
};

static int read_fields(json_t *doc, int64_t received_us, struct alert_fields *f,
                       struct error *err) {
        json_t *alert;
        int r;

        if ((r = normalize_container(doc, "alert", JSON_OBJECT, &alert, err)) < 0)
                return r;
        if (!alert)
                return error_set(err, EBADMSG, "invalid_payload", "alert", "Missing alert");
        if ((r = normalize_string(alert, "alertId", true, &f->id, err)) < 0 ||
            (r = normalize_string(alert, "message", false, &f->message, err)) < 0 ||
            (r = normalize_string(alert, "entity", false, &f->entity, err)) < 0 ||
            (r = normalize_string(alert, "status", false, &f->status, err)) < 0 ||
            (r = read_priority(alert, f->priority_buf, &f->priority, err)) < 0 ||
            (r = normalize_epoch(alert, "updatedAt", false, &f->updated, err)) < 0 ||
            (r = normalize_epoch(alert, "createdAt", false, &f->created, err)) < 0)
                return r;
        if (f->updated == TIME_UNSET)
                f->updated = received_us;
        return 0;
}

static const char *status_of(enum effect effect) {
        return effect == RESOLVED ? "resolved" : effect == DELETED ? "deleted" : "open";
}

static int normalize(json_t *doc, const char *event, int64_t received_us,
                     const struct normalize_options *o, struct event_list *out,
                     struct error *err) {
        enum effect effect = effect_of(event);
        struct alert_fields f = { 0 };
        bool ok = true;
        struct event *e;
        int r;

        if (effect == IGNORED)
                return normalize_ignored(err, "Opsgenie action '%s' does not change an "
                                         "alert's state", event);
        if ((r = read_fields(doc, received_us, &f, err)) < 0)
                return r;
        if (effect == BY_STATUS && f.status && strcmp(f.status, "closed") == 0)
                return normalize_ignored(err, "the priority of closed alert %s changed: its "
                                         "row keeps the close's", f.id);
        e = event_list_add(out, EVENT_INCIDENT);
        if (!e)
                return -ENOMEM;
        e->incident.key = event_strdup(f.id, &ok);
        e->incident.service = normalize_service(o, f.entity && *f.entity ? f.entity
                                                                         : NO_ENTITY_SERVICE);
        ok &= e->incident.service != NULL;
        e->incident.title = event_strdup(f.message, &ok);
        e->incident.status = event_strdup(status_of(effect), &ok);
        e->incident.severity = event_strdup(f.priority, &ok);
        /* An alert first seen after its Create opened at its createdAt; the store keeps the
         * earliest opening it is given. */
        e->incident.opened_at = strcmp(event, "Create") != 0 && f.created != TIME_UNSET
                                ? f.created : f.updated;
        if (effect == RESOLVED)
                e->incident.resolved_at = f.updated;
        e->incident.updated_at = f.updated;
        return ok ? 1 : -ENOMEM;
}

#define OFF(f) offsetof(struct opsgenie_options, f)
static const struct confkey keys[] = {
        { "opsgenie_token", KEY_SECRET, NULL, OFF(token), 0, 0, NULL,
          "Opsgenie Webhook integration bearer / ?token= value(s)", CONFKEY_LIVE },
};
#undef OFF

const struct source source_opsgenie = {
        .name = "opsgenie",
        .secret_key = "opsgenie_token",
        SOURCE_KEYS(keys),
        SOURCE_OPTIONS(struct opsgenie_options),
        .auth_headers = { "Authorization" },
        .query_token = true,
        .challenge = "Bearer realm=\"doraloop\"",
        .verify = verify,
        .identify = identify,
        .normalize = normalize,
};
