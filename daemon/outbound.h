/* outbound: one HTTP request to a product-discovery target (daemon/target.h) over libcurl,
 * bounded in time, with its answer kept in memory. The only place the daemon speaks HTTP
 * as a client. */
#pragma once

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#define OUTBOUND_ANSWER_MAX (64 * 1024)         /* bytes of an answer body kept */

struct outbound_request {
        const char *url;
        const char *const *headers;     /* "Name: value" lines, n_headers of them */
        int n_headers;
        const char *body;               /* POSTed as is */
        size_t body_len;
        const char *userpwd;            /* "user:password" for basic auth, or NULL */
        long timeout_s;                 /* the whole exchange */
        atomic_bool *stop;              /* set: the attempt is abandoned (shutdown); or NULL */
};

struct outbound_answer {
        long status;                    /* the HTTP status; 0: no answer (error says why) */
        char *body;                     /* NUL-terminated, at most OUTBOUND_ANSWER_MAX bytes */
        size_t body_len;
        char error[256];                /* when status is 0 */
};

/* Once, before any thread sends: curl_global_init(). Returns 0 or -EIO. */
int outbound_init(void);

/* POSTs rq and fills *ret (the caller frees it with outbound_answer_free(), whatever the
 * result). Returns 0 when an answer came (any status), -EIO when none did (connection,
 * timeout: ret->error), -ENOMEM. Thread-safe. */
int outbound_post(const struct outbound_request *rq, struct outbound_answer *ret);

void outbound_answer_free(struct outbound_answer *a);
