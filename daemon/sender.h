/* sender: delivers every accepted insight's queued versions to the configured
 * product-discovery targets (API.md, "Delivery to product discovery"; daemon/target.h), on
 * a thread and a database connection of its own, so ingestion never waits for a target.
 * Each round claims one due export (sql/functions/71_outbox.sql: several daemons share the
 * outbox, and one export is attempted by one of them at a time), sends it and records the
 * outcome: delivered on a 2xx; retried after min(3600, 2^(attempts-1)) s, jittered into
 * [half, whole], on no answer, 408, 429 and 5xx; failing on any other status until a
 * reload. At least once: a daemon killed mid-attempt leaves the export pending, and its
 * Idempotency-Key (<id>/<version>) is the same on every attempt. */
#pragma once

#include "api.h"

struct buf;
struct config_live;
struct sender;

/* Starts the sender on conninfo (copied), reading the targets from live at every attempt.
 * Returns NULL on OOM or when the thread cannot start. */
struct sender *sender_start(const char *conninfo, struct config_live *live);

/* After a reload: registers the targets again and makes their failing exports due. */
void sender_reload(struct sender *s);

/* Stops the thread (abandoning an attempt under way: it stays pending) and frees it;
 * NULL-safe, returns NULL. */
struct sender *sender_stop(struct sender *s);

/* /metrics: doraloop_outbox_pending{target} from the database (query_db), and this process's
 * doraloop_outbox_attempts_total{target} and doraloop_outbox_failures_total{target}.
 * Returns 0, -EIO or -ENOMEM (err filled). */
int sender_metrics(const struct api *api, struct buf *out, struct error *err);
