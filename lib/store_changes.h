/* store_changes: reading change-control records (change requests, their history, the
 * deployments they govern). Answers are JSON text built by PostgreSQL, so no row shape
 * is repeated in C. A struct store is one connection: one thread at a time. */
#pragma once

#include <stddef.h>
#include <stdint.h>

struct error;
struct store;

/* A change request as the gate needs it. Strings point into *ret_owned, which the caller
 * frees (one allocation); services into *ret_services (also the caller's). */
struct store_change_brief {
        int found;
        char *status;
        int64_t planned_start, planned_end;
        char **services;
        size_t n_services;
};

/* Loads one change request's brief. Returns 0 (found or not) or -EIO. Free with
 * store_change_brief_free(). */
int store_change_brief(struct store *s, const char *key, struct store_change_brief *ret,
                       struct error *err) __attribute__((warn_unused_result));

void store_change_brief_free(struct store_change_brief *b);

/* One change request with its history (in the source's order), its deployments and the
 * incidents they caused, as a JSON object text (malloc'd), or NULL text when unknown.
 * Returns 0 or -EIO. */
int store_change_json(struct store *s, const char *key, char **ret_json, struct error *err)
        __attribute__((warn_unused_result));

struct change_filter {
        const char *service;    /* or NULL */
        const char *status;     /* or NULL */
        int64_t since_us;       /* updated at or after, or INT64_MIN */
        const char *after;      /* cursor: the last key of the previous page, or NULL */
        int limit;
};

/* The change requests matching f, in key order (the cursor is the last key), as
 * {"items":[...],"next_cursor":...} text (malloc'd). Returns 0 or -EIO. */
int store_changes_json(struct store *s, const struct change_filter *f, char **ret_json,
                       struct error *err) __attribute__((warn_unused_result));
