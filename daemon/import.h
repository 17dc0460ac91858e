/* import: POST /api/v1/import, NDJSON history (API.md, "Import and the command line"). The
 * body is fed in as it arrives, split into lines, and each line becomes a delivery handed to
 * the writer like a webhook's (same identify, normalize and group commit), so what is kept
 * in memory is one line and a bounded window of deliveries in flight, whatever the body's
 * size. It sees no HTTP library: daemon/http.c feeds it and suspends the connection while
 * the window is full; wake() says when to resume. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

struct config;
struct import;
struct mirror;
struct writer;

struct import_options {
        const struct config *cfg;       /* borrowed for the import's lifetime */
        struct writer *writer;
        struct mirror *mirror;          /* told of each stored delivery (daemon/mirror.h) */
        /* Called from a writer thread when a paused import may go on (see import_pause and
         * import_busy); never after import_free(). */
        void (*wake)(void *arg);
        void *wake_arg;
};

/* A new import, or NULL on OOM. */
struct import *import_new(const struct import_options *o);

/* Takes the next bytes of the body: whole lines become deliveries. Stops early when the
 * window of deliveries in flight is full; returns how many bytes it took (the caller gives
 * the rest again later). Not thread-safe: one caller at a time. */
size_t import_feed(struct import *im, const char *data, size_t len);

/* After import_feed() stopped early: true when the caller must suspend until wake() (the
 * window is still full); false to feed again now. Call it under the lock that wake() takes
 * before resuming, and suspend under it, so a wake cannot come before the suspension. */
bool import_pause(struct import *im);

/* The body is complete: its last line, if it had no newline, is taken now. */
void import_finish(struct import *im);

/* After import_finish(): true when deliveries are still in flight, so the caller must
 * suspend until wake() and ask again (same locking as import_pause); false once every
 * accepted line is durable and the answer is ready. */
bool import_busy(struct import *im);

/* The answer, {"lines","accepted","duplicates","errors":[{"line","code","message"}]},
 * for the caller to own; NULL on OOM. Logs a summary line. Call once import_busy() is false. */
json_t *import_answer(struct import *im);

/* Frees the import, or leaves it to the last delivery still in flight (a dropped
 * connection); wake() is not called again. NULL-safe, returns NULL. */
struct import *import_free(struct import *im);
