/* cluster_metrics: retries, the listener and the replica lag, in Prometheus' text. */
#include "cluster_metrics.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>

#include "../lib/buf.h"
#include "../lib/error.h"
#include "../lib/store.h"
#include "health.h"
#include "notify.h"

int cluster_metrics_write(const struct api *api, struct buf *out) {
        struct store_retries rt;
        struct health_standby hs;
        struct error err = { 0 };
        char text[1600];
        int n;

        store_retries(&rt);
        n = snprintf(text, sizeof(text),
                     "# HELP doraloop_db_retries_total Statements PostgreSQL failed for a "
                     "transient reason, each tried again.\n"
                     "# TYPE doraloop_db_retries_total counter\n"
                     "doraloop_db_retries_total{reason=\"serialization\"} %" PRIu64 "\n"
                     "doraloop_db_retries_total{reason=\"deadlock\"} %" PRIu64 "\n"
                     "doraloop_db_retries_total{reason=\"unique_violation\"} %" PRIu64 "\n"
                     "# HELP doraloop_notify_listening Whether LISTEN for other daemons' "
                     "writes is in place (else they show at the next poll).\n"
                     "# TYPE doraloop_notify_listening gauge\n"
                     "doraloop_notify_listening %d\n"
                     "# HELP doraloop_notify_received_total Notifications that rows changed.\n"
                     "# TYPE doraloop_notify_received_total counter\n"
                     "doraloop_notify_received_total %" PRIu64 "\n",
                     rt.serialization, rt.deadlock, rt.unique,
                     notify_listening(api->notify) ? 1 : 0, notify_received(api->notify));
        if (health_standby(api, &hs, &err) == 0 && hs.standby)
                (void) snprintf(text + n, sizeof(text) - (size_t) n,
                                "# HELP doraloop_replica_lag_seconds How far query_db, a "
                                "standby, is behind the primary: the figures' freshness.\n"
                                "# TYPE doraloop_replica_lag_seconds gauge\n"
                                "doraloop_replica_lag_seconds %.3f\n", hs.lag_s);
        return buf_puts(out, text) < 0 ? -ENOMEM : 0;
}
