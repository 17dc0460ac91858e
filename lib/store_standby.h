/* store_standby: whether a connection reads from a streaming standby, and how far behind
 * the primary it is. A struct store is one connection: one thread at a time. */
#pragma once

#include <stdbool.h>

struct error;
struct store;

/* *ret_standby: pg_is_in_recovery(). *ret_lag_s: on a standby, now() minus the time of
 * the last transaction replayed, or 0 once replay has caught up with what it received;
 * 0 on a primary. Returns 0 or -EIO. */
int store_standby_lag(struct store *s, bool *ret_standby, double *ret_lag_s, struct error *err)
        __attribute__((warn_unused_result));
