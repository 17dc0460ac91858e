/* Unit tests for timefmt: the forms each source writes, offsets, fractions, leap seconds,
 * the accepted range, the calendar, and formatting back. */
#include "timefmt.h"

#include <errno.h>
#include <string.h>

#include "check.h"

#define S INT64_C(1000000)

static int64_t parsed(const char *s) {
        int64_t us = TIME_UNSET;

        return timefmt_parse(s, &us) == 0 ? us : TIME_UNSET;
}

static const char *formatted(int64_t us) {
        static char buf[TIMEFMT_LEN];

        return timefmt_format(us, buf);
}

int main(void) {
        const int64_t t = INT64_C(1715000000) * S;     /* 2024-05-06T12:53:20Z */
        int64_t us;

        /* The forms sources write: RFC 3339 with Z or an offset, GitLab's spaces and UTC,
         * "+HHMM", fractions of any length, no offset (UTC). */
        CHECK(parsed("2024-05-06T12:53:20Z") == t);
        CHECK(parsed("2024-05-06t12:53:20z") == t);
        CHECK(parsed("2024-05-06T14:53:20+02:00") == t);
        CHECK(parsed("2024-05-06T07:53:20-05:00") == t);
        CHECK(parsed("2024-05-06 14:53:20 +0200") == t);
        CHECK(parsed("2024-05-06 12:53:20 UTC") == t);
        CHECK(parsed("2024-05-06T12:53:20") == t);
        CHECK(parsed("2024-05-06T12:53:20.5Z") == t + S / 2);
        CHECK(parsed("2024-05-06T12:53:20,25Z") == t + S / 4);
        CHECK(parsed("2024-05-06T12:53:20.123456789Z") == t + 123456);  /* past us: dropped */
        /* A leap second is the last second of its minute. */
        CHECK(parsed("2016-12-31T23:59:60Z") == parsed("2016-12-31T23:59:59Z"));

        /* Not times: -EINVAL. */
        CHECK(timefmt_parse("2024-05-06", &us) == -EINVAL);
        CHECK(timefmt_parse("2024-5-06T12:53:20Z", &us) == -EINVAL);
        CHECK(timefmt_parse("2024-05-06T12:53:20.Z", &us) == -EINVAL);
        CHECK(timefmt_parse("2024-05-06T12:53:20Zjunk", &us) == -EINVAL);
        CHECK(timefmt_parse("2024-13-01T00:00:00Z", &us) == -EINVAL);
        CHECK(timefmt_parse("2023-02-29T00:00:00Z", &us) == -EINVAL);
        CHECK(timefmt_parse("2024-02-29T24:00:00Z", &us) == -EINVAL);
        CHECK(timefmt_parse("2024-02-29T23:60:00Z", &us) == -EINVAL);
        CHECK(timefmt_parse("2024-02-29T23:00:00+24:00", &us) == -EINVAL);
        CHECK(timefmt_parse("", &us) == -EINVAL);
        CHECK(timefmt_parse(NULL, &us) == -EINVAL);
        CHECK(parsed("2024-02-29T23:00:00Z") != TIME_UNSET);            /* a leap day */
        CHECK(parsed("2000-02-29T00:00:00Z") != TIME_UNSET);
        CHECK(timefmt_parse("1900-02-29T00:00:00Z", &us) == -EINVAL);   /* not leap */

        /* The range, both ends included; outside it -ERANGE, and *ret untouched. */
        CHECK(parsed("1970-01-01T00:00:00Z") == TIMEFMT_MIN_US);
        CHECK(parsed("2100-01-01T00:00:00Z") == TIMEFMT_MAX_US);
        us = 42;
        CHECK(timefmt_parse("1969-12-31T23:59:59Z", &us) == -ERANGE && us == 42);
        CHECK(timefmt_parse("2100-01-01T00:00:00.000001Z", &us) == -ERANGE);
        CHECK(timefmt_parse("1970-01-01T00:00:00+00:01", &us) == -ERANGE);
        CHECK(timefmt_parse("0001-01-01T00:00:00Z", &us) == -ERANGE);   /* Go's zero time */
        CHECK(timefmt_parse("9999-12-31T23:59:59Z", &us) == -ERANGE);
        CHECK(timefmt_in_range(0) && !timefmt_in_range(-1) && !timefmt_in_range(TIME_UNSET));

        /* The calendar: known day numbers. */
        CHECK(timefmt_days_from_civil(1970, 1, 1) == 0);
        CHECK(timefmt_days_from_civil(2000, 3, 1) == 11017);
        CHECK(timefmt_days_from_civil(1969, 12, 31) == -1);

        /* Formatting: a fraction only when there is one; and back again. */
        CHECK_STR(formatted(t), "2024-05-06T12:53:20Z");
        CHECK_STR(formatted(t + 1), "2024-05-06T12:53:20.000001Z");
        CHECK_STR(formatted(0), "1970-01-01T00:00:00Z");
        CHECK_STR(formatted(TIMEFMT_MAX_US), "2100-01-01T00:00:00Z");
        CHECK_STR(formatted(-1), "1969-12-31T23:59:59.999999Z");
        CHECK(strlen(formatted(INT64_MAX)) < TIMEFMT_LEN);
        CHECK(strlen(formatted(INT64_MIN + 1)) < TIMEFMT_LEN);
        {
                int bad = 0;

                for (int64_t x = 0; x < TIMEFMT_MAX_US; x += INT64_C(86399) * S + 777)
                        bad += parsed(formatted(x)) != x;
                CHECK(bad == 0);
        }
        return check_summary();
}
