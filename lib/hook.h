/* hook: a webhook request as received, independent of the HTTP library. */
#pragma once

#include <stddef.h>

struct hook_header {
        const char *name;
        const char *value;
};

/* Everything a source needs to verify and identify a delivery; all borrowed. */
struct hook_request {
        const char *body;               /* NUL-terminated after body_len bytes */
        size_t body_len;
        const struct hook_header *headers;
        size_t n_headers;
        const char *query_token;        /* ?token=..., or NULL */
};

/* The value of the first header named name (case-insensitive), or NULL. */
const char *hook_header(const struct hook_request *req, const char *name);
