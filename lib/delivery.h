/* delivery: one webhook delivery, from the HTTP handler through the writer to the store. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct json_t;
struct source;

struct delivery {
        const struct source *source;
        char *delivery_id;
        char *event;
        char *headers;          /* JSON object text of the request headers, secrets removed */
        char *body;             /* exact bytes, NUL-terminated after body_len */
        size_t body_len;
        int64_t received_us;    /* arrival, microseconds since the Unix epoch */
        struct json_t *doc;     /* the parsed body */

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
