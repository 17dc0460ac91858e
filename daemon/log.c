/* log: journald or stderr, chosen once at start. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
/* We send CODE_FILE/LINE/FUNC of the caller ourselves; without this, sd_journal_sendv() is a
 * macro that adds log.c's own location as a second value of each. */
#define SD_JOURNAL_SUPPRESS_LOCATION
#include <systemd/sd-journal.h>
#include <sys/uio.h>
#include <unistd.h>

#include "../lib/utf8.h"

static bool to_journal;

void log_open(void) {
        /* systemd sets JOURNAL_STREAM to the device:inode of the stream it connected; only
         * if stderr is still that stream do we talk to journald directly. */
        const char *js = getenv("JOURNAL_STREAM");
        unsigned long long dev, ino;
        struct stat st;
        char *end;

        to_journal = false;
        if (!js || fstat(STDERR_FILENO, &st) < 0)
                return;
        dev = strtoull(js, &end, 10);
        if (*end != ':')
                return;
        ino = strtoull(end + 1, &end, 10);
        to_journal = !*end && dev == (unsigned long long) st.st_dev &&
                     ino == (unsigned long long) st.st_ino;
}

/* Copies src into dst (size > 0) with control characters and bytes that are not UTF-8
 * written as \\xHH: a value from a request can then neither start a forged line
 * ("\\n<0>...") nor drive a terminal (C0, DEL, and C1, which some terminals take as
 * escapes). Cuts at size between characters, never inside one or an escape. */
static void escape(char *dst, size_t size, const char *src) {
        static const char hex[] = "0123456789abcdef";
        size_t o = 0;

        for (const char *p = src; *p;) {
                size_t n = utf8_char_len(p);
                unsigned char c = (unsigned char) *p;

                if (n == 2 && c == 0xc2 && (unsigned char) p[1] <= 0x9f)
                        c = (unsigned char) p[1];               /* C1: its code point */
                else if (n == 1 && (c < 0x20 || c == 0x7f))
                        ;                                       /* C0, DEL */
                else if (n > 0) {
                        if (o + n >= size)
                                break;
                        memcpy(dst + o, p, n);
                        o += n;
                        p += n;
                        continue;
                } else
                        n = 1;                                  /* not UTF-8: the byte */
                if (o + 4 >= size)
                        break;
                dst[o++] = '\\';
                dst[o++] = 'x';
                dst[o++] = hex[c >> 4];
                dst[o++] = hex[c & 15];
                p += n;
        }
        dst[o] = '\0';
}

static void add_field(struct iovec *iov, int *n, char *storage, size_t size, const char *name,
                      const char *value) {
        char clean[600];
        int len;

        if (!value)
                return;
        escape(clean, sizeof(clean), value);
        len = snprintf(storage, size, "%s=%s", name, clean);
        if (len < 0)
                return;
        iov[*n].iov_base = storage;
        iov[*n].iov_len = (size_t) len < size ? (size_t) len : size - 1;
        (*n)++;
}

void log_full(int priority, const struct log_fields *f, const char *file, int line,
              const char *func, const char *fmt, ...) {
        char raw[1024], msg[4 * sizeof(raw)];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(raw, sizeof(raw), fmt, ap);
        va_end(ap);
        escape(msg, sizeof(msg), raw);

        if (to_journal) {
                char b[10][600], num[16];
                struct iovec iov[10];
                int n = 0;

                snprintf(num, sizeof(num), "%d", priority);
                add_field(iov, &n, b[n], sizeof(b[0]), "MESSAGE", msg);
                add_field(iov, &n, b[n], sizeof(b[0]), "PRIORITY", num);
                add_field(iov, &n, b[n], sizeof(b[0]), "CODE_FILE", file);
                snprintf(num, sizeof(num), "%d", line);
                add_field(iov, &n, b[n], sizeof(b[0]), "CODE_LINE", num);
                add_field(iov, &n, b[n], sizeof(b[0]), "CODE_FUNC", func);
                if (f) {
                        add_field(iov, &n, b[n], sizeof(b[0]), "SOURCE", f->source);
                        add_field(iov, &n, b[n], sizeof(b[0]), "DELIVERY_ID", f->delivery_id);
                        add_field(iov, &n, b[n], sizeof(b[0]), "EVENT", f->event);
                        add_field(iov, &n, b[n], sizeof(b[0]), "STATUS", f->status);
                }
                if (sd_journal_sendv(iov, n) >= 0)
                        return;
        }
        if (f && (f->source || f->delivery_id)) {
                char source[256], delivery[600], status[64];

                escape(source, sizeof(source), f->source ? f->source : "-");
                escape(delivery, sizeof(delivery), f->delivery_id ? f->delivery_id : "-");
                escape(status, sizeof(status), f->status ? f->status : "");
                fprintf(stderr, "<%d>%s (source=%s delivery=%s%s%s)\n", priority, msg, source,
                        delivery, f->status ? " status=" : "", status);
        } else
                fprintf(stderr, "<%d>%s\n", priority, msg);
}

bool log_ratelimit_pass(struct log_ratelimit *rl, int *ret_suppressed) {
        time_t now = time(NULL);

        if (now - rl->start >= rl->interval) {
                *ret_suppressed = rl->suppressed;
                rl->start = now;
                rl->count = 0;
                rl->suppressed = 0;
        } else {
                *ret_suppressed = 0;
        }
        if (rl->count < rl->burst) {
                rl->count++;
                return true;
        }
        rl->suppressed++;
        return false;
}
