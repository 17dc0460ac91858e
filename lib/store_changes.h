/* store_changes: reading change-control records (change requests, their history, the
 * deployments they govern), as the store's rows (store.h's struct store_row), whose nested
 * arrays PostgreSQL aggregates. A struct store is one connection: one thread at a time. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "store.h"

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

/* One change request as one row: key, title, status, change_type, risk, services (JSON),
 * planned_start, planned_end, created_at, approved_at, updated_at (RFC 3339 or NULL),
 * auto_created, source, then its history (in the source's order), its deployments and the
 * incidents they caused (JSON arrays). row() is not called for an unknown key. Returns the
 * number of rows (1 or 0), -EIO or row()'s error. */
int store_change(struct store *s, const char *key, store_row_fn *row, void *ctx,
                 struct error *err) __attribute__((warn_unused_result));

struct change_filter {
        const char *service;    /* or NULL */
        const char *status;     /* or NULL */
        int64_t since_us;       /* updated at or after, or INT64_MIN */
        const char *after;      /* cursor: the last key of the previous page, or NULL */
        int limit;
};

/* The change requests matching f, in key order, as rows of store_change()'s columns
 * before its arrays: row() for the first f->limit. Returns how many matched, counting up to
 * f->limit + 1 (more than f->limit: there is a next page, after the last key given), -EIO
 * or row()'s error. */
int store_changes(struct store *s, const struct change_filter *f, store_row_fn *row, void *ctx,
                  struct error *err) __attribute__((warn_unused_result));
