/* timefmt: RFC 3339 timestamps <-> microseconds since the Unix epoch, UTC, locale-free. */
#include "timefmt.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* Howard Hinnant's days_from_civil: exact for every proleptic Gregorian date. */
int64_t timefmt_days_from_civil(int64_t y, unsigned m, unsigned d) {
        int64_t era;
        unsigned yoe, doy, doe;

        y -= m <= 2;
        era = (y >= 0 ? y : y - 399) / 400;
        yoe = (unsigned) (y - era * 400);
        doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
        doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        return era * 146097 + (int64_t) doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d) {
        int64_t era;
        unsigned doe, yoe, doy, mp;

        z += 719468;
        era = (z >= 0 ? z : z - 146096) / 146097;
        doe = (unsigned) (z - era * 146097);
        yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
        doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        mp = (5 * doy + 2) / 153;
        *d = doy - (153 * mp + 2) / 5 + 1;
        *m = mp < 10 ? mp + 3 : mp - 9;
        *y = (int64_t) yoe + era * 400 + (*m <= 2);
}

static bool digits(const char **p, int n, int *ret) {
        int v = 0;

        for (int i = 0; i < n; i++) {
                char c = (*p)[i];

                if (c < '0' || c > '9')
                        return false;
                v = v * 10 + (c - '0');
        }
        *p += n;
        *ret = v;
        return true;
}

static unsigned days_in_month(int y, int m) {
        static const unsigned dim[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
        bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

        return m == 2 && leap ? 29 : dim[m - 1];
}

int timefmt_parse(const char *s, int64_t *ret_us) {
        const char *p = s;
        int y, mo, d, h, mi, sec, oh = 0, om = 0, sign = 0;
        int64_t frac = 0, scale = 1000000, us;

        if (!s || !digits(&p, 4, &y) || *p++ != '-' || !digits(&p, 2, &mo) || *p++ != '-' ||
            !digits(&p, 2, &d))
                return -EINVAL;
        if (*p != 'T' && *p != 't' && *p != ' ')
                return -EINVAL;
        p++;
        if (!digits(&p, 2, &h) || *p++ != ':' || !digits(&p, 2, &mi) || *p++ != ':' ||
            !digits(&p, 2, &sec))
                return -EINVAL;
        if (*p == '.' || *p == ',') {
                p++;
                if (*p < '0' || *p > '9')
                        return -EINVAL;
                while (*p >= '0' && *p <= '9') {
                        if (scale > 1) {
                                scale /= 10;
                                frac += (*p - '0') * scale;
                        }
                        p++;
                }
        }
        if (*p == ' ')
                p++;
        if (*p == 'Z' || *p == 'z') {
                p++;
        } else if (strncmp(p, "UTC", 3) == 0) {
                p += 3; /* GitLab: "2016-08-12 15:23:28 UTC" */
        } else if (*p == '+' || *p == '-') {
                sign = *p++ == '-' ? -1 : 1;
                if (!digits(&p, 2, &oh))
                        return -EINVAL;
                if (*p == ':')
                        p++;
                if (!digits(&p, 2, &om))
                        return -EINVAL;
        }
        if (*p || mo < 1 || mo > 12 || d < 1 || (unsigned) d > days_in_month(y, mo) || h > 23 ||
            mi > 59 || sec > 60 || oh > 23 || om > 59)
                return -EINVAL;
        if (sec == 60)
                sec = 59; /* a leap second is the last second of its minute */
        us = ((timefmt_days_from_civil(y, (unsigned) mo, (unsigned) d) * 86400 + h * 3600 +
               mi * 60 + sec - sign * (oh * 3600 + om * 60)) * 1000000) + frac;
        if (!timefmt_in_range(us))
                return -ERANGE;
        *ret_us = us;
        return 0;
}

/* a / b and a mod b rounded down (b > 0), for any a: no negation that could overflow. */
static int64_t floor_div(int64_t a, int64_t b) {
        return a / b - (a % b < 0);
}

static int64_t floor_mod(int64_t a, int64_t b) {
        return a % b + (a % b < 0 ? b : 0);
}

char *timefmt_format(int64_t us, char buf[TIMEFMT_LEN]) {
        int64_t secs = floor_div(us, 1000000), frac = floor_mod(us, 1000000);
        int64_t days = floor_div(secs, 86400), rem = floor_mod(secs, 86400), y;
        unsigned m, d;

        civil_from_days(days, &y, &m, &d);
        if (frac)
                snprintf(buf, TIMEFMT_LEN, "%04lld-%02u-%02uT%02d:%02d:%02d.%06dZ", (long long) y,
                         m % 13, d % 32, (int) (rem / 3600), (int) (rem / 60 % 60), (int) (rem % 60),
                         (int) (frac % 1000000));
        else
                snprintf(buf, TIMEFMT_LEN, "%04lld-%02u-%02uT%02d:%02d:%02dZ", (long long) y,
                         m % 13, d % 32, (int) (rem / 3600), (int) (rem / 60 % 60), (int) (rem % 60));
        return buf;
}
