/* spool_seeds: writes fuzz_spool's seed corpus with the real encoder: one spool file per
 * fixture (a record holding it), one per source holding a record of each of its first
 * fixtures, and copies of that one cut mid-record and with a flipped byte.
 *   spool_seeds FIXTURES OUTDIR     (OUTDIR must exist; it gets OUTDIR/.work/ too) */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "delivery.h"
#include "error.h"
#include "fixture.h"
#include "source.h"
#include "spool.h"

#define PER_SOURCE 4

static char work[1024], log_path[1100];
static const char *out;
static int failures;

static struct delivery *make(const char *source, const char *name, char *body, size_t len) {
        struct delivery *d = calloc(1, sizeof(*d));

        if (!d)
                return NULL;
        d->source = source_find(source);
        d->delivery_id = strdup(name);
        d->event = strdup("seed");
        d->headers = strdup("{\"Content-Type\":\"application/json\"}");
        d->body = body;
        d->body_len = len;
        d->received_us = 1732600000000000;
        return d;
}

/* Writes ds as a fresh spool and moves it to OUTDIR/name. */
static void emit(struct delivery **ds, size_t n, const char *name) {
        struct spool *s = NULL;
        struct error err = { 0 };
        char dest[1400];

        unlink(log_path);
        if (spool_open(work, &s, &err) < 0 || spool_append(s, ds, n, &err) < 0) {
                fprintf(stderr, "spool_seeds: %s: %s\n", name, err.msg);
                failures++;
        }
        spool_close(s);
        snprintf(dest, sizeof(dest), "%s/%s", out, name);
        if (rename(log_path, dest) < 0) {
                perror(dest);
                failures++;
        }
}

struct source_batch {
        char source[32];
        struct delivery *ds[PER_SOURCE];
        size_t n;
};

static void flush(struct source_batch *b) {
        char name[128], src[1400], dest[1400];
        size_t len;
        char *data;
        int fd;

        if (b->n == 0)
                return;
        snprintf(name, sizeof(name), "%s.several", b->source);
        emit(b->ds, b->n, name);
        snprintf(src, sizeof(src), "%s/%s", out, name);
        data = fixture_slurp(src, &len);
        if (data && len > 40) {
                snprintf(dest, sizeof(dest), "%s/%s.torn", out, b->source);
                fd = open(dest, O_WRONLY | O_CREAT | O_TRUNC, 0644);
                if (fd < 0 || write(fd, data, len - len / 3) < 0)
                        failures++;
                if (fd >= 0)
                        close(fd);
                data[len / 2] ^= 0x10;
                snprintf(dest, sizeof(dest), "%s/%s.flipped", out, b->source);
                fd = open(dest, O_WRONLY | O_CREAT | O_TRUNC, 0644);
                if (fd < 0 || write(fd, data, len) < 0)
                        failures++;
                if (fd >= 0)
                        close(fd);
        }
        free(data);
        for (size_t i = 0; i < b->n; i++)
                delivery_free(b->ds[i]);
        b->n = 0;
}

static void one(const char *source, const char *dir, const char *name, void *ctx) {
        struct source_batch *b = ctx;
        char path[2048], seed[256];
        struct delivery *d;
        size_t len;
        char *body;

        if (strcmp(b->source, source) != 0) {
                flush(b);
                snprintf(b->source, sizeof(b->source), "%s", source);
        }
        snprintf(path, sizeof(path), "%s/%s", dir, name);
        body = fixture_slurp(path, &len);
        d = body ? make(source, name, body, len) : NULL;
        if (!d) {
                free(body);
                failures++;
                return;
        }
        snprintf(seed, sizeof(seed), "%s.%s", source, name);
        emit(&d, 1, seed);
        if (b->n < PER_SOURCE)
                b->ds[b->n++] = d;
        else
                delivery_free(d);
}

int main(int argc, char **argv) {
        struct source_batch b = { .n = 0 };

        if (argc != 3) {
                fprintf(stderr, "usage: spool_seeds FIXTURES OUTDIR\n");
                return 2;
        }
        out = argv[2];
        snprintf(work, sizeof(work), "%s/.work", out);
        snprintf(log_path, sizeof(log_path), "%s/spool.log", work);
        if (fixture_walk(argv[1], one, &b) == 0) {
                fprintf(stderr, "spool_seeds: no fixtures in %s\n", argv[1]);
                return 1;
        }
        flush(&b);
        unlink(log_path);
        rmdir(work);
        return failures ? 1 : 0;
}
