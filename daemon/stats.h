/* stats: the daemon's own request counters and latency histogram, for GET /metrics.
 * Lock-free (atomics); every function is thread-safe. */
#pragma once

#include <stdint.h>

struct buf;

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t stats_now_ns(void);

/* Counts one answered request: its HTTP status and how long it took from its first byte
 * of headers to its completion. */
void stats_request_done(unsigned status, uint64_t duration_ns);

/* Appends the counters in Prometheus text format (with HELP and TYPE lines). Returns 0 or
 * buf_append()'s error. */
int stats_write(struct buf *out) __attribute__((warn_unused_result));
