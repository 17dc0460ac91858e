/* store_review: reading the review's agenda (sql/functions/78_review.sql's dl_review) as
 * JSON text. A struct store is one connection: one thread at a time. */
#pragma once

#include <stdint.h>

struct error;
struct store;

/* The agenda of [from_us, to_us) for service (NULL: every service with something to
 * discuss), counting deployments to envs (a comma-separated list), as malloc'd JSON text
 * {"services":[...]} the caller frees. Returns 0, -ENOMEM or -EIO. */
int store_review(struct store *s, const char *service, int64_t from_us, int64_t to_us,
                 const char *envs, char **ret_json, struct error *err)
        __attribute__((warn_unused_result));
