/* timefmt: RFC 3339 / ISO 8601 timestamps <-> microseconds since the Unix epoch, in UTC,
 * locale-free and without the C library's time zone state. Thread-safe. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define TIME_UNSET INT64_MIN
#define TIMEFMT_LEN 64  /* room for any int64 time; common ones take 28 bytes */

/* Parses "YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM)" (also with ' ' for 'T', and
 * "+HHMM" or " +0200" as GitLab writes it; a date-time with no offset is UTC).
 * Returns 0 and *ret_us, or -EINVAL. */
int timefmt_parse(const char *s, int64_t *ret_us) __attribute__((warn_unused_result));

/* Writes "YYYY-MM-DDTHH:MM:SS[.ffffff]Z" (fraction only when non-zero). Returns buf. */
char *timefmt_format(int64_t us, char buf[TIMEFMT_LEN]);

/* Days since 1970-01-01 of a civil date (proleptic Gregorian). */
int64_t timefmt_days_from_civil(int64_t y, unsigned m, unsigned d);
