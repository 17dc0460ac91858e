/* readpool: a few threads of their own that answer reads (the read API, /metrics), so that
 * a heavy read never holds an HTTP thread, each of which libmicrohttpd binds connections
 * (webhooks among them) to. A bounded queue in front; the threads run below the priority of
 * the rest of the process, so intake and the writers come first. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* A job the caller owns and keeps alive until run() has returned. */
struct readpool_job {
        struct readpool_job *next;      /* the pool's */
        /* Called once on a pool thread; stopping: the pool is shutting down, answer
         * without doing the work. */
        void (*run)(struct readpool_job *job, bool stopping);
};

struct readpool;

/* Starts threads threads with room for queue_max waiting jobs. Returns 0 and *ret_pool, or
 * a negative errno. */
int readpool_new(unsigned threads, size_t queue_max, struct readpool **ret_pool)
        __attribute__((warn_unused_result));

/* Queues job. Returns 0; -EAGAIN when queue_max jobs wait; -ESHUTDOWN once stopping.
 * Thread-safe. */
int readpool_submit(struct readpool *p, struct readpool_job *job)
        __attribute__((warn_unused_result));

/* Runs every queued job with stopping = true, waits for the running ones and joins the
 * threads. NULL-safe; returns NULL. */
struct readpool *readpool_free(struct readpool *p);
