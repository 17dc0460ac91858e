/* fuzz_spool: libFuzzer target for the spool reader. The input is taken as a spool
 * payload (spool_decode) and as a whole spool file (spool_read), which must account for
 * every byte: whole records + skipped + torn = the file. A record appended after whatever
 * the file held must then be read back (or lie inside a longer record that checks out),
 * since the daemon restarted after a crash appends after a torn tail. */
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "delivery.h"
#include "error.h"
#include "source.h"
#include "spool.h"

#define HEADER_LEN 12

static char dir[64], path[128];

struct tally {
        uint64_t records, bytes;        /* whole records and their encoded size */
        bool sentinel_last;             /* the last record read was the appended one */
};

/* The encoded size of d: header, version and time, five length-prefixed strings. */
static uint64_t encoded_size(const struct delivery *d) {
        return HEADER_LEN + 9 + 5 * 4 + strlen(d->source->name) + strlen(d->delivery_id) +
               strlen(d->event) + strlen(d->headers) + d->body_len;
}

static int count(struct delivery *d, void *ctx) {
        struct tally *t = ctx;

        if (d->body[d->body_len] != '\0' || !d->source || !d->headers || !d->event)
                abort();
        t->records++;
        t->bytes += encoded_size(d);
        t->sentinel_last = strcmp(d->delivery_id, "fuzz-sentinel") == 0 &&
                           d->received_us == 1 && strcmp(d->body, "{\"type\":\"change\"}") == 0;
        delivery_free(d);
        return 0;
}

static void cleanup(void) {
        unlink(path);
        rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        (void) argc;
        (void) argv;
        /* tmpfs: every input is written and fdatasync'd. */
        snprintf(dir, sizeof(dir), "%s/doraloop-fuzz-XXXXXX",
                 access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
        if (!mkdtemp(dir))
                abort();
        snprintf(path, sizeof(path), "%s/spool.log", dir);
        atexit(cleanup);
        return 0;
}

static void check_read(struct spool *s, struct tally *t, struct spool_report *rep) {
        struct error err = { 0 };

        *t = (struct tally) { 0 };
        if (spool_read(s, count, t, rep, &err) < 0)
                abort();
        if (rep->records != t->records ||
            t->bytes + rep->skipped_bytes + rep->torn_bytes != spool_bytes(s)) {
                fprintf(stderr, "spool of %llu bytes: %llu in %llu records, %llu skipped, "
                        "%llu torn\n", (unsigned long long) spool_bytes(s),
                        (unsigned long long) t->bytes, (unsigned long long) t->records,
                        (unsigned long long) rep->skipped_bytes,
                        (unsigned long long) rep->torn_bytes);
                abort();
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct delivery *d = NULL;
        struct spool *s = NULL;
        struct error err = { 0 };
        struct spool_report rep;
        struct tally before, after;
        struct delivery sentinel = {
                .source = source_find("generic"),
                .delivery_id = (char *) "fuzz-sentinel",
                .event = (char *) "change",
                .headers = (char *) "{}",
                .body = (char *) "{\"type\":\"change\"}",
                .body_len = 17,
                .received_us = 1,
        };
        struct delivery *one = &sentinel;
        int fd;

        if (spool_decode(data, size, &d) == 0)
                delivery_free(d);

        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0 || write(fd, data, size) != (ssize_t) size)
                abort();
        close(fd);
        if (spool_open(dir, &s, &err) < 0 || spool_bytes(s) != size)
                abort();
        check_read(s, &before, &rep);
        if (spool_append(s, &one, 1, &err) < 0)
                abort();
        check_read(s, &after, &rep);
        /* The new record is read last, or lies in a longer record that checks out (the
         * input must then have carried its checksum), which adds bytes to those read. */
        if (!after.sentinel_last && after.bytes <= before.bytes) {
                fprintf(stderr, "the record appended after %zu bytes was not read back\n", size);
                abort();
        }
        if (spool_clear(s, &err) < 0 || spool_bytes(s) != 0)
                abort();
        spool_close(s);
        return 0;
}
