/* jsontext: JSON text written straight into a buf, for an answer built on every request
 * (GET /api/v1/rca), where making and dumping a jansson tree cost more than the figures.
 * The text parses to what jansson's compact dump of the same values does. */
#pragma once

#include <stdint.h>

struct buf;

/* Each appends one JSON value; 0, -E2BIG or -ENOMEM (buf_append's). */

/* s (UTF-8) quoted, escaped as jansson escapes it: '"', '\\' and the control characters. */
int jsontext_string(struct buf *b, const char *s) __attribute__((warn_unused_result));

int jsontext_int(struct buf *b, int64_t v) __attribute__((warn_unused_result));

/* The decimal q / 10^places (places 1 to 18) as a real: its digits without trailing zeros,
 * but one after the point ("2.0"). It parses to the double nearest q / 10^places, which is
 * what (double) q / 1e<places> gives and jansson's dump of that prints. */
int jsontext_decimal(struct buf *b, int64_t q, int places) __attribute__((warn_unused_result));

/* A real as jansson prints one: 17 significant digits, ".0" added to an integer. */
int jsontext_real(struct buf *b, double v) __attribute__((warn_unused_result));
