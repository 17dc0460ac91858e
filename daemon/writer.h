/* writer: the ingest queue and the writer threads behind it. Each writer takes every
 * delivery waiting (up to batch_max), stores them in one transaction (group commit) and
 * only after COMMIT calls each delivery's done(). */
#pragma once

#include <stddef.h>
#include <stdint.h>

struct delivery;
struct writer;

struct writer_options {
        const char *conninfo;
        const char *production_environments;
        long incident_link_window_hours;
        int threads;
        size_t batch_max;
        size_t queue_max;
};

struct writer_stats {
        uint64_t stored, duplicates, failed, batches;
        size_t queued;
};

/* Starts the writer threads. Returns 0 and the writer, or a negative errno. */
int writer_start(const struct writer_options *o, struct writer **ret_writer)
        __attribute__((warn_unused_result));

/* Queues d (borrowed until its done() runs). Returns 0, -EAGAIN when the queue is full, or
 * -ESHUTDOWN once stopping; on error done() is not called. Thread-safe. */
int writer_submit(struct writer *w, struct delivery *d) __attribute__((warn_unused_result));

/* Stores everything queued, then joins the threads and frees the writer. NULL-safe. */
struct writer *writer_stop(struct writer *w);

/* The oldest heartbeat among the writer threads, in CLOCK_MONOTONIC microseconds. A writer
 * beats every time it goes round its loop, and at least once a second while idle, so an
 * old heartbeat means a writer is stuck (a database call, not the database itself, is
 * bounded by statement timeouts). Thread-safe. */
int64_t writer_heartbeat(struct writer *w);

/* A snapshot of the counters. Thread-safe. */
void writer_get_stats(struct writer *w, struct writer_stats *ret_stats);
