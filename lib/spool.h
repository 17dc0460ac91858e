/* spool: an append-only file of deliveries that could not be committed to PostgreSQL, so
 * that a 202 never waits for the database to come back. Each record is
 *   magic "DLSP" | payload length | CRC32C of the payload | payload
 * (little-endian u32s), fsync'd before the append returns. A torn last record (a crash in
 * mid-write) or a damaged one is detected, reported and skipped, never replayed as garbage.
 * Not thread-safe: the caller serializes. */
#pragma once

#include <stddef.h>
#include <stdint.h>

struct delivery;
struct error;
struct spool;

/* What a read found besides the good records. */
struct spool_report {
        uint64_t records;       /* good records read */
        uint64_t damaged;       /* records skipped for a bad checksum or content */
        uint64_t torn_bytes;    /* bytes at the end that make no whole record */
        uint64_t skipped_bytes; /* bytes skipped to find the next record after damage */
};

/* Opens (creating it and dir if needed) dir/spool.log. Returns 0, or a negative errno with
 * err filled. */
int spool_open(const char *dir, struct spool **ret_spool, struct error *err)
        __attribute__((warn_unused_result));

/* NULL-safe; returns NULL. */
struct spool *spool_close(struct spool *s);

/* Appends one record per delivery and makes them durable (fdatasync). Returns 0, or a
 * negative errno (then the file is cut back to where it was). */
int spool_append(struct spool *s, struct delivery *const *ds, size_t n, struct error *err)
        __attribute__((warn_unused_result));

/* Bytes in the spool; 0 when empty. */
uint64_t spool_bytes(const struct spool *s);

/* Calls fn for each good record in order with a delivery the callee owns (source,
 * delivery_id, event, headers, body, received_us filled). Stops early when fn returns < 0
 * and returns that. Returns 0 and fills report (may be NULL) otherwise. */
int spool_read(struct spool *s, int (*fn)(struct delivery *d, void *ctx), void *ctx,
               struct spool_report *report, struct error *err)
        __attribute__((warn_unused_result));

/* spool_read() in steps, so a long replay need not hold up appends: reads from byte offset
 * from (0, or a *ret_next this returned) at most max_records good records, and sets
 * *ret_next to where the next step starts: spool_bytes() once all is read (a torn last
 * record is reported and passed over). Records appended meanwhile are read by later
 * steps. Same returns as spool_read(). */
int spool_read_from(struct spool *s, uint64_t from, size_t max_records,
                    int (*fn)(struct delivery *d, void *ctx), void *ctx,
                    struct spool_report *report, uint64_t *ret_next, struct error *err)
        __attribute__((warn_unused_result));

/* Empties the spool once everything in it is committed elsewhere. Returns 0 or -errno. */
int spool_clear(struct spool *s, struct error *err) __attribute__((warn_unused_result));

/* The record encoding, exposed for tests and the fuzz target: parses one payload. Returns
 * 0 and a delivery the caller owns, or -EBADMSG. */
int spool_decode(const uint8_t *payload, size_t len, struct delivery **ret_delivery)
        __attribute__((warn_unused_result));
