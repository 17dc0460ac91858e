/* spool: an append-only, checksummed, fsync'd file of deliveries awaiting PostgreSQL. */
#include "spool.h"

#include <errno.h>
#include <fcntl.h>
#include <isa-l/crc.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "delivery.h"
#include "error.h"
#include "source.h"

#define SPOOL_MAGIC 0x50534c44u         /* "DLSP" read as a little-endian u32 */
#define SPOOL_VERSION 1
#define HEADER_LEN 12
#define RESYNC_BLOCK 65536
#define PAYLOAD_MAX (600u << 20)        /* above max_body_bytes' own limit, plus headers */

struct spool {
        int fd;
        char *path;
        uint64_t bytes;
};

static uint32_t crc32c(const uint8_t *p, size_t n) {
        /* isa-l's crc32_iscsi() is CRC32C without the final inversion. */
        return ~crc32_iscsi((unsigned char *) p, (int) n, 0xffffffffu);
}

static void put_u32(uint8_t *p, uint32_t v) {
        p[0] = (uint8_t) v, p[1] = (uint8_t) (v >> 8), p[2] = (uint8_t) (v >> 16);
        p[3] = (uint8_t) (v >> 24);
}

static uint32_t get_u32(const uint8_t *p) {
        return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 |
               (uint32_t) p[3] << 24;
}

int spool_open(const char *dir, struct spool **ret_spool, struct error *err) {
        struct spool *s = calloc(1, sizeof(*s));
        struct stat st;
        int dfd;

        if (!s)
                return -ENOMEM;
        if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
                int r = error_set(err, errno, "unavailable", "spool_dir",
                                  "Cannot create spool directory '%s': %s", dir, strerror(errno));
                free(s);
                return r;
        }
        if (asprintf(&s->path, "%s/spool.log", dir) < 0) {
                free(s);
                return -ENOMEM;
        }
        s->fd = open(s->path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (s->fd < 0 || fstat(s->fd, &st) < 0) {
                int r = error_set(err, errno, "unavailable", "spool_dir",
                                  "Cannot open spool '%s': %s", s->path, strerror(errno));
                spool_close(s);
                return r;
        }
        s->bytes = (uint64_t) st.st_size;
        /* The file's name must survive a crash too. */
        dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
                (void) fsync(dfd);
                close(dfd);
        }
        *ret_spool = s;
        return 0;
}

struct spool *spool_close(struct spool *s) {
        if (!s)
                return NULL;
        if (s->fd >= 0)
                close(s->fd);
        free(s->path);
        free(s);
        return NULL;
}

uint64_t spool_bytes(const struct spool *s) {
        return s->bytes;
}

static int put_string(struct buf *b, const char *str, size_t len) {
        uint8_t n[4];

        put_u32(n, (uint32_t) len);
        if (buf_append(b, n, 4) < 0 || buf_append(b, str ? str : "", len) < 0)
                return -ENOMEM;
        return 0;
}

static int encode(struct buf *b, const struct delivery *d) {
        uint8_t head[HEADER_LEN], *p;
        size_t start = b->len;
        uint64_t received = (uint64_t) d->received_us;
        uint8_t misc[9];

        misc[0] = SPOOL_VERSION;
        for (int i = 0; i < 8; i++)
                misc[1 + i] = (uint8_t) (received >> (8 * i));
        memset(head, 0, sizeof(head));
        if (buf_append(b, head, sizeof(head)) < 0 || buf_append(b, misc, sizeof(misc)) < 0 ||
            put_string(b, d->source->name, strlen(d->source->name)) < 0 ||
            put_string(b, d->delivery_id, strlen(d->delivery_id)) < 0 ||
            put_string(b, d->event, strlen(d->event)) < 0 ||
            put_string(b, d->headers, d->headers ? strlen(d->headers) : 0) < 0 ||
            put_string(b, d->body, d->body_len) < 0)
                return -ENOMEM;
        p = (uint8_t *) b->data + start;
        put_u32(p, SPOOL_MAGIC);
        put_u32(p + 4, (uint32_t) (b->len - start - HEADER_LEN));
        put_u32(p + 8, crc32c(p + HEADER_LEN, b->len - start - HEADER_LEN));
        return 0;
}

int spool_append(struct spool *s, struct delivery *const *ds, size_t n, struct error *err) {
        struct buf b;
        size_t off = 0;
        int r = 0;

        buf_init(&b, SIZE_MAX - 1);
        for (size_t i = 0; i < n && r == 0; i++)
                r = encode(&b, ds[i]);
        if (r < 0) {
                buf_free(&b);
                return error_set(err, ENOMEM, "unavailable", NULL, "Out of memory");
        }
        while (off < b.len) {
                ssize_t w = write(s->fd, b.data + off, b.len - off);

                if (w < 0 && errno == EINTR)
                        continue;
                if (w <= 0) {
                        r = error_set(err, w < 0 ? errno : EIO, "unavailable", NULL,
                                      "Cannot write spool '%s': %s", s->path,
                                      strerror(w < 0 ? errno : EIO));
                        break;
                }
                off += (size_t) w;
        }
        if (r == 0 && fdatasync(s->fd) < 0)
                r = error_set(err, errno, "unavailable", NULL, "Cannot sync spool '%s': %s",
                              s->path, strerror(errno));
        if (r < 0) {
                /* Leave no partial batch behind: none of it was acknowledged. If even that
                 * fails, keep reading to the real end: its records are checksummed, and
                 * storing an unacknowledged delivery later loses nothing. */
                struct stat st;

                if (ftruncate(s->fd, (off_t) s->bytes) < 0 && fstat(s->fd, &st) == 0)
                        s->bytes = (uint64_t) st.st_size;
        } else {
                s->bytes += b.len;
        }
        buf_free(&b);
        return r;
}

static int get_string(const uint8_t **p, const uint8_t *end, char **ret, size_t *ret_len) {
        uint32_t n;

        if (end - *p < 4)
                return -EBADMSG;
        n = get_u32(*p);
        *p += 4;
        if ((size_t) (end - *p) < n || memchr(*p, '\0', n))
                return -EBADMSG;
        *ret = malloc((size_t) n + 1);
        if (!*ret)
                return -ENOMEM;
        memcpy(*ret, *p, n);
        (*ret)[n] = '\0';
        if (ret_len)
                *ret_len = n;
        *p += n;
        return 0;
}

int spool_decode(const uint8_t *payload, size_t len, struct delivery **ret_delivery) {
        const uint8_t *p = payload, *end = payload + len;
        struct delivery *d;
        char *source = NULL;
        uint64_t received = 0;
        int r;

        if (len < 9 || p[0] != SPOOL_VERSION)
                return -EBADMSG;
        for (int i = 0; i < 8; i++)
                received |= (uint64_t) p[1 + i] << (8 * i);
        p += 9;
        d = calloc(1, sizeof(*d));
        if (!d)
                return -ENOMEM;
        d->received_us = (int64_t) received;
        r = get_string(&p, end, &source, NULL);
        if (r == 0)
                r = (d->source = source_find(source)) ? 0 : -EBADMSG;
        free(source);
        if (r == 0)
                r = get_string(&p, end, &d->delivery_id, NULL);
        if (r == 0)
                r = get_string(&p, end, &d->event, NULL);
        if (r == 0)
                r = get_string(&p, end, &d->headers, NULL);
        if (r == 0)
                r = get_string(&p, end, &d->body, &d->body_len);
        if (r == 0 && p != end)
                r = -EBADMSG;
        if (r < 0) {
                delivery_free(d);
                return r;
        }
        *ret_delivery = d;
        return 0;
}

/* Reads exactly n bytes at off; returns how many it got (short at the end). */
static size_t read_at(int fd, void *buf, size_t n, uint64_t off) {
        size_t got = 0;

        while (got < n) {
                ssize_t r = pread(fd, (char *) buf + got, n - got, (off_t) (off + got));

                if (r < 0 && errno == EINTR)
                        continue;
                if (r <= 0)
                        break;
                got += (size_t) r;
        }
        return got;
}

/* Whether a record starting at off checks out: a header, a length that fits, the CRC.
 * Returns 1, 0, or -ENOMEM. */
static int record_at(int fd, uint64_t off, uint64_t size) {
        uint8_t head[HEADER_LEN], *payload;
        uint32_t len;
        bool ok;

        if (read_at(fd, head, HEADER_LEN, off) != HEADER_LEN || get_u32(head) != SPOOL_MAGIC)
                return 0;
        len = get_u32(head + 4);
        if (len > PAYLOAD_MAX || off + HEADER_LEN + len > size)
                return 0;
        payload = malloc(len ? len : 1);
        if (!payload)
                return -ENOMEM;
        ok = read_at(fd, payload, len, off + HEADER_LEN) == len &&
             crc32c(payload, len) == get_u32(head + 8);
        free(payload);
        return ok;
}

/* After damage: sets *ret_next to the offset of the next record that checks out, or to
 * size. Looks for the magic a block at a time (a byte at a time took one pread per byte
 * of damage: minutes for a zero-filled tail of a few hundred MB). Returns 0 or -ENOMEM,
 * which must not pass for "nothing follows": the caller would clear those records. */
static int resync(int fd, uint64_t from, uint64_t size, uint64_t *ret_next) {
        static const uint8_t magic[4] = { 'D', 'L', 'S', 'P' };        /* SPOOL_MAGIC */
        uint8_t *block = malloc(RESYNC_BLOCK);
        uint64_t off = from;
        int r = 0;

        if (!block)
                return -ENOMEM;
        *ret_next = size;
        while (off + HEADER_LEN <= size) {
                size_t got = read_at(fd, block, (size_t) (size - off < RESYNC_BLOCK
                                                          ? size - off : RESYNC_BLOCK), off);
                const uint8_t *hit = got >= 4 ? memmem(block, got, magic, 4) : NULL;

                if (got < 4)
                        break;
                if (!hit) {
                        off += got - 3; /* a magic may straddle two blocks */
                        continue;
                }
                off += (uint64_t) (hit - block);
                if (off + HEADER_LEN > size)
                        break;
                r = record_at(fd, off, size);
                if (r != 0)
                        break;
                off++;
        }
        if (r > 0)
                *ret_next = off;
        free(block);
        return r < 0 ? r : 0;
}

int spool_read(struct spool *s, int (*fn)(struct delivery *d, void *ctx), void *ctx,
               struct spool_report *report, struct error *err) {
        uint64_t next;

        return spool_read_from(s, 0, SIZE_MAX, fn, ctx, report, &next, err);
}

int spool_read_from(struct spool *s, uint64_t from, size_t max_records,
                    int (*fn)(struct delivery *d, void *ctx), void *ctx,
                    struct spool_report *report, uint64_t *ret_next, struct error *err) {
        struct spool_report rep = { 0 };
        uint64_t off = from, size = s->bytes;
        int r = 0;

        while (off < size && rep.records < max_records) {
                uint8_t head[HEADER_LEN], *payload;
                struct delivery *d = NULL;
                uint32_t len;

                if (size - off < HEADER_LEN) {
                        rep.torn_bytes = size - off;
                        off = size;
                        break;
                }
                if (read_at(s->fd, head, HEADER_LEN, off) != HEADER_LEN) {
                        r = error_set(err, EIO, "unavailable", NULL, "Cannot read spool '%s'",
                                      s->path);
                        break;
                }
                len = get_u32(head + 4);
                if (get_u32(head) != SPOOL_MAGIC || len > PAYLOAD_MAX) {
                        uint64_t next;

                        if (resync(s->fd, off + 1, size, &next) < 0) {
                                r = error_set(err, ENOMEM, "unavailable", NULL, "Out of memory");
                                break;
                        }
                        rep.damaged++;
                        rep.skipped_bytes += next - off;
                        off = next;
                        continue;
                }
                if (size - off - HEADER_LEN < len) {
                        /* Torn only if nothing good follows: a damaged length can point
                         * past the end, and a daemon restarted after a crash appends its
                         * records after the torn one. Stopping here would let them be
                         * cleared unread once the rest is replayed. */
                        uint64_t next;

                        if (resync(s->fd, off + 1, size, &next) < 0) {
                                r = error_set(err, ENOMEM, "unavailable", NULL, "Out of memory");
                                break;
                        }
                        if (next == size) {
                                rep.torn_bytes = size - off;
                                off = size;
                                break;
                        }
                        rep.damaged++;
                        rep.skipped_bytes += next - off;
                        off = next;
                        continue;
                }
                payload = malloc(len ? len : 1);
                if (!payload) {
                        r = error_set(err, ENOMEM, "unavailable", NULL, "Out of memory");
                        break;
                }
                if (read_at(s->fd, payload, len, off + HEADER_LEN) != len) {
                        free(payload);
                        r = error_set(err, EIO, "unavailable", NULL, "Cannot read spool '%s'",
                                      s->path);
                        break;
                }
                r = crc32c(payload, len) == get_u32(head + 8) ? spool_decode(payload, len, &d)
                                                                 : -EBADMSG;
                free(payload);
                if (r == -EBADMSG) {
                        /* The length may be what was damaged: look for the next record. */
                        uint64_t next;

                        r = resync(s->fd, off + 1, size, &next);
                        if (r < 0) {
                                r = error_set(err, ENOMEM, "unavailable", NULL, "Out of memory");
                                break;
                        }
                        rep.damaged++;
                        rep.skipped_bytes += next - off;
                        off = next;
                        continue;
                }
                if (r < 0) {
                        r = error_set(err, -r, "unavailable", NULL, "Out of memory");
                        break;
                }
                rep.records++;
                off += HEADER_LEN + len;
                r = fn(d, ctx);
                if (r < 0)
                        break;
        }
        if (report)
                *report = rep;
        *ret_next = off;
        return r;
}

int spool_clear(struct spool *s, struct error *err) {
        if (ftruncate(s->fd, 0) < 0 || fsync(s->fd) < 0)
                return error_set(err, errno, "unavailable", NULL, "Cannot empty spool '%s': %s",
                                 s->path, strerror(errno));
        s->bytes = 0;
        return 0;
}
