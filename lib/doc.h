/* doc: parsing a webhook body with jansson, and typed lookups into the tree. */
#pragma once

#include <jansson.h>
#include <stddef.h>

struct error;

/* The default of max_json_elements: ~47x the largest real payload in tests/fixtures (the
 * 50-commit GitHub push, 1,072 values in 45 KB), more than 1 MiB of such JSON holds
 * (~24,000), and a worst-case tree (empty objects, ~224 bytes each in jansson) of ~11 MB. */
#define DOC_MAX_ELEMENTS_DEFAULT 50000

/* The number of JSON values in body (containers and scalars at any depth; object keys are
 * not values), counted by a scan of the text that stops once it passes stop_after. Exact
 * for any text jansson accepts; other text gets some count, and jansson refuses it anyway.
 * Pure, thread-safe. */
size_t doc_count_elements(const char *body, size_t len, size_t stop_after);

/* Parses body (len bytes) into a tree the caller owns (json_decref). Duplicate keys, invalid
 * UTF-8, NUL bytes, nesting deeper than jansson's limit and more than max_elements values
 * (0: DOC_MAX_ELEMENTS_DEFAULT; refused before jansson allocates anything, so the parse
 * costs at most max_elements values) are errors; the root must be an object. Returns 0, or
 * -EBADMSG with err->code "invalid_json" (err->field "max_json_elements" for the limit) or
 * "invalid_payload". Thread-safe. */
int doc_parse_bounded(const char *body, size_t len, size_t max_elements, json_t **ret_doc,
                      struct error *err) __attribute__((warn_unused_result));

/* doc_parse_bounded() with DOC_MAX_ELEMENTS_DEFAULT. */
int doc_parse(const char *body, size_t len, json_t **ret_doc, struct error *err)
        __attribute__((warn_unused_result));

/* The value at a dotted path ("build.scm.commit") below obj, or NULL; borrowed. */
json_t *doc_get(json_t *obj, const char *path);

/* The string at path, or NULL when absent or not a string; borrowed. */
const char *doc_string(json_t *obj, const char *path);

/* A new {"error":{"code":code,"message":...}} object the caller owns, or NULL on OOM. */
json_t *doc_error(const char *code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
