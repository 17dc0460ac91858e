/* error: human detail about a failure, filled by lib/ and logged once by daemon/. */
#pragma once

struct error {
        const char *code;       /* API error code, e.g. "bad_signature"; static string */
        const char *field;      /* the input field or key at fault, or NULL; static string */
        char msg[256];
};

/* Fills err (which may be NULL) and returns -errnum, so callers can
 * `return error_set(err, -EBADMSG, "invalid_json", NULL, "...")`. */
int error_set(struct error *err, int errnum, const char *code, const char *field,
              const char *fmt, ...) __attribute__((format(printf, 5, 6)));
