/* retention: the hourly upkeep of events_raw's monthly partitions, on a thread and a
 * database connection of its own: the months ahead are created, a month whose rows wait
 * in the default partition gets its own, and with raw_retention_days the months past it
 * are dropped (one log line each, naming the month and its deliveries). */
#pragma once

struct retention;

/* Starts the upkeep, connecting with conninfo (copied); it runs at once, then hourly.
 * keep_days 0 keeps every month. Returns NULL on OOM or when the thread cannot start. */
struct retention *retention_start(const char *conninfo, long keep_days);

/* Stops the thread (after the call under way, if any) and frees r; NULL-safe, returns
 * NULL. */
struct retention *retention_stop(struct retention *r);
