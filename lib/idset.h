/* idset: a set of (source, delivery id) pairs, to answer "duplicate" for deliveries that
 * wait in the spool, where PostgreSQL's unique index cannot see them yet. Not thread-safe. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

struct idset;

struct idset *idset_new(void);

/* NULL-safe; returns NULL. */
struct idset *idset_free(struct idset *s);

/* Adds the pair; returns 1 if added, 0 if it was there, -ENOMEM. */
int idset_add(struct idset *s, const char *source, const char *id)
        __attribute__((warn_unused_result));

/* Removes the pair if present. */
void idset_remove(struct idset *s, const char *source, const char *id);

bool idset_contains(const struct idset *s, const char *source, const char *id);

void idset_clear(struct idset *s);

size_t idset_size(const struct idset *s);
