/* Unit tests for spool: the record encoding round trip, reopening, a torn last record cut
 * at every byte, a flipped bit at every byte of a record, records appended after a torn
 * one, and spool_decode on malformed payloads. */
#include "spool.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "delivery.h"
#include "error.h"
#include "fixture.h"
#include "source.h"

#include "check.h"

#define HEADER_LEN 12
#define MAX_SEEN 64

static char dir[64];
static char path[128];

/* What a spool_read() callback saw. */
struct seen {
        size_t n;
        char *ids[MAX_SEEN];
        bool bodies_ok;
        const struct delivery *want; /* when set, every field must equal want's */
};

static int collect(struct delivery *d, void *ctx) {
        struct seen *s = ctx;

        if (s->n < MAX_SEEN)
                s->ids[s->n] = strdup(d->delivery_id);
        s->n++;
        if (s->want && (d->source != s->want->source || d->body_len != s->want->body_len ||
                        memcmp(d->body, s->want->body, d->body_len) != 0 ||
                        strcmp(d->event, s->want->event) != 0 ||
                        strcmp(d->headers, s->want->headers) != 0 ||
                        d->received_us != s->want->received_us || d->body[d->body_len] != '\0'))
                s->bodies_ok = false;
        delivery_free(d);
        return 0;
}

static void seen_clear(struct seen *s) {
        for (size_t i = 0; i < s->n && i < MAX_SEEN; i++)
                free(s->ids[i]);
        *s = (struct seen) { .bodies_ok = true };
}

static struct delivery *make(const char *source, const char *id, const char *body) {
        struct delivery *d = calloc(1, sizeof(*d));

        d->source = source_find(source);
        d->delivery_id = strdup(id);
        d->event = strdup("push");
        d->headers = strdup("{\"X-GitHub-Event\":\"push\"}");
        d->body = strdup(body);
        d->body_len = strlen(body);
        d->received_us = 1732600000123456;
        return d;
}

/* A fresh spool holding records "r0".."r<n-1>"; returns the byte offset of each record
 * (offs[n] = the size). */
static struct spool *fresh(size_t n, uint64_t *offs) {
        struct spool *s = NULL;
        struct error err = { 0 };

        unlink(path);
        CHECK(spool_open(dir, &s, &err) == 0);
        CHECK(spool_bytes(s) == 0);
        for (size_t i = 0; i < n; i++) {
                char id[16], body[64];
                struct delivery *d;

                snprintf(id, sizeof(id), "r%zu", i);
                snprintf(body, sizeof(body), "{\"n\":%zu,\"pad\":\"%.*s\"}", i, (int) (i * 3),
                         "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
                d = make("github", id, body);
                if (offs)
                        offs[i] = spool_bytes(s);
                CHECK(spool_append(s, &d, 1, &err) == 0);
                delivery_free(d);
        }
        if (offs)
                offs[n] = spool_bytes(s);
        return s;
}

static struct spool *reopen(struct spool *s) {
        struct error err = { 0 };

        spool_close(s);
        s = NULL;
        CHECK(spool_open(dir, &s, &err) == 0);
        return s;
}

static size_t read_all(struct spool *s, struct seen *seen, struct spool_report *rep) {
        struct error err = { 0 };

        seen_clear(seen);
        CHECK(spool_read(s, collect, seen, rep, &err) == 0);
        return seen->n;
}

static void write_at(uint64_t off, const void *data, size_t n) {
        int fd = open(path, O_WRONLY);

        CHECK(fd >= 0 && pwrite(fd, data, n, (off_t) off) == (ssize_t) n);
        close(fd);
}

static uint8_t byte_at(uint64_t off) {
        uint8_t b = 0;
        int fd = open(path, O_RDONLY);

        CHECK(fd >= 0 && pread(fd, &b, 1, (off_t) off) == 1);
        close(fd);
        return b;
}

/* The CRC-32C (Castagnoli) of p, bit by bit, to hold the spool to the named checksum. */
static uint32_t crc32c_ref(const uint8_t *p, size_t n) {
        uint32_t c = 0xffffffffu;

        for (size_t i = 0; i < n; i++) {
                c ^= p[i];
                for (int k = 0; k < 8; k++)
                        c = (c >> 1) ^ (0x82f63b78u & (0u - (c & 1u)));
        }
        return ~c;
}

static uint32_t le32(const uint8_t *p) {
        return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 |
               (uint32_t) p[3] << 24;
}

static void test_round_trip(const char *fixtures) {
        char fx_path[512];
        struct spool *s = NULL;
        struct error err = { 0 };
        struct spool_report rep;
        struct seen seen = { .bodies_ok = true };
        struct delivery *d[3];
        size_t len;
        char *body;
        uint8_t *file;
        struct delivery *decoded = NULL;

        /* A real payload, with a header set and every source name. */
        snprintf(fx_path, sizeof(fx_path), "%s/github/push.branch.one-commit.json", fixtures);
        body = fixture_slurp(fx_path, &len);
        CHECK(body != NULL);
        if (!body)
                return;
        d[0] = make("github", "72d3162e-cc78-11e3-81ab-4c9367dc0958", body);
        d[1] = make("jenkins", "job/x/#7/COMPLETED", "{}");
        d[2] = make("generic", "k", "");           /* an empty body survives too */
        free(body);

        unlink(path);
        CHECK(spool_open(dir, &s, &err) == 0);
        CHECK(spool_append(s, d, 3, &err) == 0);
        CHECK(spool_bytes(s) > len);
        seen.want = d[0];
        CHECK(spool_read(s, collect, &seen, &rep, &err) == 0);
        CHECK(seen.n == 3);
        CHECK(rep.records == 3 && rep.damaged == 0 && rep.torn_bytes == 0 &&
              rep.skipped_bytes == 0);
        CHECK_STR(seen.ids[0], d[0]->delivery_id);
        CHECK_STR(seen.ids[1], d[1]->delivery_id);
        CHECK_STR(seen.ids[2], d[2]->delivery_id);

        /* The file is what the header says: magic "DLSP", length, CRC-32C of the payload;
         * and spool_decode() gives the delivery back from the payload alone. */
        file = (uint8_t *) fixture_slurp(path, &len);
        CHECK(file && len == spool_bytes(s));
        if (file) {
                uint32_t plen = le32(file + 4);

                CHECK(memcmp(file, "DLSP", 4) == 0);
                CHECK(HEADER_LEN + plen < len);
                CHECK(le32(file + 8) == crc32c_ref(file + HEADER_LEN, plen));
                CHECK(spool_decode(file + HEADER_LEN, plen, &decoded) == 0);
                CHECK(decoded && decoded->source == d[0]->source && decoded->body_len == d[0]->body_len &&
                      memcmp(decoded->body, d[0]->body, d[0]->body_len) == 0);
                CHECK(decoded && decoded->received_us == d[0]->received_us);
                CHECK_STR(decoded ? decoded->headers : NULL, d[0]->headers);
                delivery_free(decoded);
                /* Every shorter payload, and one with a byte more, is malformed. */
                for (uint32_t cut = 0; cut < plen; cut += 1 + cut / 8) {
                        decoded = NULL;
                        CHECK(spool_decode(file + HEADER_LEN, cut, &decoded) == -EBADMSG);
                        CHECK(decoded == NULL);
                }
                free(file);
        }
        /* The records survive a close and reopen, and appends go on after them. */
        s = reopen(s);
        CHECK(spool_append(s, &d[1], 1, &err) == 0);
        seen.want = NULL;
        CHECK(read_all(s, &seen, &rep) == 4 && rep.records == 4);
        CHECK(spool_clear(s, &err) == 0);
        CHECK(spool_bytes(s) == 0);
        CHECK(read_all(s, &seen, &rep) == 0 && rep.records == 0);
        s = reopen(s);
        CHECK(spool_bytes(s) == 0);
        spool_close(s);
        seen_clear(&seen);
        for (int i = 0; i < 3; i++)
                delivery_free(d[i]);
}

/* A crash in mid-append: the last record cut at every byte is reported torn, never
 * replayed, and every record before it is read. */
static void test_torn_tail(void) {
        uint64_t offs[5];
        struct spool *s = fresh(4, offs);
        struct spool_report rep;
        struct seen seen = { .bodies_ok = true };
        bool all = true;

        spool_close(s);
        /* Downwards, as each cut loses the bytes after it. */
        for (uint64_t cut = offs[4] - 1; cut > offs[3]; cut--) {
                CHECK(truncate(path, (off_t) cut) == 0);
                s = reopen(NULL);
                if (read_all(s, &seen, &rep) != 3 || rep.records != 3 || rep.damaged != 0 ||
                    rep.torn_bytes != cut - offs[3] || strcmp(seen.ids[2], "r2") != 0) {
                        all = false;
                        fprintf(stderr, "cut at %llu: %zu records, torn %llu, damaged %llu\n",
                                (unsigned long long) cut, seen.n,
                                (unsigned long long) rep.torn_bytes,
                                (unsigned long long) rep.damaged);
                }
                spool_close(s);
        }
        CHECK(all);
        seen_clear(&seen);
}

/* One flipped bit anywhere in a record (header or payload) loses that record alone. */
static void test_flipped_byte(void) {
        uint64_t offs[6];
        struct spool *s = fresh(5, offs);
        struct spool_report rep;
        struct seen seen = { .bodies_ok = true };
        bool all = true;

        spool_close(s);
        for (uint64_t off = offs[2]; off < offs[3]; off++) {
                uint8_t b = byte_at(off), flipped = b ^ 0x10;

                write_at(off, &flipped, 1);
                s = reopen(NULL);
                read_all(s, &seen, &rep);
                if (seen.n != 4 || rep.records != 4 || rep.damaged != 1 || rep.torn_bytes != 0 ||
                    rep.skipped_bytes != offs[3] - offs[2] || strcmp(seen.ids[1], "r1") != 0 ||
                    strcmp(seen.ids[2], "r3") != 0 || strcmp(seen.ids[3], "r4") != 0) {
                        all = false;
                        fprintf(stderr, "flip at %llu: %zu records, %llu damaged, %llu torn\n",
                                (unsigned long long) off, seen.n,
                                (unsigned long long) rep.damaged,
                                (unsigned long long) rep.torn_bytes);
                }
                spool_close(s);
                write_at(off, &b, 1);
        }
        CHECK(all);
        seen_clear(&seen);
}

/* A torn record is not always last: the daemon restarted after the crash appends after
 * it. Whatever is appended later is read, whichever byte the cut fell on. */
static void test_append_after_torn(void) {
        uint64_t offs[4];
        struct spool *s = fresh(3, offs);
        struct spool_report rep;
        struct seen seen = { .bodies_ok = true };
        struct error err = { 0 };
        bool all = true;

        spool_close(s);
        for (uint64_t cut = offs[2] + 1; cut < offs[3]; cut++) {
                struct delivery *d = make("gitlab", "after", "{\"x\":1}");

                s = fresh(3, NULL);
                spool_close(s);
                CHECK(truncate(path, (off_t) cut) == 0);
                s = reopen(NULL);
                CHECK(spool_append(s, &d, 1, &err) == 0);
                delivery_free(d);
                read_all(s, &seen, &rep);
                if (seen.n != 3 || rep.records != 3 || rep.damaged + (rep.torn_bytes > 0) != 1 ||
                    strcmp(seen.ids[2], "after") != 0) {
                        all = false;
                        fprintf(stderr, "append after a cut at %llu: %zu records (last %s)\n",
                                (unsigned long long) cut, seen.n,
                                seen.n ? seen.ids[seen.n > MAX_SEEN ? MAX_SEEN - 1 : seen.n - 1]
                                       : "-");
                }
                spool_close(s);
        }
        CHECK(all);
        seen_clear(&seen);
}

/* Garbage before, between and after records; a length field claiming more than the file. */
static void test_garbage(void) {
        uint64_t offs[4];
        struct spool *s = fresh(3, offs);
        struct spool_report rep;
        struct seen seen = { .bodies_ok = true };
        static const uint8_t huge_len[4] = { 0xff, 0xff, 0xff, 0x7f };

        /* Record 1's length says 2 GiB: damaged (over the limit), the others read. */
        write_at(offs[1] + 4, huge_len, 4);
        CHECK(read_all(s, &seen, &rep) == 2 && rep.damaged == 1 && rep.torn_bytes == 0);
        CHECK(seen.n == 2 && strcmp(seen.ids[0], "r0") == 0 && strcmp(seen.ids[1], "r2") == 0);
        spool_close(s);

        /* A file of zeros (a crash after the size grew but before the data landed). */
        s = fresh(0, NULL);
        spool_close(s);
        CHECK(truncate(path, 4096) == 0);
        s = reopen(NULL);
        CHECK(read_all(s, &seen, &rep) == 0 && rep.records == 0);
        CHECK(rep.damaged + (rep.torn_bytes > 0) >= 1);
        CHECK(rep.skipped_bytes + rep.torn_bytes == 4096);
        spool_close(s);

        /* Zeros, then a record: found wherever it starts, a magic straddling the reader's
         * 64 KiB blocks included. */
        for (uint64_t gap = 65530; gap <= 65541; gap++) {
                struct delivery *d = make("jira", "behind-zeros", "{}");
                struct error err = { 0 };

                s = fresh(0, NULL);
                spool_close(s);
                CHECK(truncate(path, (off_t) gap) == 0);
                s = reopen(NULL);
                CHECK(spool_append(s, &d, 1, &err) == 0);
                delivery_free(d);
                CHECK(read_all(s, &seen, &rep) == 1 && rep.damaged == 1 &&
                      rep.skipped_bytes == gap && rep.torn_bytes == 0);
                CHECK(seen.n == 1 && strcmp(seen.ids[0], "behind-zeros") == 0);
                spool_close(s);
        }
        seen_clear(&seen);
}

/* Reading in steps (the replay's chunks), with damage inside a step and records appended
 * between steps, reads every whole record once, in order. */
static void test_read_in_steps(void) {
        uint64_t offs[8], next = 0;
        struct spool *s = fresh(7, offs);
        struct spool_report rep, total = { 0 };
        struct seen seen = { .bodies_ok = true };
        struct error err = { 0 };
        static const uint8_t junk[3] = { 'D', 'L', 0 };
        int steps = 0;

        write_at(offs[3] + 20, junk, 3);                /* r3 is damaged */
        seen_clear(&seen);
        do {
                CHECK(spool_read_from(s, next, 2, collect, &seen, &rep, &next, &err) == 0);
                CHECK(rep.records <= 2);
                total.damaged += rep.damaged;
                total.records += rep.records;
                if (steps++ == 1) {                     /* an append between two steps */
                        struct delivery *d = make("github", "appended", "{}");

                        CHECK(spool_append(s, &d, 1, &err) == 0);
                        delivery_free(d);
                }
        } while (next < spool_bytes(s) && steps < 20);
        CHECK(next == spool_bytes(s));
        CHECK(total.records == 7 && total.damaged == 1 && seen.n == 7);
        CHECK(seen.n == 7 && strcmp(seen.ids[0], "r0") == 0 && strcmp(seen.ids[2], "r2") == 0 &&
              strcmp(seen.ids[3], "r4") == 0 && strcmp(seen.ids[5], "r6") == 0 &&
              strcmp(seen.ids[6], "appended") == 0);
        /* From the end there is nothing to read. */
        CHECK(spool_read_from(s, next, 2, collect, &seen, &rep, &next, &err) == 0);
        CHECK(rep.records == 0 && next == spool_bytes(s));
        spool_close(s);
        seen_clear(&seen);
}

/* spool_decode on hand-made payloads. */
static void test_decode(void) {
        static const uint8_t good[] = {
                1, 1, 0, 0, 0, 0, 0, 0, 0,                      /* version, received_us = 1 */
                6, 0, 0, 0, 'g', 'i', 't', 'l', 'a', 'b',       /* source */
                2, 0, 0, 0, 'i', 'd',                           /* delivery id */
                1, 0, 0, 0, 'e',                                /* event */
                2, 0, 0, 0, '{', '}',                           /* headers */
                2, 0, 0, 0, '{', '}',                           /* body */
        };
        uint8_t bad[sizeof(good)];
        struct delivery *d = NULL;

        CHECK(spool_decode(good, sizeof(good), &d) == 0);
        CHECK(d && d->received_us == 1 && d->body_len == 2);
        CHECK_STR(d ? d->source->name : NULL, "gitlab");
        CHECK_STR(d ? d->delivery_id : NULL, "id");
        delivery_free(d);

        memcpy(bad, good, sizeof(good));
        bad[0] = 2;                                     /* unknown version */
        d = NULL;
        CHECK(spool_decode(bad, sizeof(bad), &d) == -EBADMSG && !d);
        memcpy(bad, good, sizeof(good));
        bad[13] = 'x';                                  /* unknown source "xitlab" */
        CHECK(spool_decode(bad, sizeof(bad), &d) == -EBADMSG && !d);
        memcpy(bad, good, sizeof(good));
        bad[24] = '\0';                                 /* a NUL inside the id */
        CHECK(spool_decode(bad, sizeof(bad), &d) == -EBADMSG && !d);
        memcpy(bad, good, sizeof(good));
        bad[sizeof(bad) - 6] = 0xff;                    /* body length past the end */
        CHECK(spool_decode(bad, sizeof(bad), &d) == -EBADMSG && !d);
        bad[sizeof(bad) - 6] = 1;                       /* body shorter: a byte left over */
        CHECK(spool_decode(bad, sizeof(bad), &d) == -EBADMSG && !d);
        CHECK(spool_decode(good, 0, &d) == -EBADMSG && !d);
}

int main(int argc, char **argv) {
        const char *fixtures = argc > 1 ? argv[1] : "tests/fixtures";

        snprintf(dir, sizeof(dir), "/tmp/doraloop-spool-XXXXXX");
        if (!mkdtemp(dir)) {
                perror("mkdtemp");
                return 1;
        }
        snprintf(path, sizeof(path), "%s/spool.log", dir);

        test_round_trip(fixtures);
        test_torn_tail();
        test_flipped_byte();
        test_append_after_torn();
        test_garbage();
        test_read_in_steps();
        test_decode();

        unlink(path);
        rmdir(dir);
        return check_summary();
}
