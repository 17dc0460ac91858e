/* http: the HTTP server (libmicrohttpd, epoll, internal thread pool): routing, webhook
 * intake up to the writer queue, and the JSON replies. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

struct api;
struct config_live;
struct http;
struct writer;

struct http_options {
        struct config_live *live;       /* borrowed for the server's lifetime */
        struct writer *writer;
        const struct api *api;
        int listen_fd;          /* an inherited listening socket, or -1 to bind cfg->listen */
};

/* Starts serving. Returns 0 and the server, or a negative errno with errbuf filled. */
int http_start(const struct http_options *o, struct http **ret_http, char *errbuf, size_t errlen)
        __attribute__((warn_unused_result));

/* The listening socket, for the watchdog's self-probe; -1 once draining. The server keeps
 * ownership. */
int http_listen_fd(struct http *h);

/* Stops accepting connections and waits (up to timeout_ms) for requests in flight to be
 * answered. Returns true when none is left. */
bool http_drain(struct http *h, int timeout_ms);

/* Closes every connection and frees the server; NULL-safe, returns NULL. */
struct http *http_stop(struct http *h);
