/* error: filling struct error. */
#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "utf8.h"

int error_set(struct error *err, int errnum, const char *code, const char *field,
              const char *fmt, ...) {
        if (err) {
                va_list ap;

                err->code = code;
                err->field = field;
                va_start(ap, fmt);
                vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
                va_end(ap);
                /* Cut at its size, it may end inside a character; PostgreSQL would refuse
                 * such text (22021) wherever the message is stored. */
                err->msg[utf8_cut(err->msg, strlen(err->msg))] = '\0';
        }
        return errnum > 0 ? -errnum : errnum;
}
