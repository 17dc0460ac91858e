/* guard: the connection-level defences libmicrohttpd lacks. A deadline for a request's
 * headers however slowly they trickle in (slow loris), and a lingering close: a connection
 * answered before its body was read is drained for a bounded time and size before it is
 * closed, so that a client which sends its whole body first can still read the answer.
 * It sees sockets only (no libmicrohttpd types); http.c calls it from MHD's callbacks. */
#pragma once

#include <stddef.h>

struct guard;
struct guard_conn;

struct guard_options {
        long header_ms; /* a new connection's first request headers must be in by then */
        long idle_ms;   /* the next request's, on a connection kept alive after an answer */
};

/* How long and how much a lingering close reads at most, and how many linger at once. */
#define GUARD_LINGER_MS 5000
#define GUARD_LINGER_MAX 256

/* Starts the guard and its thread. Returns 0 or a negative errno. */
int guard_start(const struct guard_options *o, struct guard **ret_guard)
        __attribute__((warn_unused_result));

/* A client connection on fd was accepted: the clock for its headers starts. Returns NULL
 * when out of memory; the caller then refuses the connection. Thread-safe. */
struct guard_conn *guard_conn_open(struct guard *g, int fd);

/* The request's headers are all in: no deadline until the answer has gone. NULL is a
 * no-op (so are the two below). Thread-safe. */
void guard_conn_headers_done(struct guard_conn *c);

/* The request was answered; the connection may carry another one, whose clock starts now.
 * linger_bytes > 0: the answer came before the body was read, so when the connection
 * closes, up to that many bytes are read and dropped first. Thread-safe. */
void guard_conn_request_done(struct guard_conn *c, size_t linger_bytes);

/* The connection is closing; fd is still open and is closed by the caller right after
 * (so it cannot be reused while the guard may touch it). Frees c; NULL is a no-op.
 * Thread-safe. */
void guard_conn_close(struct guard_conn *c);

/* Stops the thread, closes the sockets still lingering, frees g. Call after every
 * connection is closed. Returns NULL. */
struct guard *guard_stop(struct guard *g);
