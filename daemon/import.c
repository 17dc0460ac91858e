/* import: NDJSON history as deliveries, one line at a time, through the writer's group
 * commit (import.h). A line is a generic body ({"type":...}) or a recorded delivery
 * ({"source","headers","body"|"raw"}); no signature is checked (the admin token vouches),
 * and the delivery id is found as for the hook, so a line imported twice, or imported and
 * then received live, is stored once. */
#include "import.h"

#include <errno.h>
#include <stddef.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>

#include "../lib/arena.h"
#include "../lib/buf.h"
#include "../lib/delivery.h"
#include "../lib/doc.h"
#include "../lib/error.h"
#include "../lib/hook.h"
#include "../lib/normalize.h"
#include "../lib/source.h"
#include "config.h"
#include "log.h"
#include "mirror.h"
#include "writer.h"

/* The window of deliveries in flight: enough for the writers to fill their batches, little
 * enough that memory stays bounded (a body is at most max_body_bytes). Paused when either
 * bound is reached, resumed once in flight is down to half. */
#define WINDOW_DELIVERIES 512
#define WINDOW_BYTES (8u << 20)
/* A line holds a body and some headers, JSON-escaped in "raw": room for that escaping. */
#define LINE_BOUND(cfg) (4 * (cfg)->max_body_bytes + 65536)
/* The answer lists the first errors; the rest are counted in "errors_omitted". */
#define ERRORS_MAX 1000
#define HEADERS_MAX 128

struct line_error {
        uint64_t line;
        const char *code;       /* static string */
        char message[256];
};

/* A delivery of the import: the delivery first, so delivery_free() frees the whole item. */
struct item {
        struct delivery d;
        struct import *im;
        uint64_t line;
        size_t bytes;
};

struct import {
        const struct config *cfg;
        struct writer *writer;
        struct mirror *mirror;
        void (*wake)(void *arg);
        void *wake_arg;
        struct normalize_options normalize;
        struct buf line;                /* the line being read */
        bool skipping;                  /* it is over LINE_BOUND: dropped up to its newline */
        uint64_t lines;                 /* lines begun, blank ones included */
        struct item *pending;           /* refused by a full writer queue: submitted first */
        struct log_ratelimit refusals;
        struct writer_room room;        /* a wait for a queue full of others' deliveries */

        pthread_mutex_t lock;           /* guards the fields below (writer threads use them) */
        size_t in_flight, in_flight_bytes;
        bool waiting;                   /* paused: wake() when the window has room */
        bool abandoned;                 /* import_free() ran: the last item frees it */
        uint64_t accepted, duplicates, n_errors;
        struct line_error *errors;      /* the first ERRORS_MAX */
        size_t n_listed;
};

static void destroy(struct import *im) {
        buf_free(&im->line);
        if (im->pending)
                delivery_free(&im->pending->d);
        pthread_mutex_destroy(&im->lock);
        free(im->errors);
        free(im);
}

struct import *import_new(const struct import_options *o) {
        struct import *im = calloc(1, sizeof(*im));

        if (!im)
                return NULL;
        im->errors = calloc(ERRORS_MAX, sizeof(*im->errors));
        if (!im->errors) {
                free(im);
                return NULL;
        }
        im->cfg = o->cfg;
        im->writer = o->writer;
        im->mirror = o->mirror;
        im->wake = o->wake;
        im->wake_arg = o->wake_arg;
        im->normalize = config_normalize_options(o->cfg);
        im->refusals = (struct log_ratelimit) LOG_RATELIMIT(10, 10);
        buf_init(&im->line, LINE_BOUND(o->cfg));
        pthread_mutex_init(&im->lock, NULL);
        return im;
}

/* Records a refused line; under im->lock. Logged too, rate-limited. */
static void add_error_locked(struct import *im, uint64_t line, const char *code,
                             const char *message) {
        im->n_errors++;
        if (im->n_listed < ERRORS_MAX) {
                struct line_error *e = &im->errors[im->n_listed++];

                e->line = line;
                e->code = code;
                snprintf(e->message, sizeof(e->message), "%s", message);
        }
}

static void add_error(struct import *im, uint64_t line, const struct error *err) {
        const char *code = err->code ? err->code : "unavailable";
        int suppressed;

        if (log_ratelimit_pass(&im->refusals, &suppressed))
                log_warning("Import: refused line %" PRIu64 ": %s: %s%s", line, code, err->msg,
                            suppressed ? " (similar messages were suppressed)" : "");
        pthread_mutex_lock(&im->lock);
        add_error_locked(im, line, code, err->msg);
        pthread_mutex_unlock(&im->lock);
}

static bool window_full_locked(const struct import *im) {
        return im->in_flight >= WINDOW_DELIVERIES || im->in_flight_bytes >= WINDOW_BYTES;
}

static bool window_low_locked(const struct import *im) {
        return im->in_flight <= WINDOW_DELIVERIES / 2 && im->in_flight_bytes <= WINDOW_BYTES / 2;
}

/* One of the import's items in flight has left it, of bytes: wakes the import when its
 * window has room, or frees it when it was abandoned and this was its last. Takes im->lock
 * held, and releases it. */
static void left_flight_locked(struct import *im, size_t bytes) {
        bool wake = false, last;

        im->in_flight--;
        im->in_flight_bytes -= bytes;
        if (im->waiting && (window_low_locked(im) || im->in_flight == 0)) {
                im->waiting = false;
                wake = !im->abandoned;
        }
        last = im->abandoned && im->in_flight == 0;
        pthread_mutex_unlock(&im->lock);
        if (last)
                destroy(im);
        else if (wake)
                im->wake(im->wake_arg);
}

/* On a writer thread, once the item's delivery is durable (or failed). */
static void on_done(struct delivery *d) {
        struct item *it = (struct item *) d;
        struct import *im = it->im;
        size_t bytes = it->bytes;

        if (d->result == 0)
                mirror_data_changed(im->mirror);
        pthread_mutex_lock(&im->lock);
        if (d->result < 0)
                add_error_locked(im, it->line, "unavailable",
                                 "The delivery could not be stored; import the file again");
        else if (d->duplicate)
                im->duplicates++;
        else
                im->accepted++;
        delivery_free(d);
        left_flight_locked(im, bytes);
}

/* On a writer thread: the queue that was full of others' deliveries has room. The wait
 * counted as one in flight, so that the import is suspended, and freed only after it. */
static void on_room(struct writer_room *room) {
        struct import *im = (struct import *) ((char *) room - offsetof(struct import, room));

        pthread_mutex_lock(&im->lock);
        left_flight_locked(im, 0);
}

/* Hands the pending item to the writer. Returns false while the writer's queue is full. */
static bool submit_pending(struct import *im) {
        struct item *it = im->pending;
        struct error err = { 0 };
        bool ours;
        int r;

        for (;;) {
                pthread_mutex_lock(&im->lock);
                im->in_flight++;
                im->in_flight_bytes += it->bytes;
                pthread_mutex_unlock(&im->lock);
                r = writer_submit(im->writer, &it->d);
                if (r == 0) {
                        im->pending = NULL;
                        return true;
                }
                pthread_mutex_lock(&im->lock);
                im->in_flight--;
                im->in_flight_bytes -= it->bytes;
                ours = im->in_flight > 0;
                if (r == -EAGAIN && !ours)
                        im->in_flight++;        /* the wait below, until on_room() */
                pthread_mutex_unlock(&im->lock);
                if (r != -EAGAIN)
                        break;
                /* Full: ours in flight make room and wake us, or the writer does, never a
                 * sleep on the HTTP thread. */
                if (ours)
                        return false;
                im->room.fn = on_room;
                if (writer_wait_room(im->writer, &im->room))
                        return false;
                pthread_mutex_lock(&im->lock);
                im->in_flight--;                /* room already: submit again */
                pthread_mutex_unlock(&im->lock);
        }
        error_set(&err, r, "unavailable", NULL, "Shutting down; import the file again");
        add_error(im, it->line, &err);
        delivery_free(&it->d);
        im->pending = NULL;
        return true;
}

static int64_t now_us(void) {
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* What a line says, once parsed: the source, its headers and the body's bytes and tree
 * (all borrowed from the line's tree, or made inside its arena scope). */
struct recorded {
        const struct source *source;
        struct hook_header headers[HEADERS_MAX];
        size_t n_headers;
        const char *body;
        size_t body_len;
        json_t *doc;            /* the body's tree */
        json_t *own_doc;        /* when parsed here from "raw" */
        char *dumped;           /* "body" serialized: jansson's memory (arena_free) */
};

static int read_headers(json_t *headers, struct recorded *rec, struct error *err) {
        const char *name;
        json_t *value;

        if (!headers)
                return 0;
        if (!json_is_object(headers))
                return error_set(err, EBADMSG, "invalid_payload", "headers",
                                 "headers must be an object of strings");
        json_object_foreach(headers, name, value) {
                if (!json_is_string(value))
                        return error_set(err, EBADMSG, "invalid_payload", "headers",
                                         "headers must be an object of strings");
                if (rec->n_headers == HEADERS_MAX)
                        return error_set(err, EBADMSG, "invalid_payload", "headers",
                                         "More than %d headers", HEADERS_MAX);
                rec->headers[rec->n_headers++] = (struct hook_header) {
                        name, json_string_value(value) };
        }
        return 0;
}

/* A recorded delivery: {"source":..,"headers":{..},"body":{..}} or "raw":"<bytes>". */
static int read_recorded(struct import *im, json_t *line, struct recorded *rec,
                         struct error *err) {
        const char *name = doc_string(line, "source");
        json_t *body = json_object_get(line, "body"), *raw = json_object_get(line, "raw");
        int r;

        rec->source = name ? source_find(name) : NULL;
        if (!rec->source)
                return error_set(err, EBADMSG, "invalid_payload", "source",
                                 "source must name a webhook source (github, gitlab, ...)");
        r = read_headers(json_object_get(line, "headers"), rec, err);
        if (r < 0)
                return r;
        if (!body == !raw)
                return error_set(err, EBADMSG, "invalid_payload", "body",
                                 "A recorded delivery has either body (an object) or raw "
                                 "(its exact bytes as a string)");
        if (raw) {
                if (!json_is_string(raw))
                        return error_set(err, EBADMSG, "invalid_payload", "raw",
                                         "raw must be a string");
                rec->body = json_string_value(raw);
                rec->body_len = json_string_length(raw);
                r = doc_parse_bounded(rec->body, rec->body_len,
                                      (size_t) im->cfg->max_json_elements, &rec->own_doc, err);
                rec->doc = rec->own_doc;
                return r;
        }
        if (!json_is_object(body))
                return error_set(err, EBADMSG, "invalid_payload", "body",
                                 "body must be an object");
        rec->dumped = json_dumps(body, JSON_COMPACT);
        rec->body = rec->dumped;
        if (!rec->body)
                return error_set(err, ENOMEM, "unavailable", NULL, "Out of memory");
        rec->body_len = strlen(rec->body);
        rec->doc = body;
        return 0;
}

/* The headers kept in events_raw: credentials replaced, as for a live delivery. */
static char *headers_text(const struct recorded *rec) {
        static const char *const secret[] = { "Authorization", "Proxy-Authorization",
                                              "X-Gitlab-Token", "Cookie" };
        json_t *o = json_object();
        char *text, *copy;

        if (!o)
                return NULL;
        for (size_t i = 0; i < rec->n_headers; i++) {
                const char *v = rec->headers[i].value;

                for (size_t j = 0; j < sizeof(secret) / sizeof(secret[0]); j++)
                        if (strcasecmp(rec->headers[i].name, secret[j]) == 0)
                                v = "(redacted)";
                (void) json_object_set_new(o, rec->headers[i].name, json_string(v));
        }
        text = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
        json_decref(o);
        copy = text ? strdup(text) : NULL;     /* out of the arena scope */
        arena_free(text);                       /* jansson's allocator made it */
        return copy;
}

/* Identifies and normalizes the parsed line into it->d, as take_delivery() does a body. */
static int make_delivery(struct import *im, struct item *it, struct recorded *rec,
                         struct error *err) {
        struct delivery *d = &it->d;
        struct hook_request hr = {
                .body = rec->body, .body_len = rec->body_len,
                .headers = rec->headers, .n_headers = rec->n_headers,
        };
        int r;

        if (rec->body_len > im->cfg->max_body_bytes)
                return error_set(err, E2BIG, "payload_too_large", NULL,
                                 "The body is larger than max_body_bytes (%zu)",
                                 im->cfg->max_body_bytes);
        d->source = rec->source;
        d->received_us = now_us();
        r = rec->source->identify(&hr, rec->doc, &d->delivery_id, &d->event, err);
        if (r < 0)
                return r;
        if (delivery_normalize(d, rec->doc, &im->normalize) < 0)
                return error_set(err, ENOMEM, "unavailable", NULL, "Out of memory");
        if (d->over_limit)
                return error_set(err, EBADMSG, "invalid_payload", NULL, "%s", d->error);
        d->headers = headers_text(rec);
        d->body = malloc(rec->body_len + 1);
        if (!d->headers || !d->body)
                return error_set(err, ENOMEM, "unavailable", NULL, "Out of memory");
        memcpy(d->body, rec->body, rec->body_len);
        d->body[rec->body_len] = '\0';
        d->body_len = rec->body_len;
        it->bytes = rec->body_len + sizeof(*it);
        return 0;
}

/* One complete line (no newline): parsed, then made into the pending item. */
static void take_line(struct import *im, const char *text, size_t len) {
        struct error err = { 0 };
        struct recorded rec = { 0 };
        struct arena arena;
        struct item *it = calloc(1, sizeof(*it));
        json_t *line = NULL;
        int r;

        if (!it) {
                error_set(&err, ENOMEM, "unavailable", NULL, "Out of memory");
                add_error(im, im->lines, &err);
                return;
        }
        it->im = im;
        it->line = im->lines;
        it->d.done = on_done;
        /* The trees live in an arena scope that ends here: what the delivery keeps is
         * copied out by identify(), normalize() and make_delivery(). */
        arena_begin(&arena, DELIVERY_ARENA_BLOCK(len), ARENA_CAP_MAX);
        r = doc_parse_bounded(text, len, (size_t) im->cfg->max_json_elements, &line, &err);
        if (r == 0 && json_object_get(line, "source")) {
                r = read_recorded(im, line, &rec, &err);
        } else if (r == 0) {
                /* A generic body: the line is the body, its SHA-256 the delivery id. */
                rec = (struct recorded) { .source = source_find("generic"), .body = text,
                                          .body_len = len, .doc = line };
                if (!rec.source)
                        r = error_set(&err, ENOSYS, "not_implemented", NULL,
                                      "No generic source in this build");
        }
        if (r == 0)
                r = make_delivery(im, it, &rec, &err);
        arena_free(rec.dumped);
        json_decref(rec.own_doc);
        json_decref(line);
        arena_end(&arena);
        if (r < 0) {
                add_error(im, it->line, &err);
                delivery_free(&it->d);
                return;
        }
        im->pending = it;
}

static bool blank(const char *s, size_t len) {
        for (size_t i = 0; i < len; i++)
                if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
                        return false;
        return true;
}

/* Empties the line buffer, keeping its memory for the next line. */
static void line_reset(struct buf *b) {
        b->len = 0;
        if (b->data)
                b->data[0] = '\0';
}

/* The current line is complete. */
static void end_line(struct import *im) {
        struct buf *b = &im->line;

        im->lines++;
        if (im->skipping) {
                struct error err = { 0 };

                error_set(&err, E2BIG, "payload_too_large", NULL,
                          "The line is longer than %zu bytes (4 x max_body_bytes + 64 KiB)",
                          b->max);
                add_error(im, im->lines, &err);
                im->skipping = false;
        } else if (b->len && !blank(b->data, b->len)) {
                size_t len = b->len;

                if (b->data[len - 1] == '\r')
                        len--;
                take_line(im, b->data, len);
        }
        line_reset(b);
}

size_t import_feed(struct import *im, const char *data, size_t len) {
        size_t used = 0;

        if (im->pending && !submit_pending(im))
                return 0;
        while (used < len) {
                const char *nl;
                size_t n;
                bool full;

                pthread_mutex_lock(&im->lock);
                full = window_full_locked(im);
                pthread_mutex_unlock(&im->lock);
                if (full)
                        break;
                nl = memchr(data + used, '\n', len - used);
                n = nl ? (size_t) (nl - (data + used)) : len - used;
                if (!im->skipping && buf_append(&im->line, data + used, n) < 0) {
                        im->skipping = true;    /* too long (or no memory for it) */
                        line_reset(&im->line);
                }
                used += n;
                if (!nl)
                        break;
                used++;
                end_line(im);
                if (im->pending && !submit_pending(im))
                        break;
        }
        return used;
}

bool import_pause(struct import *im) {
        bool wait;

        pthread_mutex_lock(&im->lock);
        wait = window_full_locked(im) || (im->pending && im->in_flight > 0);
        im->waiting = wait;
        pthread_mutex_unlock(&im->lock);
        return wait;
}

void import_finish(struct import *im) {
        if (im->line.len || im->skipping)
                end_line(im);
}

bool import_busy(struct import *im) {
        bool busy;

        while (im->pending && !submit_pending(im)) {
                pthread_mutex_lock(&im->lock);
                busy = im->in_flight > 0;
                im->waiting = busy;
                pthread_mutex_unlock(&im->lock);
                if (busy)
                        return true;    /* retried once ours make room */
        }
        pthread_mutex_lock(&im->lock);
        busy = im->in_flight > 0;
        im->waiting = busy;
        pthread_mutex_unlock(&im->lock);
        return busy;
}

json_t *import_answer(struct import *im) {
        json_t *errors = json_array(), *doc;

        if (!errors)
                return NULL;
        pthread_mutex_lock(&im->lock);
        for (size_t i = 0; i < im->n_listed; i++) {
                const struct line_error *e = &im->errors[i];

                (void) json_array_append_new(errors, json_pack("{s:I,s:s,s:s}", "line",
                                                               (json_int_t) e->line, "code",
                                                               e->code, "message", e->message));
        }
        log_info("Imported %" PRIu64 " lines: %" PRIu64 " accepted, %" PRIu64 " duplicates, %"
                 PRIu64 " refused", im->lines, im->accepted, im->duplicates, im->n_errors);
        doc = json_pack("{s:I,s:I,s:I,s:o}", "lines", (json_int_t) im->lines, "accepted",
                        (json_int_t) im->accepted, "duplicates", (json_int_t) im->duplicates,
                        "errors", errors);
        if (doc && im->n_errors > im->n_listed)
                (void) json_object_set_new(doc, "errors_omitted",
                                           json_integer((json_int_t) (im->n_errors -
                                                                      im->n_listed)));
        pthread_mutex_unlock(&im->lock);
        return doc;
}

struct import *import_free(struct import *im) {
        bool later;

        if (!im)
                return NULL;
        pthread_mutex_lock(&im->lock);
        im->abandoned = true;
        later = im->in_flight > 0;
        pthread_mutex_unlock(&im->lock);
        if (!later)
                destroy(im);
        return NULL;
}
