/* outbound: a POST on libcurl (outbound.h). */
#include "outbound.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int outbound_init(void) {
        return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -EIO;
}

static size_t keep_body(char *data, size_t size, size_t n, void *ctx) {
        struct outbound_answer *a = ctx;
        size_t len = size * n, room = OUTBOUND_ANSWER_MAX - a->body_len;
        char *grown;

        if (len > room)         /* the rest is dropped, not refused: only the start is shown */
                len = room;
        if (len) {
                grown = realloc(a->body, a->body_len + len + 1);
                if (!grown)
                        return 0;
                a->body = grown;
                memcpy(a->body + a->body_len, data, len);
                a->body_len += len;
                a->body[a->body_len] = '\0';
        }
        return size * n;
}

/* Abandons the transfer when the daemon stops, rather than waiting out the timeout. */
static int check_stop(void *ctx, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un) {
        atomic_bool *stop = ctx;

        (void) dt, (void) dn, (void) ut, (void) un;
        return stop && atomic_load(stop) ? 1 : 0;
}

int outbound_post(const struct outbound_request *rq, struct outbound_answer *ret) {
        struct curl_slist *headers = NULL;
        CURL *curl = curl_easy_init();
        CURLcode c = CURLE_OUT_OF_MEMORY;
        int r = 0;

        memset(ret, 0, sizeof(*ret));
        for (int i = 0; curl && i < rq->n_headers; i++) {
                struct curl_slist *more = curl_slist_append(headers, rq->headers[i]);

                if (!more) {
                        r = -ENOMEM;
                        break;
                }
                headers = more;
        }
        if (!curl || r < 0) {
                curl_slist_free_all(headers);
                if (curl)
                        curl_easy_cleanup(curl);
                snprintf(ret->error, sizeof(ret->error), "out of memory");
                return -ENOMEM;
        }
        curl_easy_setopt(curl, CURLOPT_URL, rq->url);
        curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(curl, CURLOPT_POST, 1L);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, rq->body);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) rq->body_len);
        curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
        curl_easy_setopt(curl, CURLOPT_TIMEOUT, rq->timeout_s);
        curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, rq->timeout_s);
        curl_easy_setopt(curl, CURLOPT_USERAGENT, "doraloopd");
        curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, keep_body);
        curl_easy_setopt(curl, CURLOPT_WRITEDATA, ret);
        curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, check_stop);
        curl_easy_setopt(curl, CURLOPT_XFERINFODATA, rq->stop);
        if (rq->userpwd) {
                curl_easy_setopt(curl, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
                curl_easy_setopt(curl, CURLOPT_USERPWD, rq->userpwd);
        }
        c = curl_easy_perform(curl);
        if (c == CURLE_OK) {
                curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &ret->status);
        } else {
                snprintf(ret->error, sizeof(ret->error), "%s", curl_easy_strerror(c));
                r = c == CURLE_OUT_OF_MEMORY ? -ENOMEM : -EIO;
        }
        curl_slist_free_all(headers);
        curl_easy_cleanup(curl);
        return r;
}

void outbound_answer_free(struct outbound_answer *a) {
        free(a->body);
        a->body = NULL;
        a->body_len = 0;
}
