/* writer: the ingest queue and the writer threads behind it. Each writer takes every
 * delivery waiting (up to batch_max), stores them in one transaction (group commit) and
 * only after COMMIT calls each delivery's done(). When PostgreSQL cannot take a batch, it
 * goes to the on-disk spool instead (fsync'd before done()), and so do later batches while
 * the database stays away. Once it is back, every writer replays chunks of the spool
 * between its batches, and new batches go straight to the database (the upserts do not
 * depend on arrival order); a delivery whose id still waits in the spool is answered
 * "duplicate" from there. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../lib/normalize.h"

struct delivery;
struct writer;

struct writer_options {
        const char *conninfo;
        const char *production_environments;
        long incident_link_window_hours;
        const char *spool_dir;
        struct normalize_options normalize;     /* for spooled deliveries; strings borrowed */
        int threads;
        size_t batch_max;
        size_t queue_max;
};

struct writer_stats {
        uint64_t stored, duplicates, failed, batches;
        uint64_t spooled_total;         /* deliveries ever acknowledged from the spool */
        size_t queued;
        size_t spooled;                 /* deliveries in the spool now, not yet replayed */
};

/* Opens the spool (a spool left by a crash is replayed as soon as the database answers,
 * alongside new deliveries) and starts the writer threads. Returns 0 and the writer, or a negative errno
 * with errbuf filled. */
int writer_start(const struct writer_options *o, struct writer **ret_writer, char *errbuf,
                 size_t errlen) __attribute__((warn_unused_result));

/* Queues d (borrowed until its done() runs). Returns 0, -EAGAIN when the queue is full, or
 * -ESHUTDOWN once stopping; on error done() is not called. Thread-safe. */
int writer_submit(struct writer *w, struct delivery *d) __attribute__((warn_unused_result));

/* A wait for room in a full queue: fn() runs once, on a writer thread, after a batch was
 * taken from the queue (or when stopping). The caller owns it until then. */
struct writer_room {
        void (*fn)(struct writer_room *room);
        struct writer_room *next;
};

/* Registers room when the queue is full and returns true; returns false (room not
 * registered) when there is room already, so the caller submits again. Thread-safe. */
bool writer_wait_room(struct writer *w, struct writer_room *room);

/* Stores everything queued, then joins the threads and frees the writer. NULL-safe. */
struct writer *writer_stop(struct writer *w);

/* The oldest heartbeat among the writer threads, in CLOCK_MONOTONIC microseconds. A writer
 * beats every time it goes round its loop, and at least once a second while idle, so an
 * old heartbeat means a writer is stuck (a database call, not the database itself, is
 * bounded by statement timeouts). Thread-safe. */
int64_t writer_heartbeat(struct writer *w);

/* A snapshot of the counters. Thread-safe. */
void writer_get_stats(struct writer *w, struct writer_stats *ret_stats);
