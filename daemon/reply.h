/* reply: the one table from a handler's negative errno to its HTTP status, the JSON error
 * body made from a struct error, and the two failures every handler shares. */
#pragma once

#include <jansson.h>

struct error;

/* What a handler returns besides 0 (200) and a negative errno: it started a job (202), or
 * its 200 answer is the text of the JSON string in its body: Markdown (GET /api/v1/review),
 * or JSON it wrote as text itself (GET /api/v1/rca). */
#define REPLY_ACCEPTED 1
#define REPLY_MARKDOWN 2
#define REPLY_JSON_TEXT 3

/* The HTTP status of a handler's result r: 0, REPLY_MARKDOWN and REPLY_JSON_TEXT 200,
 * REPLY_ACCEPTED 202,
 * -EBADMSG 400, -EACCES 401, -ENOENT 404, -EOPNOTSUPP 405, -EBUSY 409, -E2BIG 413, -EMEDIUMTYPE 415,
 * -ENOSYS 501, anything else (-EAGAIN, -EIO, -ENOMEM, -ESHUTDOWN) 503. Pure. */
unsigned reply_status(int r);

/* {"error":{"code":..,"message":..}} from err (code "unavailable" and "Out of memory" where
 * err holds none); a new document the caller owns, NULL only on OOM. */
json_t *reply_error_body(const struct error *err);

/* -ENOMEM (503) "Out of memory" in err. */
int reply_oom(struct error *err);

/* -EIO (503) with cause's message (cause may be err itself), logged as a failure to answer
 * what (e.g. "a deployment list"): the database or memory failed, not the client. */
int reply_unavailable(struct error *err, const struct error *cause, const char *what);
