/* error: filling struct error. */
#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A message cut at msg's size may end inside a UTF-8 character; PostgreSQL would refuse
 * such text (22021) wherever the message is stored, so the cut goes back to a boundary. */
static void cut_at_character(char *msg, size_t size) {
        size_t n = strlen(msg), start;

        if (n + 1 < size)
                return;                 /* not cut */
        start = n;
        while (start > 0 && ((unsigned char) msg[start - 1] & 0xc0) == 0x80)
                start--;                /* back over continuation bytes */
        if (start > 0 && (unsigned char) msg[start - 1] >= 0xc0) {
                unsigned char lead = (unsigned char) msg[start - 1];
                size_t want = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : 2;

                if (n - (start - 1) < want)
                        msg[start - 1] = '\0';  /* the last character is incomplete */
        }
}

int error_set(struct error *err, int errnum, const char *code, const char *field,
              const char *fmt, ...) {
        if (err) {
                va_list ap;

                err->code = code;
                err->field = field;
                va_start(ap, fmt);
                vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
                va_end(ap);
                cut_at_character(err->msg, sizeof(err->msg));
        }
        return errnum > 0 ? -errnum : errnum;
}
