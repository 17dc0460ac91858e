/* client: HTTP to the daemon with libcurl: one request and its answer, or a streamed
 * upload whose body a producer makes as it goes. The only file that sees libcurl. */
#pragma once

#include <jansson.h>
#include <stddef.h>
#include <sys/types.h>

#include "ctl.h"

/* The most of an answer kept (an answer is JSON, or a review's Markdown). */
#define CLIENT_ANSWER_MAX (64u << 20)

struct client_answer {
        long status;            /* the HTTP status; 0 when no answer came */
        char *body;             /* NUL-terminated */
        size_t len;
        json_t *doc;            /* body parsed, or NULL when it is not JSON */
};

/* Writes up to max bytes of the body into buf; returns how many, 0 at its end, or -1 on an
 * error (the producer has said why on stderr). */
typedef ssize_t (*client_producer)(void *arg, char *buf, size_t max);

/* Called about ten times a second during a transfer, for progress. */
typedef void (*client_tick)(void *arg);

/* One request: method and path (with its query, already escaped) below c->url, an optional
 * body of content_type, the token of kind tk when one is set. Returns 0 and the answer
 * (whatever its status), or -1 when none came, with errbuf saying why. */
int client_call(const struct ctl *c, const char *method, const char *path, enum ctl_token tk,
                const char *body, const char *content_type, struct client_answer *ret,
                char *errbuf, size_t errlen) __attribute__((warn_unused_result));

/* A POST whose body produce() makes, sent chunked as it is made; tick() (may be NULL) is
 * called on the way. Returns as client_call(). */
int client_upload(const struct ctl *c, const char *path, enum ctl_token tk,
                  const char *content_type, client_producer produce, void *arg,
                  client_tick tick, void *tick_arg, struct client_answer *ret, char *errbuf,
                  size_t errlen) __attribute__((warn_unused_result));

/* s escaped for a path segment or a query value; malloc'd, NULL on OOM. */
char *client_escape(const char *s);

/* Frees what the answer holds; it may be reused. */
void client_answer_free(struct client_answer *a);

/* Prints an answer that is not a success: "doraloopctl: what: HTTP 404 not_found: No such
 * endpoint" on stderr (and the body on stdout under --json). Returns CTL_ERROR. */
int client_print_failure(const struct ctl *c, const char *what, const struct client_answer *a);
