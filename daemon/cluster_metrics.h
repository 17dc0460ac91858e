/* cluster_metrics: the /metrics lines of a daemon among several on one database: the
 * transient failures retried (serialization, deadlock, a unique-key race), the listener
 * for other daemons' writes, and query_db's replica lag when it is a standby. */
#pragma once

#include "api.h"

struct buf;

/* Appends those lines to out. 0 or -ENOMEM; a standby that does not answer leaves its
 * gauge out. */
int cluster_metrics_write(const struct api *api, struct buf *out)
        __attribute__((warn_unused_result));
