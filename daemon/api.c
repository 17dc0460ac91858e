/* api: the one retry around a pooled database connection, for every handler. */
#include "api.h"

#include <errno.h>

#include "../lib/error.h"
#include "dbpool.h"

static int with_pool(struct dbpool *pool, int (*fn)(struct store *, void *, struct error *),
                     void *ctx, struct error *err) {
        for (int attempt = 0; attempt < 2; attempt++) {
                struct store *s = NULL;
                int r = dbpool_acquire(pool, &s, err);

                if (r < 0)
                        return r;
                r = fn(s, ctx, err);
                dbpool_release(pool, s);
                if (r != -EIO || attempt == 1)
                        return r;
        }
        return -EIO;
}

int api_with_store(const struct api *api, int (*fn)(struct store *, void *, struct error *),
                   void *ctx, struct error *err) {
        return with_pool(api->pool, fn, ctx, err);
}

int api_with_primary(const struct api *api, int (*fn)(struct store *, void *, struct error *),
                     void *ctx, struct error *err) {
        return with_pool(api->primary ? api->primary : api->pool, fn, ctx, err);
}
