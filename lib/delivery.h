/* delivery: one webhook delivery, from the HTTP handler through the writer to the store. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "event.h"

struct json_t;
struct normalize_options;
struct source;

struct delivery {
        const struct source *source;
        char *delivery_id;
        char *event;
        char *headers;          /* JSON object text of the request headers, secrets removed */
        char *body;             /* exact bytes, NUL-terminated after body_len */
        size_t body_len;
        int64_t received_us;    /* arrival, microseconds since the Unix epoch */
        int64_t raw_id;         /* events_raw.id, when read back for a replay */

        /* What the body means, decided before it is queued (normalize() runs on the HTTP
         * thread so the writer only talks to the database). */
        const char *status;     /* "normalized", "ignored" or "error"; static string */
        char *error;            /* why it was ignored or failed, or NULL */
        bool over_limit;        /* a value past its bound (a time outside timefmt's range, an
                                 * identifier over its maximum: event_list_check):
                                 * status "error"; intake refuses it with 400 */
        struct event_list events;

        /* Outcome, set by the writer before done() is called. */
        int result;             /* 0 when durable, else a negative errno */
        bool duplicate;         /* the (source, delivery id) was stored before */

        /* Hand-off to the writer: it calls done(d) once, from its own thread, after which it
         * no longer touches d. */
        void (*done)(struct delivery *d);
        void *userdata;
        struct delivery *next;  /* queue link, owned by the writer while queued */
};

/* Frees everything the delivery owns and the delivery itself; NULL-safe, returns NULL. */
struct delivery *delivery_free(struct delivery *d);

/* Decides what d means: runs its source's normalize() on doc, the parsed body the caller
 * holds (borrowed), or when doc is NULL on d->body parsed here, and sets d->events,
 * d->status ("normalized", "ignored" or "error"), d->error and d->over_limit (rows with an
 * identifier over its maximum are dropped, status "error"). One function for live
 * deliveries and replays, so both give the same rows. A delivery never keeps a tree: the
 * rows own their strings, and a tree parsed here lives in an arena scope (lib/arena.h) that
 * ends before the return. Returns 0 (whatever the status) or -ENOMEM. Thread-safe. */
int delivery_normalize(struct delivery *d, struct json_t *doc,
                       const struct normalize_options *o) __attribute__((warn_unused_result));

/* The first arena block for parsing a body of len bytes: jansson's tree of a webhook body
 * takes ~4x its text (3.7x for the 8.8 KB push, 642 allocations), so one block holds it. */
#define DELIVERY_ARENA_BLOCK(len) (8 * (len) + 4096)
