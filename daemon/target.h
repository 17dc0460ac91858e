/* target: a product-discovery tool accepted insights are delivered to (API.md, "Delivery to
 * product discovery"): the signed webhook (target_webhook.c), Jira Product Discovery
 * (target_jpd.c) and Productboard (target_productboard.c). A target builds its request from
 * the queued API item and reads the id the tool gave it from the answer; the sender
 * (sender.c) decides from the status what becomes of the export. */
#pragma once

#include <jansson.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "outbound.h"

struct config;

#define TARGET_ID_MAX 256
#define TARGET_URL_MAX 1024

/* One version of an insight to deliver. */
struct target_export {
        const char *insight_id;
        int version;
        json_t *item;                   /* its API item as queued, borrowed */
        const char *known_id;           /* an earlier version's id at this target, or NULL */
        const char *link;               /* the insight in doraloop (public_url) */
        const char *idempotency_key;    /* "<id>/<version>", safe in a header */
};

struct target_result {
        struct outbound_answer answer;  /* the caller frees it */
        char external_id[TARGET_ID_MAX];        /* from a 2xx answer; empty: none */
        char external_url[TARGET_URL_MAX];
};

struct target {
        const char *name;               /* outbox_targets.name */
        bool (*configured)(const struct config *cfg);
        /* Sends e under cfg. Returns 0 when an answer came (any status), else -EIO (none:
         * ret->answer.error says why) or -ENOMEM. */
        int (*send)(const struct config *cfg, const struct target_export *e, atomic_bool *stop,
                    struct target_result *ret);
};

extern const struct target target_webhook, target_jpd, target_productboard;

/* What the targets share (target.c). */

/* POSTs body (compact JSON) to url with Content-Type, Accept, Idempotency-Key, and the
 * extra header line auth when not NULL (or basic auth userpwd). Returns as send() does. */
int target_post_json(const struct config *cfg, const struct target_export *e, const char *url,
                     json_t *body, const char *auth, const char *userpwd, atomic_bool *stop,
                     struct target_result *ret);

/* "Score 12.0 = impact 4.0 h x (1 + log2 reach 1) x confidence 1.0 x (1 + recurrence 2)"
 * of item into buf. */
void target_score_line(json_t *item, char *buf, size_t len);

/* "incidents: I-1, I-2" for the evidence kind (an array of ids) into buf; empty when the
 * item names none of that kind. */
void target_evidence_line(json_t *item, const char *kind, char *buf, size_t len);

/* The string member key of the object at path "data" (or obj itself when path is NULL) of
 * a JSON answer, copied into buf (empty when absent). */
void target_answer_string(const char *body, const char *path, const char *key, char *buf,
                          size_t len);
