/* stats: request counters and a latency histogram, as Prometheus text. */
#include "stats.h"

#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>

#include "../lib/buf.h"

/* By exact status, 100..599; anything else counts under 0 ("other"). */
static atomic_uint_fast64_t by_code[600];
static const double bounds[] = { 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                 0.5, 1, 2.5, 5, 10 };
#define N_BOUNDS (sizeof(bounds) / sizeof(bounds[0]))
static atomic_uint_fast64_t le[N_BOUNDS + 1];   /* per bucket (not cumulative); last is +Inf */
static atomic_uint_fast64_t sum_ns;

uint64_t stats_now_ns(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

void stats_request_done(unsigned status, uint64_t duration_ns) {
        double s = (double) duration_ns / 1e9;
        size_t i = 0;

        atomic_fetch_add_explicit(&by_code[status >= 100 && status < 600 ? status : 0], 1,
                                  memory_order_relaxed);
        while (i < N_BOUNDS && s > bounds[i])
                i++;
        atomic_fetch_add_explicit(&le[i], 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&sum_ns, duration_ns, memory_order_relaxed);
}

static int put(struct buf *out, const char *line) {
        return buf_puts(out, line);
}

int stats_write(struct buf *out) {
        char line[512];
        uint64_t cumulative = 0;
        int r;

        r = put(out, "# HELP doraloop_http_requests_total HTTP requests answered, by status.\n"
                     "# TYPE doraloop_http_requests_total counter\n");
        for (size_t i = 0; i < 600 && r == 0; i++) {
                uint64_t n = atomic_load(&by_code[i]);

                if (!n)
                        continue;
                if (i)
                        snprintf(line, sizeof(line),
                                 "doraloop_http_requests_total{code=\"%zu\"} %" PRIu64 "\n", i, n);
                else
                        snprintf(line, sizeof(line),
                                 "doraloop_http_requests_total{code=\"other\"} %" PRIu64 "\n", n);
                r = put(out, line);
        }
        if (r == 0)
                r = put(out, "# HELP doraloop_http_request_duration_seconds Time from a request's "
                             "headers to its completion.\n"
                             "# TYPE doraloop_http_request_duration_seconds histogram\n");
        for (size_t i = 0; i <= N_BOUNDS && r == 0; i++) {
                cumulative += atomic_load(&le[i]);
                if (i < N_BOUNDS)
                        snprintf(line, sizeof(line),
                                 "doraloop_http_request_duration_seconds_bucket{le=\"%g\"} %" PRIu64 "\n",
                                 bounds[i], cumulative);
                else
                        snprintf(line, sizeof(line),
                                 "doraloop_http_request_duration_seconds_bucket{le=\"+Inf\"} %" PRIu64 "\n"
                                 "doraloop_http_request_duration_seconds_sum %.9f\n"
                                 "doraloop_http_request_duration_seconds_count %" PRIu64 "\n",
                                 cumulative, (double) atomic_load(&sum_ns) / 1e9, cumulative);
                r = put(out, line);
        }
        return r;
}
