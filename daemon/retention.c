/* retention: the hourly upkeep of events_raw's partitions (retention.h). The SQL is in
 * sql/functions/60_raw_partitions.sql; several daemons on one database share the work
 * through its advisory lock, so each may run this timer. */
#include "retention.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../lib/error.h"
#include "../lib/store.h"
#include "log.h"

#define UPKEEP_INTERVAL_S 3600
#define MONTHS_AHEAD 2          /* partitions ready before their month begins */
#define DROPS_PER_RUN 240       /* months; a first run on years of history drops them all */
#define US_PER_DAY (86400 * INT64_C(1000000))

struct retention {
        char *conninfo;
        long keep_days;
        struct store *store;    /* the thread's own */
        pthread_t thread;
        pthread_mutex_t lock;
        pthread_cond_t wake;
        bool stop;
};

static int64_t wall_us(void) {
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int connect_store(struct retention *r, struct error *err) {
        if (store_connected(r->store))
                return 0;
        r->store = store_close(r->store);
        return store_open(r->conninfo, &r->store, err);
}

/* Drops every month past keep_days, oldest first, one transaction each. */
static int drop_past(struct retention *r, int64_t now, struct error *err) {
        int64_t cutoff = now - r->keep_days * US_PER_DAY;

        for (int i = 0; i < DROPS_PER_RUN; i++) {
                char month[16];
                int64_t rows = 0;
                int d = store_raw_drop_oldest(r->store, cutoff, month, sizeof(month), &rows, err);

                if (d <= 0)
                        return d;
                log_notice("Dropped the deliveries of %s from events_raw (raw_retention_days=%ld): "
                           "%" PRId64 " rows", month, r->keep_days, rows);
        }
        return 0;
}

static void upkeep(struct retention *r) {
        struct error err = { 0 };
        int64_t now = wall_us();
        int n = connect_store(r, &err);

        if (n == 0)
                n = store_raw_partitions(r->store, now, MONTHS_AHEAD, &err);
        if (n > 0)
                log_info("Created %d monthly partitions of events_raw", n);
        if (n >= 0 && r->keep_days > 0)
                n = drop_past(r, now, &err);
        if (n < 0) {
                /* Hourly at most, and the next run tries again: nothing is lost meanwhile. */
                log_warning("Failed to keep events_raw's monthly partitions: %s", err.msg);
                r->store = store_close(r->store);
        }
}

static void *upkeep_main(void *arg) {
        struct retention *r = arg;

        pthread_mutex_lock(&r->lock);
        while (!r->stop) {
                struct timespec next;

                pthread_mutex_unlock(&r->lock);
                upkeep(r);
                pthread_mutex_lock(&r->lock);
                clock_gettime(CLOCK_MONOTONIC, &next);
                next.tv_sec += UPKEEP_INTERVAL_S;
                while (!r->stop &&
                       pthread_cond_timedwait(&r->wake, &r->lock, &next) != ETIMEDOUT)
                        ;
        }
        pthread_mutex_unlock(&r->lock);
        return NULL;
}

struct retention *retention_start(const char *conninfo, long keep_days) {
        struct retention *r = calloc(1, sizeof(*r));
        pthread_condattr_t attr;

        if (!r)
                return NULL;
        r->conninfo = strdup(conninfo);
        r->keep_days = keep_days;
        if (!r->conninfo) {
                free(r);
                return NULL;
        }
        pthread_mutex_init(&r->lock, NULL);
        pthread_condattr_init(&attr);
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
        pthread_cond_init(&r->wake, &attr);
        pthread_condattr_destroy(&attr);
        if (pthread_create(&r->thread, NULL, upkeep_main, r) != 0) {
                pthread_cond_destroy(&r->wake);
                pthread_mutex_destroy(&r->lock);
                free(r->conninfo);
                free(r);
                return NULL;
        }
        return r;
}

struct retention *retention_stop(struct retention *r) {
        if (!r)
                return NULL;
        pthread_mutex_lock(&r->lock);
        r->stop = true;
        pthread_cond_broadcast(&r->wake);
        pthread_mutex_unlock(&r->lock);
        pthread_join(r->thread, NULL);
        pthread_cond_destroy(&r->wake);
        pthread_mutex_destroy(&r->lock);
        store_close(r->store);
        free(r->conninfo);
        free(r);
        return NULL;
}
