/* reply: negative errno to HTTP status (the one table), JSON error bodies, and the two
 * failures every handler shares. */
#include "reply.h"

#include <errno.h>
#include <stdio.h>

#include "../lib/doc.h"
#include "../lib/error.h"
#include "log.h"

unsigned reply_status(int r) {
        switch (r) {
        case 0: return 200;
        case REPLY_MARKDOWN: return 200;
        case REPLY_JSON_TEXT: return 200;
        case REPLY_ACCEPTED: return 202;
        case -EBADMSG: return 400;
        case -EACCES: return 401;
        case -ENOENT: return 404;
        case -EOPNOTSUPP: return 405;
        case -EBUSY: return 409;
        case -E2BIG: return 413;
        case -EMEDIUMTYPE: return 415;
        case -ENOSYS: return 501;
        default: return 503;
        }
}

json_t *reply_error_body(const struct error *err) {
        return doc_error(err->code ? err->code : "unavailable", "%s",
                         err->msg[0] ? err->msg : "Out of memory");
}

int reply_oom(struct error *err) {
        return error_set(err, ENOMEM, "unavailable", NULL, "Out of memory");
}

int reply_unavailable(struct error *err, const struct error *cause, const char *what) {
        char msg[sizeof(cause->msg)];

        snprintf(msg, sizeof(msg), "%s", cause->msg[0] ? cause->msg : "Out of memory");
        log_warning("Failed to answer %s: %s", what, msg);
        return error_set(err, EIO, "unavailable", NULL, "%s", msg);
}
