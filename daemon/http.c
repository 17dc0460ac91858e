/* http: the HTTP server: routing, webhook intake up to the writer queue, JSON replies.
 * A webhook request is suspended while its delivery waits for a group commit, so no HTTP
 * thread ever blocks on the database for intake. */
#include "http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "../lib/arena.h"
#include "../lib/buf.h"
#include "../lib/delivery.h"
#include "../lib/doc.h"
#include "../lib/error.h"
#include "../lib/hook.h"
#include "../lib/normalize.h"
#include "../lib/source.h"
#include "api.h"
#include "config.h"
#include "dashboard.h"
#include "dora.h"
#include "log.h"
#include "stats.h"
#include "writer.h"

#define MAX_HEADERS 128
#define HOOK_PREFIX "/hooks/"

struct http {
        struct MHD_Daemon *mhd;
        struct config_live *live;       /* read once per request, so SIGHUP applies to new ones */
        struct writer *writer;
        const struct api *api;

        pthread_mutex_t lock;           /* guards the fields below and suspend/resume */
        pthread_cond_t idle;
        unsigned in_flight;
        bool draining;
        struct log_ratelimit rejects;
};

enum request_state {
        REQ_RECEIVING,  /* reading the body */
        REQ_DISCARDING, /* over max_body_bytes: dropping the rest, answering 413 at the end */
        REQ_QUEUED,     /* suspended until the writer has committed or failed */
        REQ_ANSWERED,
};

struct request {
        struct http *http;
        struct MHD_Connection *conn;
        const struct config *cfg;       /* the config when the request started */
        const struct source *source;
        enum request_state state;
        struct buf body;
        size_t discarded;
        struct delivery *delivery;
        uint64_t started_ns;            /* for the latency histogram (stats.c) */
        unsigned status;                /* the status answered, once answered */
};

/* Builds and queues a JSON response; takes ownership of body. */
/* Queues resp (and drops our reference): every answer goes out here, so every one says
 * "Connection: close" while the daemon drains. */
static enum MHD_Result queue(struct request *req, struct MHD_Connection *conn, unsigned status,
                             struct MHD_Response *resp) {
        enum MHD_Result ret;

        if (req && req->http) {
                bool draining;

                pthread_mutex_lock(&req->http->lock);
                draining = req->http->draining;
                pthread_mutex_unlock(&req->http->lock);
                if (draining)
                        (void) MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
        }
        ret = MHD_queue_response(conn, status, resp);
        MHD_destroy_response(resp);
        if (req) {
                req->state = REQ_ANSWERED;
                req->status = status;
        }
        return ret;
}

static enum MHD_Result reply(struct request *req, struct MHD_Connection *conn, unsigned status,
                             json_t *body) {
        static const char fallback[] = "{\"error\":{\"code\":\"unavailable\",\"message\":\"Out of memory\"}}";
        char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
        struct MHD_Response *resp;

        json_decref(body);
        if (text)
                resp = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
        else {
                status = MHD_HTTP_SERVICE_UNAVAILABLE;
                resp = MHD_create_response_from_buffer(sizeof(fallback) - 1, (void *) fallback,
                                                       MHD_RESPMEM_PERSISTENT);
        }
        if (!resp) {
                free(text);
                return MHD_NO;
        }
        (void) MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
        if (status == MHD_HTTP_SERVICE_UNAVAILABLE)
                (void) MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, "5");
        if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
                (void) MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW,
                                               req && req->source ? "POST" : "GET, HEAD");
        return queue(req, conn, status, resp);
}

/* GET /metrics: Prometheus text, or a JSON error. */
static enum MHD_Result answer_metrics(struct request *req, struct MHD_Connection *conn,
                                      const struct api_request *ar) {
        json_t *error = NULL;
        char *text = NULL;
        int status = dora_metrics(req->http->api, ar, &text, &error);
        struct MHD_Response *resp;

        if (!text)
                return reply(req, conn, (unsigned) status, error);
        resp = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
        if (!resp) {
                free(text);
                return MHD_NO;
        }
        (void) MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                                       "text/plain; version=0.0.4; charset=utf-8");
        return queue(req, conn, (unsigned) status, resp);
}

/* GET / (and HEAD): the dashboard page, which needs no token: it holds no data. */
static enum MHD_Result answer_dashboard(struct request *req, struct MHD_Connection *conn,
                                        const char *method) {
        struct dashboard_page page = dashboard_page();
        struct MHD_Response *resp;

        if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
                return reply(req, conn, MHD_HTTP_METHOD_NOT_ALLOWED,
                             doc_error("method_not_allowed", "Use GET on this path"));
        resp = MHD_create_response_from_buffer(page.len, (void *) page.body,
                                               MHD_RESPMEM_PERSISTENT);
        if (!resp)
                return MHD_NO;
        for (size_t i = 0; i < page.n_headers; i++)
                (void) MHD_add_response_header(resp, page.headers[i].name, page.headers[i].value);
        return queue(req, conn, MHD_HTTP_OK, resp);
}

/* One table maps our negative errno codes to HTTP statuses. */
static unsigned status_of(int r) {
        switch (r) {
        case -EBADMSG: return MHD_HTTP_BAD_REQUEST;
        case -EACCES: return MHD_HTTP_UNAUTHORIZED;
        case -ENOENT: return MHD_HTTP_NOT_FOUND;
        case -E2BIG: return MHD_HTTP_CONTENT_TOO_LARGE;
        case -EMEDIUMTYPE: return MHD_HTTP_UNSUPPORTED_MEDIA_TYPE;
        default: return MHD_HTTP_SERVICE_UNAVAILABLE; /* -EAGAIN, -EIO, -ENOMEM, -ESHUTDOWN */
        }
}

/* Answers a rejected webhook with its JSON error, and logs it (rate-limited). */
static enum MHD_Result reject(struct request *req, struct MHD_Connection *conn, int r,
                              const struct error *err, const char *delivery_id) {
        struct http *h = req->http;
        unsigned status = status_of(r);
        const char *code = err->code ? err->code : "unavailable";
        int suppressed;
        bool pass;

        pthread_mutex_lock(&h->lock);
        pass = log_ratelimit_pass(&h->rejects, &suppressed);
        pthread_mutex_unlock(&h->lock);
        if (pass) {
                char st[8];

                snprintf(st, sizeof(st), "%u", status);
                log_at(status >= 500 ? LOG_ERR : LOG_WARNING,
                       (&(struct log_fields) { .source = req->source ? req->source->name : NULL,
                                               .delivery_id = delivery_id,
                                               .event = req->delivery ? req->delivery->event
                                                                      : NULL,
                                               .status = st }),
                       "Rejected webhook with %u %s: %s (%zu bytes)%s", status, code, err->msg,
                       req->body.len, suppressed ? " (similar messages were suppressed)" : "");
        }
        return reply(req, conn, status, doc_error(code, "%s", err->msg));
}

/* A delivery we store but cannot use: the sender should hear of it, without a flood. */
static void log_stored_error(struct http *h, const struct delivery *d) {
        int suppressed;
        bool pass;

        pthread_mutex_lock(&h->lock);
        pass = log_ratelimit_pass(&h->rejects, &suppressed);
        pthread_mutex_unlock(&h->lock);
        if (pass)
                log_at(LOG_WARNING,
                       (&(struct log_fields) { .source = d->source->name,
                                               .delivery_id = d->delivery_id,
                                               .event = d->event, .status = "error" }),
                       "Storing %s delivery '%s' (%s, %zu bytes) as unusable: %s%s",
                       d->source->name, d->delivery_id, d->event, d->body_len,
                       d->error ? d->error : "", suppressed ? " (similar messages were suppressed)" : "");
}

static bool is_json_media_type(const char *ct) {
        size_t n = strlen("application/json");

        if (!ct)
                return false;
        while (*ct == ' ')
                ct++;
        return strncasecmp(ct, "application/json", n) == 0 &&
               (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

struct header_list {
        struct hook_header items[MAX_HEADERS];
        size_t n;
};

static enum MHD_Result collect_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                      const char *value) {
        struct header_list *l = cls;

        (void) kind;
        if (l->n < MAX_HEADERS && key && value)
                l->items[l->n++] = (struct hook_header) { key, value };
        return MHD_YES;
}

/* The headers as a JSON object for events_raw; credentials are replaced, never stored. */
static char *headers_json(const struct header_list *l) {
        static const char *const secret[] = { "Authorization", "Proxy-Authorization",
                                              "X-Gitlab-Token", "Cookie" };
        json_t *o = json_object();
        char *text;

        if (!o)
                return NULL;
        for (size_t i = 0; i < l->n; i++) {
                const char *v = l->items[i].value;
                json_t *s;

                for (size_t j = 0; j < sizeof(secret) / sizeof(secret[0]); j++)
                        if (strcasecmp(l->items[i].name, secret[j]) == 0)
                                v = "(redacted)";
                s = json_string(v);
                if (!s)
                        s = json_string("(not UTF-8)");
                /* A name that is not UTF-8 cannot be a JSON key; it is dropped. */
                (void) json_object_set_new(o, l->items[i].name, s);
        }
        text = json_dumps(o, JSON_COMPACT);
        json_decref(o);
        return text;
}

static int64_t now_us(void) {
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void on_stored(struct delivery *d) {
        struct request *req = d->userdata;
        struct http *h = req->http;

        dora_data_changed(); /* the next DORA answer includes it */
        pthread_mutex_lock(&h->lock);
        MHD_resume_connection(req->conn);
        pthread_mutex_unlock(&h->lock);
}

/* The whole body is in: verify, parse, identify, then hand over to the writer. */
static enum MHD_Result take_delivery(struct request *req, struct MHD_Connection *conn) {
        struct http *h = req->http;
        const struct config *cfg = req->cfg;
        const char *secrets = config_string(cfg, req->source->secret_key);
        struct header_list headers = { .n = 0 };
        struct hook_request hr;
        struct error err = { 0 };
        struct arena arena;
        struct delivery *d;
        json_t *doc = NULL;
        int r;

        (void) MHD_get_connection_values(conn, MHD_HEADER_KIND, collect_header, &headers);
        hr = (struct hook_request) {
                .body = req->body.data ? req->body.data : "",
                .body_len = req->body.len,
                .headers = headers.items,
                .n_headers = headers.n,
                .query_token = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "token"),
        };

        if (secrets && *secrets)
                r = req->source->verify(&hr, secrets, &err);
        else if (cfg->allow_unsigned)
                r = 0;
        else
                r = error_set(&err, EACCES, "bad_token", req->source->secret_key,
                              "%s is not configured, so every delivery is refused",
                              req->source->secret_key);
        if (r < 0)
                return reject(req, conn, r, &err, NULL);

        d = calloc(1, sizeof(*d));
        if (!d)
                return reject(req, conn, -ENOMEM, &err, NULL);
        req->delivery = d;
        d->source = req->source;
        d->body_len = req->body.len;
        d->received_us = now_us();
        d->done = on_stored;
        d->userdata = req;
        /* The tree lives in an arena scope (lib/arena.h) that ends before anything else
         * happens, the answer included: identify() and normalize() copy out what they keep,
         * and nothing after them needs the tree. */
        arena_begin(&arena, DELIVERY_ARENA_BLOCK(hr.body_len), ARENA_CAP_MAX);
        r = doc_parse_bounded(hr.body, hr.body_len, (size_t) cfg->max_json_elements, &doc, &err);
        if (r == 0)
                r = req->source->identify(&hr, doc, &d->delivery_id, &d->event, &err);
        if (r == 0) {
                struct normalize_options no = config_normalize_options(cfg);

                if (delivery_normalize(d, doc, &no) < 0)
                        r = error_set(&err, ENOMEM, "unavailable", NULL, "Out of memory");
        }
        json_decref(doc);
        arena_end(&arena);
        if (r < 0)
                return reject(req, conn, r, &err, d->delivery_id);
        if (strcmp(d->status, "error") == 0)
                log_stored_error(h, d);
        d->headers = headers_json(&headers);
        if (!d->headers)
                return reject(req, conn, -ENOMEM, &err, d->delivery_id);
        d->body = buf_steal(&req->body);
        if (!d->body) {
                d->body = strdup("");
                if (!d->body)
                        return reject(req, conn, -ENOMEM, &err, d->delivery_id);
        }

        /* Suspend under the lock the writer resumes under, so a fast commit cannot resume
         * the connection before it is suspended. */
        pthread_mutex_lock(&h->lock);
        r = writer_submit(h->writer, d);
        if (r == 0) {
                req->state = REQ_QUEUED;
                MHD_suspend_connection(conn);
        }
        pthread_mutex_unlock(&h->lock);
        if (r < 0) {
                error_set(&err, r, "unavailable", NULL, r == -EAGAIN
                                  ? "Too many deliveries waiting to be stored; retry later"
                                  : "Shutting down; retry later");
                return reject(req, conn, r, &err, d->delivery_id);
        }
        return MHD_YES;
}

/* After the writer resumed us: 202 once durable, else 503. */
static enum MHD_Result answer_stored(struct request *req, struct MHD_Connection *conn) {
        struct delivery *d = req->delivery;
        struct error err = { 0 };

        if (d->result < 0) {
                error_set(&err, d->result, "unavailable", NULL,
                          "The delivery could not be stored; retry later");
                return reject(req, conn, d->result, &err, d->delivery_id);
        }
        return reply(req, conn, MHD_HTTP_ACCEPTED,
                     json_pack("{s:s,s:s,s:b}", "status", "accepted", "delivery_id",
                               d->delivery_id, "duplicate", d->duplicate));
}

/* First call for a webhook: everything decidable from the headers alone. */
static enum MHD_Result start_hook(struct request *req, struct MHD_Connection *conn,
                                  const char *method) {
        const struct config *cfg = req->cfg;
        const char *ct = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_CONTENT_TYPE);
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_CONTENT_LENGTH);
        struct error err = { 0 };

        if (strcmp(method, MHD_HTTP_METHOD_POST) != 0) {
                error_set(&err, EINVAL, "method_not_allowed", NULL, "Webhooks are POSTed");
                return reply(req, conn, MHD_HTTP_METHOD_NOT_ALLOWED,
                             doc_error(err.code, "%s", err.msg));
        }
        if (!is_json_media_type(ct)) {
                error_set(&err, EMEDIUMTYPE, "unsupported_media_type", NULL,
                          "Content-Type must be application/json");
                return reject(req, conn, -EMEDIUMTYPE, &err, NULL);
        }
        if (cl && strtoull(cl, NULL, 10) > cfg->max_body_bytes) {
                error_set(&err, E2BIG, "payload_too_large", NULL,
                          "The body is larger than max_body_bytes (%zu)", cfg->max_body_bytes);
                return reject(req, conn, -E2BIG, &err, NULL);
        }
        buf_init(&req->body, cfg->max_body_bytes);
        return MHD_YES;
}

static const char *query_arg(void *ctx, const char *name) {
        return MHD_lookup_connection_value(ctx, MHD_GET_ARGUMENT_KIND, name);
}

static enum MHD_Result answer_api(struct request *req, struct MHD_Connection *conn,
                                  const char *url, const char *method) {
        const struct api_request ar = {
                .cfg = req->cfg,
                .method = method,
                .path = url,
                .authorization = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                             MHD_HTTP_HEADER_AUTHORIZATION),
                .arg = query_arg,
                .ctx = conn,
        };
        json_t *body = NULL;
        int status;

        if (strcmp(url, "/metrics") == 0)
                return answer_metrics(req, conn, &ar);
        if (dashboard_path(url))
                return answer_dashboard(req, conn, method);
        status = api_handle(req->http->api, &ar, &body);

        return reply(req, conn, (unsigned) status, body);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls) {
        struct http *h = cls;
        struct request *req = *con_cls;

        (void) version;
        if (!req) {
                req = calloc(1, sizeof(*req));
                if (!req)
                        return MHD_NO;
                req->http = h;
                req->conn = conn;
                req->cfg = config_live_get(h->live);
                req->started_ns = stats_now_ns();
                *con_cls = req;
                pthread_mutex_lock(&h->lock);
                h->in_flight++;
                pthread_mutex_unlock(&h->lock);

                if (strncmp(url, HOOK_PREFIX, strlen(HOOK_PREFIX)) == 0) {
                        req->source = source_find(url + strlen(HOOK_PREFIX));
                        if (!req->source)
                                return reply(req, conn, MHD_HTTP_NOT_FOUND,
                                             doc_error("not_found", "No webhook source '%s'",
                                                       url + strlen(HOOK_PREFIX)));
                        return start_hook(req, conn, method);
                }
                return MHD_YES; /* other routes answer once any body is read */
        }

        switch (req->state) {
        case REQ_ANSWERED:
                *upload_data_size = 0;
                return MHD_YES;
        case REQ_QUEUED:
                return answer_stored(req, conn);
        case REQ_RECEIVING:
        case REQ_DISCARDING:
                break;
        }

        if (*upload_data_size) {
                size_t n = *upload_data_size;

                *upload_data_size = 0;
                if (!req->source)
                        return MHD_YES; /* the read API takes no body */
                if (req->state == REQ_RECEIVING) {
                        int r = buf_append(&req->body, upload_data, n);

                        if (r == 0)
                                return MHD_YES;
                        if (r != -E2BIG)
                                return MHD_NO; /* out of memory: drop the connection */
                        req->state = REQ_DISCARDING;
                        buf_free(&req->body);
                }
                /* Too large: drop the rest unread into memory, answer 413 at its end, but do
                 * not read an endless body just to say so. */
                req->discarded += n;
                return req->discarded > 4 * req->cfg->max_body_bytes ? MHD_NO : MHD_YES;
        }

        /* The request is complete. */
        if (req->state == REQ_DISCARDING) {
                struct error err = { 0 };

                error_set(&err, E2BIG, "payload_too_large", NULL,
                          "The body is larger than max_body_bytes (%zu)",
                          req->cfg->max_body_bytes);
                return reject(req, conn, -E2BIG, &err, NULL);
        }
        if (req->source)
                return take_delivery(req, conn);
        return answer_api(req, conn, url, method);
}

/* The one place per-request memory is freed. */
static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
        struct http *h = cls;
        struct request *req = *con_cls;

        (void) conn;
        (void) toe;
        if (!req)
                return;
        if (req->status)
                stats_request_done(req->status, stats_now_ns() - req->started_ns);
        buf_free(&req->body);
        delivery_free(req->delivery);
        free(req);
        *con_cls = NULL;
        pthread_mutex_lock(&h->lock);
        if (--h->in_flight == 0)
                pthread_cond_broadcast(&h->idle);
        pthread_mutex_unlock(&h->lock);
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap) {
        char msg[512];
        size_t n;

        (void) cls;
        vsnprintf(msg, sizeof(msg), fmt, ap);
        n = strlen(msg);
        while (n && msg[n - 1] == '\n')
                msg[--n] = '\0';
        log_notice("HTTP: %s", msg);
}

/* Resolves HOST:PORT ("[::1]:8080" for IPv6) into an address for MHD to bind. */
static int resolve_listen(const char *listen, struct sockaddr_storage *ret, char *errbuf,
                          size_t errlen) {
        struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                                  .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
        const char *colon = strrchr(listen, ':');
        struct addrinfo *ai = NULL;
        char host[256];
        size_t n = (size_t) (colon - listen);
        int r;

        if (n >= sizeof(host)) {
                snprintf(errbuf, errlen, "listen: '%s': host name too long", listen);
                return -EINVAL;
        }
        memcpy(host, listen, n);
        host[n] = '\0';
        if (host[0] == '[' && n > 2 && host[n - 1] == ']') {
                memmove(host, host + 1, n - 2);
                host[n - 2] = '\0';
        }
        r = getaddrinfo(host, colon + 1, &hints, &ai);
        if (r != 0) {
                snprintf(errbuf, errlen, "listen: '%s': %s", listen, gai_strerror(r));
                return -EINVAL;
        }
        memcpy(ret, ai->ai_addr, ai->ai_addrlen);
        freeaddrinfo(ai);
        return 0;
}

int http_start(const struct http_options *o, struct http **ret_http, char *errbuf,
               size_t errlen) {
        struct http *h = calloc(1, sizeof(*h));
        struct sockaddr_storage addr = { 0 };
        unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
                         MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ITC | MHD_USE_ERROR_LOG;
        const struct config *cfg = config_live_get(o->live);
        long threads = cfg->http_threads;
        int r;

        if (!h)
                return -ENOMEM;
        h->live = o->live;
        h->writer = o->writer;
        h->api = o->api;
        h->rejects = (struct log_ratelimit) LOG_RATELIMIT(10, 20);
        pthread_mutex_init(&h->lock, NULL);
        pthread_cond_init(&h->idle, NULL);
        if (threads == 0)
                threads = sysconf(_SC_NPROCESSORS_ONLN) > 0 ? sysconf(_SC_NPROCESSORS_ONLN) : 2;
        if (o->listen_fd < 0) {
                r = resolve_listen(cfg->listen, &addr, errbuf, errlen);
                if (r < 0)
                        goto fail;
                if (addr.ss_family == AF_INET6)
                        flags |= MHD_USE_IPv6;
        }
        h->mhd = MHD_start_daemon(
                flags, 0, NULL, NULL, on_request, h,
                MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL,
                MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
                MHD_OPTION_THREAD_POOL_SIZE, (unsigned) threads,
                MHD_OPTION_CONNECTION_TIMEOUT, (unsigned) cfg->connection_timeout,
                MHD_OPTION_CONNECTION_LIMIT, (unsigned) cfg->connection_limit,
                MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t) 64 * 1024,
                MHD_OPTION_LISTENING_ADDRESS_REUSE, 1,
                o->listen_fd >= 0 ? MHD_OPTION_LISTEN_SOCKET : MHD_OPTION_SOCK_ADDR,
                o->listen_fd >= 0 ? (intptr_t) o->listen_fd : (intptr_t) &addr,
                MHD_OPTION_END);
        if (!h->mhd) {
                snprintf(errbuf, errlen, "listen: cannot serve on '%s' (address in use?)",
                         o->listen_fd >= 0 ? "the inherited socket" : cfg->listen);
                r = -EADDRNOTAVAIL;
                goto fail;
        }
        *ret_http = h;
        return 0;
fail:
        pthread_mutex_destroy(&h->lock);
        pthread_cond_destroy(&h->idle);
        free(h);
        return r;
}

int http_listen_fd(struct http *h) {
        const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->mhd, MHD_DAEMON_INFO_LISTEN_FD);

        return info ? (int) info->listen_fd : -1;
}

bool http_drain(struct http *h, int timeout_ms) {
        struct timespec deadline;
        MHD_socket fd;
        bool idle;

        fd = MHD_quiesce_daemon(h->mhd);
        if (fd != MHD_INVALID_SOCKET)
                close(fd);
        clock_gettime(CLOCK_REALTIME, &deadline);
        deadline.tv_sec += timeout_ms / 1000;
        deadline.tv_nsec += (long) (timeout_ms % 1000) * 1000000;
        if (deadline.tv_nsec >= 1000000000) {
                deadline.tv_sec++;
                deadline.tv_nsec -= 1000000000;
        }
        pthread_mutex_lock(&h->lock);
        h->draining = true;
        while (h->in_flight > 0)
                if (pthread_cond_timedwait(&h->idle, &h->lock, &deadline) == ETIMEDOUT)
                        break;
        idle = h->in_flight == 0;
        pthread_mutex_unlock(&h->lock);
        return idle;
}

struct http *http_stop(struct http *h) {
        if (!h)
                return NULL;
        MHD_stop_daemon(h->mhd);
        pthread_mutex_destroy(&h->lock);
        pthread_cond_destroy(&h->idle);
        free(h);
        return NULL;
}
