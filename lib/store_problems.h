/* store_problems: the read queries behind problems (GET /api/v1/problems, /problems/{key}
 * and /metrics' doraloop_problems_open), over sql/functions/63_problems.sql. Same connection
 * rules as store.h: one thread at a time per struct store. */
#pragma once

#include "store.h"

struct error;
struct store;

/* The problems list, newest first: params are service, status (NULL: any), the cursor (an
 * id: those below it; NULL: from the newest) and the limit, as text. Calls row() with each
 * item. Returns the rows given, -EIO (err filled) or row()'s error. */
int store_problems(struct store *s, const char *const *params, store_row_fn *row, void *ctx,
                   struct error *err) __attribute__((warn_unused_result));

/* One problem by key (params: key, source or NULL for the first source holding it), with its
 * incidents, factors and history: row() is called once, or not at all when none is held. */
int store_problem(struct store *s, const char *const *params, store_row_fn *row, void *ctx,
                  struct error *err) __attribute__((warn_unused_result));

/* The open problems of each service that has any: row() gets (service, others,
 * known_errors), others being those that are not known errors. */
int store_problems_open(struct store *s, store_row_fn *row, void *ctx, struct error *err)
        __attribute__((warn_unused_result));
