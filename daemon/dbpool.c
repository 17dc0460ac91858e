/* dbpool: a few database connections for the HTTP threads' queries. */
#include "dbpool.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/store.h"

struct dbpool {
        pthread_mutex_t lock;
        char *conninfo;
        int max, n_idle;
        struct store *idle[];
};

struct dbpool *dbpool_new(const char *conninfo, int max) {
        struct dbpool *p = calloc(1, sizeof(*p) + (size_t) max * sizeof(struct store *));

        if (!p)
                return NULL;
        p->conninfo = strdup(conninfo);
        if (!p->conninfo) {
                free(p);
                return NULL;
        }
        p->max = max;
        pthread_mutex_init(&p->lock, NULL);
        return p;
}

struct dbpool *dbpool_free(struct dbpool *p) {
        if (!p)
                return NULL;
        for (int i = 0; i < p->n_idle; i++)
                store_close(p->idle[i]);
        pthread_mutex_destroy(&p->lock);
        free(p->conninfo);
        free(p);
        return NULL;
}

int dbpool_acquire(struct dbpool *p, struct store **ret_store, struct error *err) {
        struct store *s = NULL;

        pthread_mutex_lock(&p->lock);
        if (p->n_idle > 0)
                s = p->idle[--p->n_idle];
        pthread_mutex_unlock(&p->lock);
        if (s) {
                *ret_store = s;
                return 0;
        }
        return store_open(p->conninfo, ret_store, err);
}

void dbpool_release(struct dbpool *p, struct store *s) {
        if (!s)
                return;
        pthread_mutex_lock(&p->lock);
        if (store_connected(s) && p->n_idle < p->max) {
                p->idle[p->n_idle++] = s;
                s = NULL;
        }
        pthread_mutex_unlock(&p->lock);
        store_close(s);
}
