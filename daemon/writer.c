/* writer: the ingest queue and the writer threads behind it (group commit). */
#include "writer.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../lib/delivery.h"
#include "../lib/error.h"
#include "../lib/store.h"
#include "log.h"

struct writer {
        struct writer_options opt;
        char *conninfo, *production;
        struct store_model model;

        pthread_mutex_t lock;
        pthread_cond_t nonempty;
        struct delivery *head, *tail;
        size_t queued;
        bool stopping;
        struct writer_stats stats;
        struct log_ratelimit db_down;

        int n_threads;
        struct writer_thread {
                pthread_t id;
                int64_t heartbeat;      /* CLOCK_MONOTONIC us; guarded by lock */
        } threads[];
};

struct writer_arg {
        struct writer *w;
        struct writer_thread *self;
};

static int64_t monotonic_us(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int writer_submit(struct writer *w, struct delivery *d) {
        int r = 0;

        pthread_mutex_lock(&w->lock);
        if (w->stopping)
                r = -ESHUTDOWN;
        else if (w->queued >= w->opt.queue_max)
                r = -EAGAIN;
        else {
                d->next = NULL;
                if (w->tail)
                        w->tail->next = d;
                else
                        w->head = d;
                w->tail = d;
                w->queued++;
                pthread_cond_signal(&w->nonempty);
        }
        pthread_mutex_unlock(&w->lock);
        return r;
}

/* Takes up to batch_max deliveries; blocks while the queue is empty, beating once a
 * second. Returns how many, or 0 when stopping with nothing left. */
static size_t take_batch(struct writer *w, struct writer_thread *self, struct delivery **batch) {
        size_t n = 0;

        pthread_mutex_lock(&w->lock);
        self->heartbeat = monotonic_us();
        while (!w->head && !w->stopping) {
                struct timespec deadline;

                clock_gettime(CLOCK_MONOTONIC, &deadline);
                deadline.tv_sec += 1;
                (void) pthread_cond_timedwait(&w->nonempty, &w->lock, &deadline);
                self->heartbeat = monotonic_us();
        }
        while (w->head && n < w->opt.batch_max) {
                batch[n++] = w->head;
                w->head = w->head->next;
        }
        if (!w->head)
                w->tail = NULL;
        w->queued -= n;
        pthread_mutex_unlock(&w->lock);
        return n;
}

static void log_db_failure(struct writer *w, const struct error *err, size_t n) {
        int suppressed;
        bool pass;

        pthread_mutex_lock(&w->lock);
        pass = log_ratelimit_pass(&w->db_down, &suppressed);
        pthread_mutex_unlock(&w->lock);
        if (pass)
                log_error("Failed to store %zu deliveries: %s%s", n, err->msg,
                          suppressed ? " (similar messages were suppressed)" : "");
}

static void *writer_main(void *arg) {
        struct writer *w = ((struct writer_arg *) arg)->w;
        struct writer_thread *self = ((struct writer_arg *) arg)->self;
        struct delivery **batch = calloc(w->opt.batch_max, sizeof(*batch));
        struct store *store = NULL;
        size_t n;

        free(arg);
        if (!batch)
                abort(); /* at start-up; nothing has been accepted yet */
        while ((n = take_batch(w, self, batch)) > 0) {
                struct error err = { 0 };
                int r = 0;

                if (!store_connected(store)) {
                        store = store_close(store);
                        r = store_open(w->conninfo, &store, &err);
                }
                if (r == 0)
                        r = store_save_batch(store, &w->model, batch, n, &err);
                if (r < 0) {
                        /* Drop the connection: it may be mid-transaction or broken. */
                        store = store_close(store);
                        log_db_failure(w, &err, n);
                }

                pthread_mutex_lock(&w->lock);
                w->stats.batches++;
                for (size_t i = 0; i < n; i++) {
                        if (r < 0)
                                w->stats.failed++;
                        else if (batch[i]->duplicate)
                                w->stats.duplicates++;
                        else
                                w->stats.stored++;
                }
                pthread_mutex_unlock(&w->lock);

                for (size_t i = 0; i < n; i++) {
                        batch[i]->result = r < 0 ? -EIO : 0;
                        batch[i]->done(batch[i]);
                }
        }
        store_close(store);
        free(batch);
        return NULL;
}

int writer_start(const struct writer_options *o, struct writer **ret_writer) {
        struct writer *w = calloc(1, sizeof(*w) + (size_t) o->threads * sizeof(w->threads[0]));
        pthread_condattr_t attr;

        if (!w)
                return -ENOMEM;
        w->opt = *o;
        w->conninfo = strdup(o->conninfo);
        w->production = strdup(o->production_environments ? o->production_environments : "");
        w->model = (struct store_model) { w->production, o->incident_link_window_hours };
        w->db_down = (struct log_ratelimit) LOG_RATELIMIT(10, 3);
        if (!w->conninfo || !w->production) {
                free(w->conninfo);
                free(w->production);
                free(w);
                return -ENOMEM;
        }
        pthread_mutex_init(&w->lock, NULL);
        pthread_condattr_init(&attr);
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
        pthread_cond_init(&w->nonempty, &attr);
        pthread_condattr_destroy(&attr);
        for (int i = 0; i < o->threads; i++) {
                struct writer_arg *arg = malloc(sizeof(*arg));
                int r;

                w->threads[i].heartbeat = monotonic_us();
                if (arg)
                        *arg = (struct writer_arg) { w, &w->threads[i] };
                r = arg ? pthread_create(&w->threads[i].id, NULL, writer_main, arg) : ENOMEM;
                if (r != 0) {
                        free(arg);
                        writer_stop(w);
                        return -r;
                }
                w->n_threads++;
        }
        *ret_writer = w;
        return 0;
}

struct writer *writer_stop(struct writer *w) {
        if (!w)
                return NULL;
        pthread_mutex_lock(&w->lock);
        w->stopping = true;
        pthread_cond_broadcast(&w->nonempty);
        pthread_mutex_unlock(&w->lock);
        for (int i = 0; i < w->n_threads; i++)
                pthread_join(w->threads[i].id, NULL);
        pthread_mutex_destroy(&w->lock);
        pthread_cond_destroy(&w->nonempty);
        free(w->conninfo);
        free(w->production);
        free(w);
        return NULL;
}

int64_t writer_heartbeat(struct writer *w) {
        int64_t oldest = INT64_MAX;

        pthread_mutex_lock(&w->lock);
        for (int i = 0; i < w->n_threads; i++)
                if (w->threads[i].heartbeat < oldest)
                        oldest = w->threads[i].heartbeat;
        pthread_mutex_unlock(&w->lock);
        return oldest;
}

void writer_get_stats(struct writer *w, struct writer_stats *ret_stats) {
        pthread_mutex_lock(&w->lock);
        *ret_stats = w->stats;
        ret_stats->queued = w->queued;
        pthread_mutex_unlock(&w->lock);
}
