/* source: the registry of webhook sources. A source is one file in lib/sources/ exporting a
 * `const struct source` and one line in lib/sources/registry.h; everything about it lives
 * in that file: its wire format, its configuration keys with their defaults and validators,
 * the struct those keys fill, and what its deliveries mean. The config table, --help, the
 * generated key docs, the fuzz targets and the tests all read the registry. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "confkey.h"

struct error;
struct event_list;
struct hook_request;
struct normalize_options;

/* Longest delivery id or event name we store; longer ones are refused as invalid_payload. */
#define SOURCE_ID_MAX 255

/* The most headers a source reads its credentials from. */
#define SOURCE_AUTH_HEADERS_MAX 2

/* The most sources registered, and the largest options struct of one. */
#define SOURCE_MAX 16
#define SOURCE_OPTIONS_MAX 256

/* In a struct source: its keys (a static array) and the struct they fill, checked to fit. */
#define SOURCE_KEYS(array) .keys = (array), .n_keys = sizeof(array) / sizeof((array)[0])
#define SOURCE_OPTIONS(type) \
        .options_size = sizeof(type) + 0 * sizeof(char[sizeof(type) <= SOURCE_OPTIONS_MAX ? 1 : -1])

struct source {
        const char *name;       /* the route: POST /hooks/<name> */
        const char *secret_key; /* the config key holding its secret(s), one of keys[] */

        /* Its configuration keys, offsets into its options struct of options_size bytes:
         * the secret first, then its settings. The config gives normalize() that struct
         * filled (source_options()); a string there is a const char *, never NULL for a
         * KEY_STRING key. */
        const struct confkey *keys;
        size_t n_keys;
        size_t options_size;

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

/* The NULL-terminated table of every source, in lib/sources/registry.h's order. */
extern const struct source *const source_table[];

/* How many sources source_table holds (at most SOURCE_MAX). */
size_t source_count(void);

/* Writes every source's name into buf (size > 0), in registry order, sep between them;
 * cut short, never overrun, when buf is too small. */
void source_names(char *buf, size_t size, const char *sep);

/* The position of s in source_table (s must be registered). */
size_t source_index(const struct source *s);

/* The options struct of s in o (o->sources[source_index(s)]), or its defaults when o holds
 * none. Never NULL; borrowed. */
const void *source_options(const struct normalize_options *o, const struct source *s);

/* The defaults of source i's options struct, built once from its keys' rows. */
const void *source_defaults(size_t i);

/* Helpers for identify(): each returns 0 and a malloc'd string, -EBADMSG or -ENOMEM. */

/* Copies s after checking it is 1..SOURCE_ID_MAX printable ASCII characters; what names the
 * value in error messages. A NULL s is a missing value. */
int source_copy_id(const char *s, const char *what, char **ret, struct error *err)
        __attribute__((warn_unused_result));

/* What most identify()s do: the delivery id id (what names it; when id is NULL and or_body,
 * the body's SHA-256 instead) and the event type event (named event_what), each checked as
 * source_copy_id() does. On failure neither is left allocated. */
int source_identify(const struct hook_request *req, const char *id, const char *what,
                    bool or_body, const char *event, const char *event_what,
                    char **ret_delivery_id, char **ret_event, struct error *err)
        __attribute__((warn_unused_result));

/* The lower-case hex SHA-256 of the body: the delivery id of sources that send none. */
int source_body_id(const struct hook_request *req, char **ret, struct error *err)
        __attribute__((warn_unused_result));
