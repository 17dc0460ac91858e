/* http: the HTTP server: each request through the route table (routes.h) once its headers
 * are in, webhook intake up to the writer queue, reads handed to the read threads, replies.
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
#include <sys/socket.h>
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
#include "../lib/utf8.h"
#include "../lib/verify.h"
#include "api.h"
#include "config.h"
#include "dashboard.h"
#include "guard.h"
#include "import.h"
#include "log.h"
#include "mirror.h"
#include "prometheus.h"
#include "readpool.h"
#include "reply.h"
#include "routes.h"
#include "stats.h"
#include "writer.h"

#define MAX_HEADERS 128

struct http {
        struct MHD_Daemon *mhd;
        struct config_live *live;       /* read once per request, so SIGHUP applies to new ones */
        struct writer *writer;
        const struct api *api;
        struct guard *guard;            /* header deadline, lingering close (guard.h) */
        struct readpool *reads;         /* answers the read API and /metrics */
        /* The listen socket once quiesced, closed only after MHD_stop_daemon(): MHD's own
         * thread may still take it out of its epoll set, and a socket closed under it
         * makes that fail and MHD abort ("Failed to remove listen FD from epoll set"). */
        MHD_socket quiesced;

        pthread_mutex_t lock;           /* guards the fields below and suspend/resume */
        pthread_cond_t idle;
        unsigned in_flight;
        bool draining;
        struct log_ratelimit rejects;

        /* A lock of its own: MHD may log from suspend/resume, which run under lock. */
        pthread_mutex_t mhd_log_lock;
        struct log_ratelimit mhd_log;   /* libmicrohttpd's own lines, one per refused socket */
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
        struct route_match route;       /* decided from the headers (routes.h) */
        const struct source *source;
        enum request_state state;
        struct buf body;
        size_t discarded;
        struct delivery *delivery;
        uint64_t started_ns;            /* for the latency histogram (stats.c) */
        unsigned status;                /* the status answered, once answered */
        bool verified;                  /* the credential was checked from the headers alone */
        bool linger;                    /* answered before its body was read */
        struct read_job *read;          /* a read handed to the read threads */
        struct import *import;          /* POST /api/v1/import (the import block below) */
};

static struct read_job *read_job_free(struct read_job *job);

static bool is_json_media_type(const char *ct);

/* The guard's record of the connection (guard.h), or NULL. */
static struct guard_conn *conn_guard(struct MHD_Connection *conn) {
        const union MHD_ConnectionInfo *info =
                MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

        return info ? info->socket_context : NULL;
}

/* How much of an unread body a lingering close reads before it gives up: as much as an
 * over-long body is read today before the connection is dropped. */
static size_t linger_budget(const struct config *cfg) {
        return 4 * cfg->max_body_bytes;
}

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
        /* A JSON answer is data for a program: never sniffed as a page, never cached. */
        if (is_json_media_type(MHD_get_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE))) {
                (void) MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
                (void) MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
        }
        ret = MHD_queue_response(conn, status, resp);
        MHD_destroy_response(resp);
        if (req) {
                req->state = REQ_ANSWERED;
                req->status = status;
        }
        return ret;
}

/* Queues a JSON answer from text, its serialization (which this takes; NULL: out of
 * memory, answered 503). Reads serialize on their own threads, then answer here. */
static enum MHD_Result reply_text(struct request *req, struct MHD_Connection *conn,
                                  unsigned status, char *text) {
        static const char fallback[] = "{\"error\":{\"code\":\"unavailable\",\"message\":\"Out of memory\"}}";
        struct MHD_Response *resp;

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
        if (status == MHD_HTTP_METHOD_NOT_ALLOWED && req && req->route.allow[0])
                (void) MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, req->route.allow);
        if (status == MHD_HTTP_UNAUTHORIZED)
                (void) MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                                               req && req->source ? req->source->challenge
                                                                  : "Bearer realm=\"doraloop\"");
        return queue(req, conn, status, resp);
}

static enum MHD_Result reply(struct request *req, struct MHD_Connection *conn, unsigned status,
                             json_t *body) {
        char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;

        json_decref(body);
        return reply_text(req, conn, status, text);
}

/* Hands libmicrohttpd the next piece of a /metrics answer, made as it is sent. */
static ssize_t read_metrics(void *cls, uint64_t pos, char *buf, size_t max) {
        size_t n = prometheus_read(cls, buf, max);

        (void) pos;
        return n ? (ssize_t) n : MHD_CONTENT_READER_END_OF_STREAM;
}

static void free_metrics(void *cls) {
        prometheus_free(cls);
}

/* GET /metrics: Prometheus text streamed (chunked) from m, which this takes. */
static enum MHD_Result answer_metrics(struct request *req, struct MHD_Connection *conn,
                                      struct prometheus *m) {
        struct MHD_Response *resp = MHD_create_response_from_callback(
                MHD_SIZE_UNKNOWN, 64 * 1024, read_metrics, m, free_metrics);

        if (!resp) {
                prometheus_free(m);
                return MHD_NO;
        }
        (void) MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                                       "text/plain; version=0.0.4; charset=utf-8");
        return queue(req, conn, MHD_HTTP_OK, resp);
}

/* A 200 Markdown answer (GET /api/v1/review?format=markdown) from text, which this takes. */
static enum MHD_Result answer_markdown(struct request *req, struct MHD_Connection *conn,
                                       char *text) {
        struct MHD_Response *resp = MHD_create_response_from_buffer(strlen(text), text,
                                                                    MHD_RESPMEM_MUST_FREE);

        if (!resp) {
                free(text);
                return MHD_NO;
        }
        (void) MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                                       "text/markdown; charset=utf-8");
        (void) MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
        (void) MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
        return queue(req, conn, MHD_HTTP_OK, resp);
}

/* GET / (and HEAD): the dashboard page, which needs no token: it holds no data. */
static enum MHD_Result answer_dashboard(struct request *req, struct MHD_Connection *conn) {
        struct dashboard_page page = dashboard_page();
        struct MHD_Response *resp;

        resp = MHD_create_response_from_buffer(page.len, (void *) page.body,
                                               MHD_RESPMEM_PERSISTENT);
        if (!resp)
                return MHD_NO;
        for (size_t i = 0; i < page.n_headers; i++)
                (void) MHD_add_response_header(resp, page.headers[i].name, page.headers[i].value);
        return queue(req, conn, MHD_HTTP_OK, resp);
}

/* Whether to log one more refusal now (one limit for them all, under h->lock). */
static bool rejects_pass(struct http *h, int *ret_suppressed) {
        bool pass;

        pthread_mutex_lock(&h->lock);
        pass = log_ratelimit_pass(&h->rejects, ret_suppressed);
        pthread_mutex_unlock(&h->lock);
        return pass;
}

/* Logs a read a handler refused as the client's fault (4xx), rate-limited: bad input is
 * told to the one who sent it and to the log, never silently. */
static void log_refused(struct http *h, const char *method, const char *url, unsigned status,
                        const struct error *err) {
        int suppressed;

        if (status < 400 || status >= 500 || !rejects_pass(h, &suppressed))
                return;
        log_info("Refused %s %s with %u %s: %s%s", method, url, status,
                 err->code ? err->code : "", err->msg,
                 suppressed ? " (similar messages were suppressed)" : "");
}

/* Answers a rejected webhook with its JSON error, and logs it (rate-limited). */
static enum MHD_Result reject(struct request *req, struct MHD_Connection *conn, int r,
                              const struct error *err, const char *delivery_id) {
        struct http *h = req->http;
        unsigned status = reply_status(r);
        const char *code = err->code ? err->code : "unavailable";
        int suppressed;
        bool pass;

        pass = rejects_pass(h, &suppressed);
        if (pass) {
                char st[8];

                snprintf(st, sizeof(st), "%u", status);
                /* 501 is the client's framing, not our failure. */
                log_at(status >= 500 && status != MHD_HTTP_NOT_IMPLEMENTED ? LOG_ERR : LOG_WARNING,
                       (&(struct log_fields) { .source = req->source ? req->source->name : NULL,
                                               .delivery_id = delivery_id,
                                               .event = req->delivery ? req->delivery->event
                                                                      : NULL,
                                               .status = st }),
                       "Rejected %s with %u %s: %s (%zu bytes)%s",
                       req->source ? "webhook" : "request", status, code, err->msg,
                       req->body.len, suppressed ? " (similar messages were suppressed)" : "");
        }
        return reply(req, conn, status, doc_error(code, "%s", err->msg));
}

/* A delivery we store but cannot use: the sender should hear of it, without a flood. */
static void log_stored_error(struct http *h, const struct delivery *d) {
        int suppressed;
        bool pass;

        pass = rejects_pass(h, &suppressed);
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

        mirror_data_changed(h->api->mirror); /* the next DORA answer includes it */
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

        if (req->verified)
                r = 0;
        else if (secrets && *secrets)
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
        /* Refused, not stored: a stored row would have to be skipped at every replay. */
        if (r == 0 && d->over_limit)
                r = error_set(&err, EBADMSG, "invalid_payload", NULL, "%s", d->error);
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

struct header_count {
        const char *name;
        unsigned n;
};

static enum MHD_Result count_value(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value) {
        struct header_count *c = cls;

        (void) kind;
        (void) value;
        if (key && strcasecmp(key, c->name) == 0)
                c->n++;
        return MHD_YES;
}

/* How many headers (or query parameters, by kind) are named name, in any case. */
static unsigned count_values(struct MHD_Connection *conn, enum MHD_ValueKind kind,
                             const char *name) {
        struct header_count c = { name, 0 };

        (void) MHD_get_connection_values(conn, kind, count_value, &c);
        return c.n;
}

/* The credentials, as far as the headers alone tell: a source whose secret is unset, a
 * credential missing, or a token (which needs no body) that does not match. An HMAC is
 * checked once the body is in. */
static int check_credentials(struct request *req, struct MHD_Connection *conn,
                             struct error *err) {
        const struct source *src = req->source;
        const char *secrets = config_string(req->cfg, src->secret_key);
        struct header_list headers = { .n = 0 };
        struct hook_request hr;
        int r;

        if (!secrets || !*secrets) {
                if (req->cfg->allow_unsigned)
                        return 0;
                return error_set(err, EACCES, "bad_token", src->secret_key,
                                 "%s is not configured, so every delivery is refused",
                                 src->secret_key);
        }
        (void) MHD_get_connection_values(conn, MHD_HEADER_KIND, collect_header, &headers);
        hr = (struct hook_request) {
                .body = "",
                .headers = headers.items,
                .n_headers = headers.n,
                .query_token = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "token"),
        };
        if (!src->verify_reads_body) {
                r = src->verify(&hr, secrets, err);
                req->verified = r == 0;
                return r;
        }
        for (size_t i = 0; src->auth_headers[i]; i++)
                if (hook_header(&hr, src->auth_headers[i]))
                        return 0;       /* a signature: verified once the body is in */
        if (src->query_token && hr.query_token) {
                /* No signature, so ?token= is the credential: the body plays no part. */
                r = src->verify(&hr, secrets, err);
                req->verified = r == 0;
                return r;
        }
        return error_set(err, EACCES, "missing_signature", src->auth_headers[0],
                         "Missing %s header", src->auth_headers[0]);
}

/* A source that names the event in a header needs a valid one; an event merely unknown to
 * us is stored as ignored later, not refused here. */
static int check_event_header(struct request *req, struct MHD_Connection *conn,
                              struct error *err) {
        const char *name = req->source->event_header;
        char *event = NULL;
        int r;

        if (!name)
                return 0;
        r = source_copy_id(MHD_lookup_connection_value(conn, MHD_HEADER_KIND, name), name,
                           &event, err);
        free(event);
        return r;
}

/* First call for a webhook: everything decidable from the headers alone, so that what is
 * refused costs no body in memory. */
static enum MHD_Result start_hook(struct request *req, struct MHD_Connection *conn) {
        const struct config *cfg = req->cfg;
        const char *ct = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_CONTENT_TYPE);
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_CONTENT_LENGTH);
        struct error err = { 0 };
        int r;

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
        r = check_credentials(req, conn, &err);
        if (r == 0)
                r = check_event_header(req, conn, &err);
        if (r < 0)
                return reject(req, conn, r, &err, NULL);
        buf_init(&req->body, cfg->max_body_bytes);
        return MHD_YES;
}

static enum MHD_Result check_argument(void *cls, enum MHD_ValueKind kind, const char *key,
                                      const char *value) {
        bool *ok = cls;

        (void) kind;
        *ok = *ok && (!key || utf8_valid(key)) && (!value || utf8_valid(value));
        return *ok ? MHD_YES : MHD_NO;
}

/* The path and query parameters, decoded, must be UTF-8: they become JSON and SQL text. */
static int check_utf8(struct MHD_Connection *conn, const char *url, struct error *err) {
        bool ok = utf8_valid(url);

        if (ok)
                (void) MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, check_argument,
                                                 &ok);
        if (!ok)
                return error_set(err, EBADMSG, "invalid_request", NULL,
                                 "The path or a query parameter is not valid UTF-8");
        return 0;
}

/* Refuses what a proxy in front could frame otherwise than libmicrohttpd does (request
 * smuggling): several Content-Length headers, Transfer-Encoding beside Content-Length, and
 * any Transfer-Encoding but one "chunked" (libmicrohttpd would read such a body until the
 * client closed). */
static int check_framing(struct MHD_Connection *conn, struct error *err) {
        const char *te = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_TRANSFER_ENCODING);
        unsigned n_cl = count_values(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        unsigned n_te = count_values(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING);

        if (n_cl > 1)
                return error_set(err, EBADMSG, "invalid_request", NULL,
                                 "Several Content-Length headers");
        if (n_te && n_cl)
                return error_set(err, EBADMSG, "invalid_request", NULL,
                                 "Both Transfer-Encoding and Content-Length");
        if (n_te > 1 || (te && strcasecmp(te, "chunked") != 0))
                return error_set(err, ENOSYS, "not_implemented", NULL,
                                 "Transfer-Encoding other than chunked is not supported");
        return 0;
}

/* Credentials given twice could be verified in one copy and stored or used in another:
 * every header a credential travels in (and ?token= where a source takes it) at most once. */
static int check_single_credentials(struct MHD_Connection *conn, const struct source *src,
                                    struct error *err) {
        const char *token_code = src && src->verify_reads_body ? "bad_signature" : "bad_token";

        if (count_values(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION) > 1)
                return error_set(err, EACCES, "bad_token", MHD_HTTP_HEADER_AUTHORIZATION,
                                 "Several Authorization headers; send one");
        if (!src)
                return 0;
        for (size_t i = 0; src->auth_headers[i]; i++)
                if (count_values(conn, MHD_HEADER_KIND, src->auth_headers[i]) > 1)
                        return error_set(err, EACCES, strcasecmp(src->auth_headers[i],
                                         MHD_HTTP_HEADER_AUTHORIZATION) == 0 ? "bad_token"
                                                                              : token_code,
                                         src->auth_headers[i], "Several %s headers; send one",
                                         src->auth_headers[i]);
        if (src->query_token && count_values(conn, MHD_GET_ARGUMENT_KIND, "token") > 1)
                return error_set(err, EACCES, "bad_token", "token",
                                 "Several token parameters; send one");
        return 0;
}

/* ---- POST /api/v1/import (RUNS_IMPORT): a streamed body (daemon/import.h). start_import()
 * checks the media type, import_step() feeds the body as it comes and suspends the
 * connection while the import's window of deliveries in flight is full or not yet
 * durable. ---- */

static bool is_ndjson_media_type(const char *ct) {
        size_t n = strlen("application/x-ndjson");

        while (ct && *ct == ' ')
                ct++;
        return ct && strncasecmp(ct, "application/x-ndjson", n) == 0 &&
               (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

/* From a writer thread: the import may go on. Under the lock it was suspended under. */
static void import_wake(void *arg) {
        struct request *req = arg;

        pthread_mutex_lock(&req->http->lock);
        MHD_resume_connection(req->conn);
        pthread_mutex_unlock(&req->http->lock);
}

/* Its route and admin token are checked (daemon/routes.c); what is left is the media type. */
static enum MHD_Result start_import(struct request *req, struct MHD_Connection *conn) {
        struct error err = { 0 };

        if (!is_ndjson_media_type(MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                              MHD_HTTP_HEADER_CONTENT_TYPE))) {
                error_set(&err, EMEDIUMTYPE, "unsupported_media_type", NULL,
                          "Content-Type must be application/x-ndjson");
                return reject(req, conn, -EMEDIUMTYPE, &err, NULL);
        }
        req->import = import_new(&(struct import_options) {
                .cfg = req->cfg, .writer = req->http->writer,
                .mirror = req->http->api->mirror,
                .wake = import_wake, .wake_arg = req });
        if (!req->import) {
                error_set(&err, ENOMEM, "unavailable", NULL, "Out of memory");
                return reject(req, conn, -ENOMEM, &err, NULL);
        }
        return MHD_YES;
}

/* Suspends the connection when wait() says so, under the lock import_wake() resumes under. */
static bool import_suspend(struct request *req, struct MHD_Connection *conn,
                           bool (*wait)(struct import *)) {
        bool suspend;

        pthread_mutex_lock(&req->http->lock);
        suspend = wait(req->import);
        if (suspend)
                MHD_suspend_connection(conn);
        pthread_mutex_unlock(&req->http->lock);
        return suspend;
}

/* Every later call of an import: a piece of the body, or (size 0) its end. Data left in
 * *upload_data_size while suspended is given again once resumed. */
static enum MHD_Result import_step(struct request *req, struct MHD_Connection *conn,
                                   const char *data, size_t *size) {
        if (*size) {
                while (*size) {
                        size_t n = import_feed(req->import, data, *size);

                        data += n;
                        *size -= n;
                        if (*size && import_suspend(req, conn, import_pause))
                                break;
                }
                return MHD_YES;
        }
        import_finish(req->import);
        if (import_suspend(req, conn, import_busy))
                return MHD_YES;
        return reply(req, conn, MHD_HTTP_OK, import_answer(req->import));
}
/* ---- end of the import block ---- */

/* First call of a JSON write (RUNS_WRITE): its media type and announced length; then its
 * body is read whole, at most max_body_bytes (413 past it, as for a webhook). */
static enum MHD_Result start_write(struct request *req, struct MHD_Connection *conn) {
        const char *ct = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_CONTENT_TYPE);
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_CONTENT_LENGTH);
        struct error err = { 0 };

        if (!is_json_media_type(ct)) {
                error_set(&err, EMEDIUMTYPE, "unsupported_media_type", NULL,
                          "Content-Type must be application/json");
                return reject(req, conn, -EMEDIUMTYPE, &err, NULL);
        }
        if (cl && strtoull(cl, NULL, 10) > req->cfg->max_body_bytes) {
                error_set(&err, E2BIG, "payload_too_large", NULL,
                          "The body is larger than max_body_bytes (%zu)",
                          req->cfg->max_body_bytes);
                return reject(req, conn, -E2BIG, &err, NULL);
        }
        buf_init(&req->body, req->cfg->max_body_bytes);
        return MHD_YES;
}

/* Whether the request's body is read into req->body: a webhook's or a JSON write's. */
static bool reads_body(const struct request *req) {
        return req->source || (req->route.route && req->route.route->runs == RUNS_WRITE);
}

/* Whether the request announces a body, which an early answer leaves unread. */
static bool announces_body(struct MHD_Connection *conn) {
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_CONTENT_LENGTH);

        return (cl && strtoull(cl, NULL, 10) > 0) ||
               MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                           MHD_HTTP_HEADER_TRANSFER_ENCODING);
}

/* The first call of a request, once its headers are in: what every request must pass, its
 * route (404, 405 and the route's auth), then a webhook's own checks. Other routes answer
 * once any body is read. */
static enum MHD_Result start_request(struct request *req, struct MHD_Connection *conn,
                                     const char *url, const char *method) {
        const char *authorization = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                                MHD_HTTP_HEADER_AUTHORIZATION);
        struct error err = { 0 }, route_err = { 0 };
        int routed = routes_decide(method, url, req->cfg, authorization, &req->route, &route_err);
        bool hook = req->route.route && req->route.route->runs == RUNS_INTAKE;
        int r;

        r = check_utf8(conn, url, &err);
        if (r == 0)
                r = check_framing(conn, &err);
        if (r == 0 && routed < 0) {
                r = routed;
                err = route_err;
        }
        if (r == 0 && hook) {
                const char *name = url + req->route.param_at;

                req->source = source_find(name);
                if (!req->source)
                        return reply(req, conn, MHD_HTTP_NOT_FOUND,
                                     doc_error("not_found", "No webhook source '%s'", name));
        }
        if (r == 0)
                r = check_single_credentials(conn, req->source, &err);
        /* A webhook's 400 is one of the two codes API.md names for ingestion. */
        if (r == -EBADMSG && hook && strcmp(err.code, "invalid_request") == 0)
                err.code = "invalid_payload";
        if (r < 0)
                return reject(req, conn, r, &err, NULL);
        if (req->route.route->runs == RUNS_IMPORT)
                return start_import(req, conn);
        if (req->route.route->runs == RUNS_WRITE)
                return start_write(req, conn);
        return hook ? start_hook(req, conn) : MHD_YES;
}

/* A read on its way through the read threads: a copy of what it needs of the request
 * (the connection is suspended meanwhile, and its memory is libmicrohttpd's), then the
 * answer, picked up by the HTTP thread once the connection is resumed. */
struct read_arg {
        char *name, *value;     /* value NULL for "?name" */
};

struct read_job {
        struct readpool_job base;
        struct http *http;
        struct MHD_Connection *conn;
        const struct config *cfg;
        struct route_match route;
        char *method, *path, *authorization;
        char *body;                     /* RUNS_WRITE: the request's body */
        size_t body_len;
        struct read_arg *args;
        size_t n_args, cap_args;
        bool oom;
        bool done;                      /* under http->lock */
        unsigned status;
        struct error err;               /* why, when status is not 2xx */
        char *text;                     /* the answer: a JSON body serialized (NULL: OOM), */
        enum route_form form;           /* or Markdown, or JSON text (routes.h), */
        struct prometheus *metrics;   /* or a /metrics text */
};

static struct read_job *read_job_free(struct read_job *job) {
        if (!job)
                return NULL;
        for (size_t i = 0; i < job->n_args; i++) {
                free(job->args[i].name);
                free(job->args[i].value);
        }
        free(job->args);
        free(job->method);
        free(job->path);
        free(job->authorization);
        free(job->body);
        free(job->text);
        prometheus_free(job->metrics);
        free(job);
        return NULL;
}

static enum MHD_Result copy_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                const char *value) {
        struct read_job *job = cls;
        struct read_arg *a;

        (void) kind;
        if (!key || job->oom)
                return MHD_YES;
        if (job->n_args == job->cap_args) {
                size_t cap = job->cap_args ? 2 * job->cap_args : 8;
                struct read_arg *n = realloc(job->args, cap * sizeof(*n));

                if (!n) {
                        job->oom = true;
                        return MHD_NO;
                }
                job->args = n;
                job->cap_args = cap;
        }
        a = &job->args[job->n_args++];
        *a = (struct read_arg) { strdup(key), value ? strdup(value) : NULL };
        job->oom = !a->name || (value && !a->value);
        return job->oom ? MHD_NO : MHD_YES;
}

static char *strdup_or_null(const char *s, bool *oom) {
        char *d = s ? strdup(s) : NULL;

        *oom |= s && !d;
        return d;
}

/* The job of a read of url; NULL on OOM. */
static struct read_job *read_job_new(struct request *req, struct MHD_Connection *conn,
                                     const char *url, const char *method) {
        struct read_job *job = calloc(1, sizeof(*job));

        if (!job)
                return NULL;
        *job = (struct read_job) { .http = req->http, .conn = conn, .cfg = req->cfg,
                                   .route = req->route };
        job->method = strdup_or_null(method, &job->oom);
        job->path = strdup_or_null(url, &job->oom);
        job->authorization = strdup_or_null(
                MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION),
                &job->oom);
        (void) MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, copy_arg, job);
        if (req->route.route->runs == RUNS_WRITE) {
                job->body_len = req->body.len;
                job->body = req->body.data ? buf_steal(&req->body) : strdup("");
                job->oom |= !job->body;
        }
        return job->oom ? read_job_free(job) : job;
}

/* A query argument of the job; the first of several, as libmicrohttpd's lookup gives. */
static const char *job_arg(void *ctx, const char *name) {
        const struct read_job *job = ctx;

        for (size_t i = 0; i < job->n_args; i++)
                if (strcmp(job->args[i].name, name) == 0)
                        return job->args[i].value;
        return NULL;
}

/* On a read thread: computes the answer, then resumes the connection to send it. */
static void run_read(struct readpool_job *base, bool stopping) {
        struct read_job *job = (struct read_job *) base;
        struct http *h = job->http;
        const struct api_request ar = {
                .cfg = job->cfg, .method = job->method, .path = job->path,
                .authorization = job->authorization, .arg = job_arg, .ctx = job,
                .body = job->body, .body_len = job->body_len,
        };

        json_t *body = NULL;

        if (stopping) {
                job->status = MHD_HTTP_SERVICE_UNAVAILABLE;
                body = doc_error("unavailable", "Shutting down; retry later");
        } else if (job->route.route->runs == RUNS_METRICS) {
                int r = job->route.route->metrics(h->api, &ar, &job->metrics, &job->err);

                job->status = reply_status(r);
                if (r < 0)
                        body = reply_error_body(&job->err);
        } else {
                job->status = routes_answer(&job->route, h->api, &ar, &body, &job->form,
                                            &job->err);
        }
        /* Serialized here too: a large answer costs the HTTP thread only its sending. */
        if (body && job->form != FORM_JSON)
                job->text = strdup(json_string_value(body));
        else if (body)
                job->text = json_dumps(body, JSON_COMPACT);
        json_decref(body);
        /* Resume under the lock the request was suspended under (see answer_api). */
        pthread_mutex_lock(&h->lock);
        job->done = true;
        MHD_resume_connection(job->conn);
        pthread_mutex_unlock(&h->lock);
}

/* Hands the read to the read threads and suspends the connection until it is answered;
 * a full queue is a 503 with Retry-After. */
static enum MHD_Result submit_read(struct request *req, struct MHD_Connection *conn,
                                   const char *url, const char *method) {
        struct http *h = req->http;
        struct read_job *job = read_job_new(req, conn, url, method);
        int r;

        if (!job)
                return reply(req, conn, MHD_HTTP_SERVICE_UNAVAILABLE,
                             doc_error("unavailable", "Out of memory"));
        job->base.run = run_read;
        /* Suspend under the lock run_read resumes under, so a fast read cannot resume the
         * connection before it is suspended. */
        pthread_mutex_lock(&h->lock);
        r = h->reads ? readpool_submit(h->reads, &job->base) : -ESHUTDOWN;
        if (r == 0) {
                req->read = job;
                MHD_suspend_connection(conn);
        }
        pthread_mutex_unlock(&h->lock);
        if (r == 0)
                return MHD_YES;
        read_job_free(job);
        {
                int suppressed;
                bool pass;

                pass = rejects_pass(h, &suppressed);
                if (pass)
                        log_warning("Refused a read of %s with 503: %s%s", url,
                                    r == -EAGAIN ? "read_queue_max reads already wait"
                                                 : "shutting down",
                                    suppressed ? " (similar messages were suppressed)" : "");
        }
        return reply(req, conn, MHD_HTTP_SERVICE_UNAVAILABLE,
                     doc_error("unavailable", r == -EAGAIN
                               ? "Too many reads waiting to be answered; retry later"
                               : "Shutting down; retry later"));
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
        struct read_job *job = req->read;
        struct error err = { 0 };
        json_t *body = NULL;
        enum route_form form = FORM_JSON;
        unsigned status;

        if (job && job->done) { /* resumed by run_read: send what it made */
                struct prometheus *m = job->metrics;
                char *text = job->text;

                job->metrics = NULL;
                job->text = NULL;
                if (m)
                        return answer_metrics(req, conn, m);
                if (job->form == FORM_MARKDOWN && text)
                        return answer_markdown(req, conn, text);
                log_refused(req->http, method, url, job->status, &job->err);
                return reply_text(req, conn, job->status, text);
        }
        /* Where the answer is made: the page and the health probes here (they are cheap,
         * and must answer while reads queue), everything else on the read threads. */
        switch (req->route.route->runs) {
        case RUNS_PAGE:
                return answer_dashboard(req, conn);
        case RUNS_NOW:
                break;
        case RUNS_READ:
        case RUNS_WRITE:
        case RUNS_METRICS:
        case RUNS_INTAKE:       /* never here: take_delivery() answers intake */
        case RUNS_IMPORT:       /* never here: import_step() answers imports */
                return submit_read(req, conn, url, method);
        }
        status = routes_answer(&req->route, req->http->api, &ar, &body, &form, &err);
        if (form != FORM_JSON) {
                char *text = strdup(json_string_value(body));

                json_decref(body);
                if (!text)
                        return reply(req, conn, MHD_HTTP_SERVICE_UNAVAILABLE, NULL);
                return form == FORM_MARKDOWN ? answer_markdown(req, conn, text)
                                             : reply_text(req, conn, status, text);
        }
        log_refused(req->http, method, url, status, &err);
        return reply(req, conn, status, body);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls) {
        struct http *h = cls;
        struct request *req = *con_cls;
        enum MHD_Result ret;

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
                guard_conn_headers_done(conn_guard(conn));

                ret = start_request(req, conn, url, method);
                /* An answer before the body leaves it unsent or unread: the guard reads
                 * and drops it at close, so that the client gets to read the answer. */
                req->linger = req->state == REQ_ANSWERED && announces_body(conn);
                return ret;
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
        if (req->import)        /* the import block's body */
                return import_step(req, conn, upload_data, upload_data_size);

        if (*upload_data_size) {
                size_t n = *upload_data_size;

                *upload_data_size = 0;
                if (!reads_body(req))
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

        (void) toe;
        guard_conn_request_done(conn_guard(conn),
                                req && req->linger ? linger_budget(req->cfg) : 0);
        if (!req)
                return;
        if (req->status)
                stats_request_done(req->status, stats_now_ns() - req->started_ns);
        buf_free(&req->body);
        delivery_free(req->delivery);
        read_job_free(req->read);
        req->import = import_free(req->import);
        free(req);
        *con_cls = NULL;
        pthread_mutex_lock(&h->lock);
        if (--h->in_flight == 0)
                pthread_cond_broadcast(&h->idle);
        pthread_mutex_unlock(&h->lock);
}

/* libmicrohttpd logs a line per refused socket, so a flood of them is rate-limited. */
__attribute__((format(printf, 2, 0)))
static void on_mhd_log(void *cls, const char *fmt, va_list ap) {
        struct http *h = cls;
        char msg[512];
        int suppressed;
        size_t n;
        bool pass;

        pthread_mutex_lock(&h->mhd_log_lock);
        pass = log_ratelimit_pass(&h->mhd_log, &suppressed);
        pthread_mutex_unlock(&h->mhd_log_lock);
        if (!pass)
                return;
        vsnprintf(msg, sizeof(msg), fmt, ap);
        n = strlen(msg);
        while (n && msg[n - 1] == '\n')
                msg[--n] = '\0';
        log_notice("HTTP: %s%s", msg, suppressed ? " (similar messages were suppressed)" : "");
}

/* Every connection is known to the guard from accept to close. MHD reports the close
 * before it closes the socket, so the guard never touches a descriptor reused since. */
static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode code) {
        struct http *h = cls;
        const union MHD_ConnectionInfo *fd;

        if (code != MHD_CONNECTION_NOTIFY_STARTED) {
                guard_conn_close(*socket_context);
                *socket_context = NULL;
                return;
        }
        fd = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (!fd)
                return;
        *socket_context = guard_conn_open(h->guard, fd->connect_fd);
        if (!*socket_context)
                (void) shutdown(fd->connect_fd, SHUT_RDWR);     /* unguarded: refused */
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
        h->quiesced = MHD_INVALID_SOCKET;
        h->rejects = (struct log_ratelimit) LOG_RATELIMIT(10, 20);
        h->mhd_log = (struct log_ratelimit) LOG_RATELIMIT(10, 20);
        pthread_mutex_init(&h->lock, NULL);
        pthread_mutex_init(&h->mhd_log_lock, NULL);
        pthread_cond_init(&h->idle, NULL);
        r = guard_start(&(struct guard_options) {
                                .header_ms = 1000 * (cfg->header_timeout < cfg->connection_timeout
                                                     ? cfg->header_timeout
                                                     : cfg->connection_timeout),
                                .idle_ms = 1000 * cfg->connection_timeout },
                        &h->guard);
        if (r < 0) {
                snprintf(errbuf, errlen, "Failed to start the connection guard: %s",
                         strerror(-r));
                goto fail;
        }
        r = readpool_new((unsigned) cfg->read_threads, (size_t) cfg->read_queue_max, &h->reads);
        if (r < 0) {
                snprintf(errbuf, errlen, "read_threads: cannot start %ld threads",
                         cfg->read_threads);
                goto fail;
        }
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
                MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, h,
                MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
                MHD_OPTION_NOTIFY_CONNECTION, on_connection, h,
                MHD_OPTION_THREAD_POOL_SIZE, (unsigned) threads,
                MHD_OPTION_CONNECTION_TIMEOUT, (unsigned) cfg->connection_timeout,
                MHD_OPTION_CONNECTION_LIMIT, (unsigned) cfg->connection_limit,
                MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned) cfg->per_ip_connection_limit,
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
        h->guard = guard_stop(h->guard);
        readpool_free(h->reads);
        pthread_mutex_destroy(&h->lock);
        pthread_mutex_destroy(&h->mhd_log_lock);
        pthread_cond_destroy(&h->idle);
        free(h);
        return r;
}

int http_listen_fd(struct http *h) {
        const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->mhd, MHD_DAEMON_INFO_LISTEN_FD);

        return info ? (int) info->listen_fd : -1;
}

bool http_drain(struct http *h, int timeout_ms) {
        struct readpool *reads;
        struct timespec deadline;
        MHD_socket fd;
        bool idle;

        fd = MHD_quiesce_daemon(h->mhd);        /* INVALID when quiesced before */
        if (fd != MHD_INVALID_SOCKET)
                h->quiesced = fd;
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
        reads = h->reads;
        h->reads = NULL;        /* later reads get 503 */
        pthread_mutex_unlock(&h->lock);
        /* Reads still running finish (and resume their connections) while the writer and
         * the database pool they use are still there; queued ones answer 503. */
        readpool_free(reads);
        return idle;
}

struct http *http_stop(struct http *h) {
        struct readpool *reads;

        if (!h)
                return NULL;
        /* Before the connections go (if http_drain did not): a read job resumes its
         * connection when done. Taken under the lock submit_read uses it under. */
        pthread_mutex_lock(&h->lock);
        reads = h->reads;
        h->reads = NULL;
        pthread_mutex_unlock(&h->lock);
        readpool_free(reads);
        MHD_stop_daemon(h->mhd);
        if (h->quiesced != MHD_INVALID_SOCKET)
                close(h->quiesced);
        h->guard = guard_stop(h->guard);        /* after every connection is closed */
        pthread_mutex_destroy(&h->lock);
        pthread_mutex_destroy(&h->mhd_log_lock);
        pthread_cond_destroy(&h->idle);
        free(h);
        return NULL;
}
