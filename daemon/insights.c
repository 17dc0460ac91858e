/* insights: the upkeep of the insights (insights.h). The ingest transaction only marks a
 * service (O(1) per event); the cost of a recompute (the rows of one service's windows) is
 * paid here, off the ingest path. */
#include "insights.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../lib/error.h"
#include "../lib/store.h"
#include "log.h"

#define INTERVAL_MS 1000        /* an insight reflects the data within 5 s (API.md) */
#define CLAIM_MAX 64            /* services per claim; more wait for the next round */
#define ALL_EVERY_S 3600        /* every service, as the windows slide */
#define SERVICE_MAX 256         /* bytes of a service name kept (longer are not stored) */

struct insights {
        char *conninfo;
        char support_hours[32], failure_hours[32];
        struct store_insight_weights weights;
        struct store *store;    /* the thread's own */
        time_t all_at;          /* when every service was last marked; 0: not yet */
        pthread_t thread;
        pthread_mutex_t lock;
        pthread_cond_t wake;
        bool stop;
};

/* The services one claim took. */
struct claimed {
        char names[CLAIM_MAX][SERVICE_MAX];
        int n;
};

static int take_service(void *ctx, const struct store_row *r) {
        struct claimed *c = ctx;

        if (c->n < CLAIM_MAX && r->values[0]) {
                strncpy(c->names[c->n], r->values[0], SERVICE_MAX - 1);
                c->names[c->n][SERVICE_MAX - 1] = '\0';
                c->n++;
        }
        return 0;
}

static int connect_store(struct insights *u, struct error *err) {
        if (store_connected(u->store))
                return 0;
        u->store = store_close(u->store);
        return store_open(u->conninfo, &u->store, err);
}

/* One round: every service hourly, then what is marked. Returns 0, or -EIO when the
 * connection is to be made again. */
static int round_once(struct insights *u) {
        struct claimed *c = calloc(1, sizeof(*c));
        struct error err = { 0 };
        time_t now = time(NULL);
        int r = c ? connect_store(u, &err) : -ENOMEM;

        if (r == 0 && (!u->all_at || now - u->all_at >= ALL_EVERY_S ||
                       now / 86400 != u->all_at / 86400)) {
                r = store_insights_mark_all(u->store, u->weights.window_days, &err);
                if (r >= 0) {
                        u->all_at = now;
                        r = 0;
                }
        }
        if (r == 0)
                r = store_insights_claim(u->store, CLAIM_MAX, take_service, c, &err);
        for (int i = 0; r >= 0 && c && i < c->n; i++) {
                r = store_insights_refresh(u->store, c->names[i], &u->weights, &err);
                if (r < 0) {
                        struct error again = { 0 };

                        /* Marked again so that the next round (or another daemon) retries. */
                        log_warning("Failed to recompute the insights of %s: %s", c->names[i],
                                    err.msg);
                        if (store_insights_mark(u->store, c->names[i], &again) == 0)
                                r = 0;
                        for (int j = i + 1; r == 0 && j < c->n; j++)
                                r = store_insights_mark(u->store, c->names[j], &again);
                        break;
                }
        }
        if (r < 0 && r != -ENOMEM && err.msg[0])
                log_warning("Insight upkeep: %s", err.msg);
        free(c);
        return r < 0 ? -EIO : 0;
}

static void *upkeep_main(void *arg) {
        struct insights *u = arg;

        pthread_mutex_lock(&u->lock);
        while (!u->stop) {
                struct timespec next;

                pthread_mutex_unlock(&u->lock);
                if (round_once(u) < 0)
                        u->store = store_close(u->store);
                pthread_mutex_lock(&u->lock);
                clock_gettime(CLOCK_MONOTONIC, &next);
                next.tv_nsec += (long) INTERVAL_MS * 1000000L;
                next.tv_sec += next.tv_nsec / 1000000000L;
                next.tv_nsec %= 1000000000L;
                while (!u->stop &&
                       pthread_cond_timedwait(&u->wake, &u->lock, &next) != ETIMEDOUT)
                        ;
        }
        pthread_mutex_unlock(&u->lock);
        return NULL;
}

struct insights *insights_start(const char *conninfo, const struct store_insight_weights *w) {
        struct insights *u = calloc(1, sizeof(*u));
        pthread_condattr_t attr;

        if (!u)
                return NULL;
        u->conninfo = strdup(conninfo);
        if (!u->conninfo) {
                free(u);
                return NULL;
        }
        strncpy(u->support_hours, w->support_hours, sizeof(u->support_hours) - 1);
        strncpy(u->failure_hours, w->failure_hours, sizeof(u->failure_hours) - 1);
        u->weights = (struct store_insight_weights) { .window_days = w->window_days,
                                                      .support_hours = u->support_hours,
                                                      .failure_hours = u->failure_hours };
        pthread_mutex_init(&u->lock, NULL);
        pthread_condattr_init(&attr);
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
        pthread_cond_init(&u->wake, &attr);
        pthread_condattr_destroy(&attr);
        if (pthread_create(&u->thread, NULL, upkeep_main, u) != 0) {
                pthread_cond_destroy(&u->wake);
                pthread_mutex_destroy(&u->lock);
                free(u->conninfo);
                free(u);
                return NULL;
        }
        return u;
}

struct insights *insights_stop(struct insights *u) {
        if (!u)
                return NULL;
        pthread_mutex_lock(&u->lock);
        u->stop = true;
        pthread_cond_broadcast(&u->wake);
        pthread_mutex_unlock(&u->lock);
        pthread_join(u->thread, NULL);
        pthread_cond_destroy(&u->wake);
        pthread_mutex_destroy(&u->lock);
        store_close(u->store);
        free(u->conninfo);
        free(u);
        return NULL;
}
