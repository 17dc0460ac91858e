/* delivery: one webhook delivery. */
#include "delivery.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "doc.h"
#include "error.h"
#include "normalize.h"
#include "source.h"

struct delivery *delivery_free(struct delivery *d) {
        if (!d)
                return NULL;
        free(d->delivery_id);
        free(d->event);
        free(d->headers);
        free(d->body);
        free(d->error);
        event_list_clear(&d->events);
        free(d);
        return NULL;
}

int delivery_normalize(struct delivery *d, json_t *doc, const struct normalize_options *o) {
        struct error err = { 0 };
        struct arena arena;
        int r = 0;

        event_list_clear(&d->events);
        free(d->error);
        d->error = NULL;
        if (!doc) {
                /* Our own tree lives in an arena scope and dies before we return: the rows
                 * own copies of every string they keep. */
                arena_begin(&arena, DELIVERY_ARENA_BLOCK(d->body_len), ARENA_CAP_MAX);
                r = doc_parse_bounded(d->body, d->body_len, o->max_json_elements, &doc, &err);
                if (r == 0)
                        r = d->source->normalize(doc, d->event, d->received_us, o, &d->events,
                                                 &err);
                json_decref(doc);
                arena_end(&arena);
        } else
                r = d->source->normalize(doc, d->event, d->received_us, o, &d->events, &err);
        /* Monorepos: files to services, once here for every source. */
        if (r > 0) {
                int added = normalize_map_paths(o, &d->events, &err);

                r = added < 0 ? added : r + added;
        }
        /* A full list is the payload's doing, not memory's: a push of more commits than
         * EVENT_LIST_MAX is an error row, where -ENOMEM's 503 would be retried forever. */
        if (r == -ENOMEM && d->events.n >= EVENT_LIST_MAX)
                r = error_set(&err, EBADMSG, "invalid_payload", NULL,
                              "The delivery means more than %d rows", EVENT_LIST_MAX);
        if (r == -ENOMEM)
                return r;
        /* A value past its bound: a time outside timefmt's range or a generic body's bad
         * contributing factor (the source said so with -ERANGE), or an identifier over its
         * maximum (event_list_check). */
        d->over_limit = r == -ERANGE;
        if (r > 0 && event_list_check(&d->events, &err) < 0) {
                d->over_limit = true;
                r = -EBADMSG;
        }
        if (r > 0) {
                d->status = "normalized";
                return 0;
        }
        /* Ignored or malformed: kept as received, with the reason for whoever asks. */
        event_list_clear(&d->events);
        d->status = r == 0 ? "ignored" : "error";
        d->error = strdup(err.msg[0] ? err.msg : d->status);
        return d->error ? 0 : -ENOMEM;
}
