/* delivery: one webhook delivery. */
#include "delivery.h"

#include <jansson.h>
#include <stdlib.h>

struct delivery *delivery_free(struct delivery *d) {
        if (!d)
                return NULL;
        free(d->delivery_id);
        free(d->event);
        free(d->headers);
        free(d->body);
        json_decref(d->doc);
        free(d);
        return NULL;
}
