/* list: comma-separated setting values ("production, prod", two secrets while rotating). */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* Calls fn on every item of list, trimmed of white space, skipping empty ones, and returns
 * how many it returned true for. Every item is visited whatever the answers, so callers
 * comparing secrets take the same time whichever one matches. list may be NULL. */
size_t list_visit(const char *list, bool (*fn)(const char *item, size_t len, const void *ctx),
                  const void *ctx);

/* Splits a comma-separated list s (NULL: empty) into buf, a copy it cuts up, and items,
 * trimmed of blanks, skipping empty ones. Returns the count (0 when empty), or
 * -E2BIG when it names more than max or does not fit buf: never a silent cut, which would
 * answer for fewer environments than were asked for. */
int list_split(const char *s, char *buf, size_t buf_len, const char **items, size_t max);
