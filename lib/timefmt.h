/* timefmt: RFC 3339 / ISO 8601 timestamps <-> microseconds since the Unix epoch, in UTC,
 * locale-free and without the C library's time zone state. Thread-safe. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define TIME_UNSET INT64_MIN
#define TIMEFMT_LEN 64  /* room for any int64 time; common ones take 28 bytes */

/* The times accepted anywhere, both ends included: 1970-01-01T00:00:00Z to
 * 2100-01-01T00:00:00Z. A time outside it is a typo or an attack (a year-1 and a year-9999
 * event made one service span 3.65 million days), never a real deployment. */
#define TIMEFMT_MIN_US INT64_C(0)
#define TIMEFMT_MAX_US INT64_C(4102444800000000)
#define TIMEFMT_RANGE_TEXT "from 1970-01-01T00:00:00Z to 2100-01-01T00:00:00Z"

/* Whether us lies in [TIMEFMT_MIN_US, TIMEFMT_MAX_US]. */
static inline int timefmt_in_range(int64_t us) {
        return us >= TIMEFMT_MIN_US && us <= TIMEFMT_MAX_US;
}

/* Parses "YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM)" (also with ' ' for 'T', and
 * "+HHMM" or " +0200" as GitLab writes it; a date-time with no offset is UTC).
 * Returns 0 and *ret_us; -EINVAL when it is not such a time; -ERANGE when it is one
 * outside TIMEFMT_RANGE_TEXT. */
int timefmt_parse(const char *s, int64_t *ret_us) __attribute__((warn_unused_result));

/* Writes "YYYY-MM-DDTHH:MM:SS[.ffffff]Z" (fraction only when non-zero). Returns buf. */
char *timefmt_format(int64_t us, char buf[TIMEFMT_LEN]);

/* Days since 1970-01-01 of a civil date (proleptic Gregorian). */
int64_t timefmt_days_from_civil(int64_t y, unsigned m, unsigned d);
