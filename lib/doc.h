/* doc: parsing a webhook body with jansson, and typed lookups into the tree. */
#pragma once

#include <jansson.h>
#include <stddef.h>

struct error;

/* Parses body (len bytes) into a tree the caller owns (json_decref). Duplicate keys, invalid
 * UTF-8, NUL bytes and nesting deeper than jansson's limit are errors; the root must be an
 * object. Returns 0, or -EBADMSG with err->code "invalid_json" or "invalid_payload". */
int doc_parse(const char *body, size_t len, json_t **ret_doc, struct error *err)
        __attribute__((warn_unused_result));

/* The value at a dotted path ("build.scm.commit") below obj, or NULL; borrowed. */
json_t *doc_get(json_t *obj, const char *path);

/* The string at path, or NULL when absent or not a string; borrowed. */
const char *doc_string(json_t *obj, const char *path);

/* A new {"error":{"code":code,"message":...}} object the caller owns, or NULL on OOM. */
json_t *doc_error(const char *code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
