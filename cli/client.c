/* client: libcurl requests to the daemon (client.h). Tokens come from --token-file, else
 * from the environment variable of the kind the command needs. */
#include "client.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/buf.h"

#define TOKEN_MAX 4096

struct transfer {
        struct buf answer;
        client_producer produce;
        void *produce_arg;
        client_tick tick;
        void *tick_arg;
        bool produce_failed;
};

/* The token for kind tk, in buf; false when there is none (no Authorization then). */
static bool find_token(const struct ctl *c, enum ctl_token tk, char *buf, size_t len) {
        const char *v = NULL;

        if (c->token_file) {
                FILE *f = fopen(c->token_file, "r");
                size_t n;

                if (!f)
                        return false;
                n = fread(buf, 1, len - 1, f);
                fclose(f);
                buf[n] = '\0';
                while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
                        buf[--n] = '\0';
                return n > 0;
        }
        if (tk == CTL_TOKEN_API)
                v = getenv("DORALOOP_API_TOKEN");
        else if (tk == CTL_TOKEN_TRIAGE)
                v = getenv("DORALOOP_TRIAGE_TOKEN");
        if (tk != CTL_TOKEN_API && (!v || !*v))
                v = getenv("DORALOOP_ADMIN_TOKEN");
        if (!v || !*v || strlen(v) >= len)
                return false;
        snprintf(buf, len, "%s", v);
        return true;
}

static size_t trailing_slashes(const char *s) {
        size_t n = strlen(s), k = 0;

        while (k < n && s[n - 1 - k] == '/')
                k++;
        return k;
}

static size_t on_write(char *data, size_t size, size_t n, void *arg) {
        struct transfer *t = arg;

        return buf_append(&t->answer, data, size * n) == 0 ? size * n : 0;
}

static size_t on_read(char *buf, size_t size, size_t n, void *arg) {
        struct transfer *t = arg;
        ssize_t r = t->produce(t->produce_arg, buf, size * n);

        if (r < 0) {
                t->produce_failed = true;
                return CURL_READFUNC_ABORT;
        }
        return (size_t) r;
}

static int on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow) {
        struct transfer *t = arg;

        (void) dltotal, (void) dlnow, (void) ultotal, (void) ulnow;
        if (t->tick)
                t->tick(t->tick_arg);
        return 0;
}

static int perform(const struct ctl *c, CURL *h, const char *path, enum ctl_token tk,
                   const char *content_type, struct transfer *t, struct client_answer *ret,
                   char *errbuf, size_t errlen) {
        char curl_err[CURL_ERROR_SIZE] = "", token[TOKEN_MAX], header[TOKEN_MAX + 32];
        struct curl_slist *headers = NULL;
        struct buf url;
        CURLcode rc;
        int r = -1;

        *ret = (struct client_answer) { 0 };
        buf_init(&url, 8192);
        /* "http://host:8080/" and "http://host:8080" alike */
        if (buf_append(&url, c->url, strlen(c->url) - trailing_slashes(c->url)) < 0 ||
            buf_puts(&url, path) < 0) {
                snprintf(errbuf, errlen, "the URL is too long");
                goto out;
        }
        if (find_token(c, tk, token, sizeof(token))) {
                snprintf(header, sizeof(header), "Authorization: Bearer %s", token);
                headers = curl_slist_append(headers, header);
        } else if (c->token_file) {
                snprintf(errbuf, errlen, "cannot read a token from %s", c->token_file);
                goto out;
        }
        if (content_type) {
                snprintf(header, sizeof(header), "Content-Type: %s", content_type);
                headers = curl_slist_append(headers, header);
                headers = curl_slist_append(headers, "Expect:");
        }
        buf_init(&t->answer, CLIENT_ANSWER_MAX);
        curl_easy_setopt(h, CURLOPT_URL, url.data);
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
        curl_easy_setopt(h, CURLOPT_ERRORBUFFER, curl_err);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, t);
        curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 10L);
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(h, CURLOPT_USERAGENT, "doraloopctl/" DORALOOP_VERSION);
        curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
        rc = curl_easy_perform(h);
        if (rc != CURLE_OK) {
                if (!t->produce_failed)
                        snprintf(errbuf, errlen, "%s: %s", url.data,
                                 curl_err[0] ? curl_err : curl_easy_strerror(rc));
                else
                        snprintf(errbuf, errlen, "reading the input failed");
                buf_free(&t->answer);
                goto out;
        }
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &ret->status);
        ret->len = t->answer.len;
        ret->body = buf_steal(&t->answer);
        if (!ret->body)
                ret->body = strdup("");
        ret->doc = ret->body ? json_loadb(ret->body, ret->len, 0, NULL) : NULL;
        r = 0;
out:
        curl_slist_free_all(headers);
        buf_free(&url);
        return r;
}

static CURL *new_handle(char *errbuf, size_t errlen) {
        static bool initialized;
        CURL *h;

        if (!initialized) {
                curl_global_init(CURL_GLOBAL_DEFAULT);
                initialized = true;
        }
        h = curl_easy_init();
        if (!h)
                snprintf(errbuf, errlen, "out of memory");
        return h;
}

int client_call(const struct ctl *c, const char *method, const char *path, enum ctl_token tk,
                const char *body, const char *content_type, struct client_answer *ret,
                char *errbuf, size_t errlen) {
        struct transfer t = { 0 };
        CURL *h = new_handle(errbuf, errlen);
        int r;

        if (!h)
                return -1;
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
        curl_easy_setopt(h, CURLOPT_TIMEOUT, 120L);
        if (body) {
                curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
                curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long) strlen(body));
        } else if (strcmp(method, "POST") == 0) {
                curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
        }
        r = perform(c, h, path, tk, body ? content_type : NULL, &t, ret, errbuf, errlen);
        curl_easy_cleanup(h);
        return r;
}

int client_upload(const struct ctl *c, const char *path, enum ctl_token tk,
                  const char *content_type, client_producer produce, void *arg,
                  client_tick tick, void *tick_arg, struct client_answer *ret, char *errbuf,
                  size_t errlen) {
        struct transfer t = { .produce = produce, .produce_arg = arg, .tick = tick,
                              .tick_arg = tick_arg };
        CURL *h = new_handle(errbuf, errlen);
        int r;

        if (!h)
                return -1;
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
        curl_easy_setopt(h, CURLOPT_READDATA, &t);
        curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
        curl_easy_setopt(h, CURLOPT_XFERINFODATA, &t);
        curl_easy_setopt(h, CURLOPT_UPLOAD_BUFFERSIZE, 256L * 1024);
        r = perform(c, h, path, tk, content_type, &t, ret, errbuf, errlen);
        curl_easy_cleanup(h);
        return r;
}

char *client_escape(const char *s) {
        char *e = curl_easy_escape(NULL, s, 0), *copy;

        if (!e)
                return NULL;
        copy = strdup(e);
        curl_free(e);
        return copy;
}

void client_answer_free(struct client_answer *a) {
        json_decref(a->doc);
        free(a->body);
        *a = (struct client_answer) { 0 };
}

int client_print_failure(const struct ctl *c, const char *what, const struct client_answer *a) {
        json_t *e = a->doc ? json_object_get(a->doc, "error") : NULL;
        const char *code = json_string_value(json_object_get(e, "code"));
        const char *msg = json_string_value(json_object_get(e, "message"));

        if (c->json && a->body)
                printf("%s\n", a->body);
        if (code || msg)
                ctl_error("%s: HTTP %ld %s: %s", what, a->status, code ? code : "error",
                          msg ? msg : "");
        else
                ctl_error("%s: HTTP %ld", what, a->status);
        return CTL_ERROR;
}
