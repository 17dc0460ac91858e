/* hook: header lookup on a received webhook request. */
#include "hook.h"

#include <strings.h>

const char *hook_header(const struct hook_request *req, const char *name) {
        for (size_t i = 0; i < req->n_headers; i++)
                if (strcasecmp(req->headers[i].name, name) == 0)
                        return req->headers[i].value;
        return NULL;
}
