/* reply: negative errno to HTTP status (the one table) and JSON error bodies. */
#include "reply.h"

#include <errno.h>

#include "../lib/doc.h"
#include "../lib/error.h"

unsigned reply_status(int r) {
        switch (r) {
        case 0: return 200;
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
