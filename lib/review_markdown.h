/* review_markdown: GET /api/v1/review's agenda (its JSON answer) as Markdown to paste into
 * a wiki or a chat: a heading per service, a table per list, in the answer's order, times
 * as RFC 3339 UTC exactly as the JSON gives them (so a test can mask them), and every
 * text from a webhook escaped so that it stays one table cell. docs/review.md shows it. */
#pragma once

#include <jansson.h>

struct buf;

/* Appends the Markdown of doc (the review's JSON answer) to out. Pure; thread-safe.
 * Returns 0, -E2BIG when out's bound is reached, or -ENOMEM. */
int review_markdown(const json_t *doc, struct buf *out) __attribute__((warn_unused_result));
