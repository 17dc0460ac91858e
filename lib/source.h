/* source: the table of webhook sources. A source is one file in lib/sources/ exporting a
 * `const struct source`; everything about its wire format lives there. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

struct error;
struct event_list;
struct hook_request;
struct normalize_options;

/* Longest delivery id or event name we store; longer ones are refused as invalid_payload. */
#define SOURCE_ID_MAX 255

/* The most headers a source reads its credentials from. */
#define SOURCE_AUTH_HEADERS_MAX 2

struct source {
        const char *name;       /* the route: POST /hooks/<name> */
        const char *secret_key; /* the config key holding its secret(s) */

        /* What daemon/http.c checks from the headers alone, before it reads the body. */
        const char *auth_headers[SOURCE_AUTH_HEADERS_MAX + 1]; /* NULL-terminated: where
                                         * the credentials travel; one of them (or ?token=
                                         * when query_token) must be there, each at most once */
        bool query_token;               /* ?token= may carry the credential instead; without
                                         * any auth header verify() then reads only it */
        bool verify_reads_body;         /* an HMAC: verify() needs the body. Otherwise it reads
                                         * headers and ?token= only and runs before the body */
        const char *event_header;       /* the header naming the event, or NULL when the body
                                         * does; when set it must hold a valid name */
        const char *challenge;          /* WWW-Authenticate of its 401 answers */

        /* Authenticates req against secrets (a comma-separated list of one or two).
         * Returns 0 or -EACCES (err->code: bad_signature, missing_signature, bad_token).
         * Runs before the body is parsed. Thread-safe. */
        int (*verify)(const struct hook_request *req, const char *secrets, struct error *err);

        /* Finds the delivery id and event type. doc is the parsed body (borrowed). On success
         * *ret_delivery_id and *ret_event are malloc'd strings the caller frees. Returns 0,
         * -EBADMSG (err->code invalid_payload) or -ENOMEM. Thread-safe. */
        int (*identify)(const struct hook_request *req, json_t *doc, char **ret_delivery_id,
                        char **ret_event, struct error *err);

        /* Appends the rows the delivery means to out (DESIGN.md's model: changes,
         * deployments, incidents, change requests). Returns the number of rows added (> 0),
         * 0 when the delivery is not used (err->msg says why: stored as "ignored"),
         * -EBADMSG when a field it uses is missing or of the wrong type (err->msg, stored as
         * "error"), or -ENOMEM. On failure out may hold partial rows; the caller clears it.
         * received_us is when the delivery arrived, for payloads that carry no time of
         * their own. Pure: no I/O, no clock. Thread-safe. */
        int (*normalize)(json_t *doc, const char *event, int64_t received_us,
                         const struct normalize_options *o, struct event_list *out,
                         struct error *err);
};

/* The source routed at /hooks/<name>, or NULL. */
const struct source *source_find(const char *name);

/* The NULL-terminated table of every source. */
extern const struct source *const source_table[];

/* Helpers for identify(): each returns 0 and a malloc'd string, -EBADMSG or -ENOMEM. */

/* Copies s after checking it is 1..SOURCE_ID_MAX printable ASCII characters; what names the
 * value in error messages. A NULL s is a missing value. */
int source_copy_id(const char *s, const char *what, char **ret, struct error *err)
        __attribute__((warn_unused_result));

/* The lower-case hex SHA-256 of the body: the delivery id of sources that send none. */
int source_body_id(const struct hook_request *req, char **ret, struct error *err)
        __attribute__((warn_unused_result));
