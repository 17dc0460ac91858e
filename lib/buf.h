/* buf: a growable byte buffer with a hard upper bound, always NUL-terminated. */
#pragma once

#include <stddef.h>

struct buf {
        char *data;     /* NUL-terminated; NULL until the first append */
        size_t len;
        size_t cap;
        size_t max;     /* appends that would exceed this fail with -E2BIG */
};

/* Initialises an empty buffer that may grow to max bytes (not counting the NUL). */
void buf_init(struct buf *b, size_t max);

/* Appends n bytes. Returns 0, -E2BIG past the bound (the buffer is unchanged) or -ENOMEM. */
int buf_append(struct buf *b, const void *data, size_t n) __attribute__((warn_unused_result));

/* Appends a NUL-terminated string; same returns as buf_append(). */
int buf_puts(struct buf *b, const char *s) __attribute__((warn_unused_result));

/* Hands the data to the caller (who frees it) and leaves the buffer empty. */
char *buf_steal(struct buf *b);

/* Frees the data; the buffer may be reused after buf_init(). */
void buf_free(struct buf *b);
