/* error: filling struct error. */
#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

int error_set(struct error *err, int errnum, const char *code, const char *field,
              const char *fmt, ...) {
        if (err) {
                va_list ap;

                err->code = code;
                err->field = field;
                va_start(ap, fmt);
                vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
                va_end(ap);
        }
        return errnum > 0 ? -errnum : errnum;
}
