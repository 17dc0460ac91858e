/* sender: the outbox's delivery thread (sender.h). */
#include "sender.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../lib/buf.h"
#include "../lib/error.h"
#include "../lib/store.h"
#include "../lib/utf8.h"
#include "config.h"
#include "gauge.h"
#include "log.h"
#include "target.h"

#define IDLE_MS 1000            /* the wait when nothing is due: a short poll */
#define ERROR_MAX 200           /* bytes of an answer kept as the export's last_error */
#define BACKOFF_MAX_S 3600

static const struct target *const targets[] = { &target_webhook, &target_jpd,
                                                &target_productboard };
#define N_TARGETS (sizeof(targets) / sizeof(targets[0]))

/* Per target, since the process started (for /metrics). */
static _Atomic uint64_t attempts_total[N_TARGETS], failures_total[N_TARGETS];

struct sender {
        char *conninfo;
        struct config_live *live;
        struct store *store;            /* the thread's own */
        char registered[64];            /* the targets registered last, as a text[] */
        unsigned seed;                  /* for the jitter */
        pthread_t thread;
        pthread_mutex_t lock;
        pthread_cond_t wake;
        bool reload;                    /* guarded by lock */
        atomic_bool stop;               /* read by an attempt in flight, too */
};

/* One claimed export. */
struct claim {
        bool found;
        char *insight_id, *target, *item, *known_id;
        int version, attempts;
};

static char *dup_or_null(const char *s) {
        return s ? strdup(s) : NULL;
}

static int take_claim(void *ctx, const struct store_row *r) {
        struct claim *c = ctx;

        c->found = true;
        c->insight_id = dup_or_null(r->values[0]);
        c->version = r->values[1] ? (int) strtol(r->values[1], NULL, 10) : 0;
        c->target = dup_or_null(r->values[2]);
        c->attempts = r->values[3] ? (int) strtol(r->values[3], NULL, 10) : 0;
        c->item = dup_or_null(r->values[4]);
        c->known_id = dup_or_null(r->values[5]);
        return c->insight_id && c->target && c->item ? 0 : -ENOMEM;
}

static void claim_free(struct claim *c) {
        free(c->insight_id);
        free(c->target);
        free(c->item);
        free(c->known_id);
        memset(c, 0, sizeof(*c));
}

static int ignore_row(void *ctx, const struct store_row *r) {
        (void) ctx, (void) r;
        return 0;
}

/* The configured targets as a text[] literal, "{webhook,jpd}" ("{}": none). */
static void configured(const struct config *cfg, char *buf, size_t len) {
        size_t at = (size_t) snprintf(buf, len, "{");

        for (size_t i = 0; i < N_TARGETS; i++)
                if (targets[i]->configured(cfg))
                        at += (size_t) snprintf(buf + at, len - at, "%s%s", at > 1 ? "," : "",
                                                targets[i]->name);
        snprintf(buf + at, len - at, "}");
}

static int target_index(const char *name) {
        for (size_t i = 0; i < N_TARGETS; i++)
                if (strcmp(targets[i]->name, name) == 0)
                        return (int) i;
        return -1;
}

/* s percent-encoded as one path segment into buf. */
static void path_segment(const char *s, char *buf, size_t len) {
        static const char hex[] = "0123456789ABCDEF";
        size_t at = 0;

        for (; *s && at + 4 < len; s++) {
                unsigned char c = (unsigned char) *s;

                if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    strchr("-._~", c)) {
                        buf[at++] = (char) c;
                } else {
                        buf[at++] = '%';
                        buf[at++] = hex[c >> 4];
                        buf[at++] = hex[c & 15];
                }
        }
        buf[at] = '\0';
}

/* At most max bytes of s (n of them) as well-formed UTF-8 without control characters:
 * what cannot be stored as text, or shown on one line, becomes '?'. */
static void clean_text(const char *s, size_t n, size_t max, char *buf) {
        size_t at = 0, i = 0;

        while (i < n && at < max) {
                size_t len = s[i] ? utf8_char_len(s + i) : 0;

                if (len == 1 && (unsigned char) s[i] < 0x20)
                        len = 0;
                if (len == 0 || i + len > n) {
                        buf[at++] = '?';
                        i++;
                        continue;
                }
                if (at + len > max)
                        break;
                memmove(buf + at, s + i, len);      /* buf may be s */
                at += len;
                i += len;
        }
        buf[at] = '\0';
}

static int connect_store(struct sender *s, struct error *err) {
        if (store_connected(s->store))
                return 0;
        s->store = store_close(s->store);
        s->registered[0] = '\0';        /* a new connection, maybe a new database: again */
        return store_open(s->conninfo, &s->store, err);
}

static int do_register(struct sender *s, const char *names, struct error *err) {
        const char *params[1] = { names };
        int r = store_rows(s->store, "SELECT dl_outbox_register($1::text[])", 1, params, "n",
                           NULL, ignore_row, NULL, "Registering the delivery targets", err);

        if (r < 0)
                return r;
        snprintf(s->registered, sizeof(s->registered), "%s", names);
        log_info("Delivering accepted insights to %s", strcmp(names, "{}") ? names
                                                                             : "no target");
        return 0;
}

/* The seconds before the next attempt after `attempts` failed ones (this one included). */
static double backoff(struct sender *s, int attempts) {
        double whole = attempts >= 13 ? BACKOFF_MAX_S : ldexp(1.0, attempts - 1);

        if (whole > BACKOFF_MAX_S)
                whole = BACKOFF_MAX_S;
        return whole / 2 + whole / 2 * ((double) rand_r(&s->seed) / RAND_MAX);
}

/* Sends the claimed export and records what came of it. Returns 0, or -EIO when the
 * database failed (the connection is then made again; the export stays pending). */
static int attempt(struct sender *s, const struct config *cfg, const struct claim *c,
                   struct error *err) {
        int ti = target_index(c->target);
        char link[2048], segment[1024], key[TARGET_ID_MAX], version[16], status[16],
                retry[32], error_text[ERROR_MAX + 64];
        const char *outcome;
        json_t *item = json_loads(c->item, 0, NULL);
        struct target_result res;
        int r;

        snprintf(key, sizeof(key), "%s/%d", c->insight_id, c->version);
        clean_text(key, strlen(key), sizeof(key) - 1, key);
        path_segment(c->insight_id, segment, sizeof(segment));
        if (*cfg->public_url)
                snprintf(link, sizeof(link), "%s/api/v1/insights/%s", cfg->public_url, segment);
        else
                snprintf(link, sizeof(link), "http://%s/api/v1/insights/%s", cfg->listen,
                         segment);
        if (ti < 0 || !item) {  /* not ours to send, ever: failing, not retried */
                memset(&res, 0, sizeof(res));
                snprintf(res.answer.error, sizeof(res.answer.error), "%s",
                         ti < 0 ? "no such target" : "the queued item is not JSON");
                r = -EINVAL;
        } else {
                r = targets[ti]->send(cfg, &(struct target_export) {
                        .insight_id = c->insight_id, .version = c->version, .item = item,
                        .known_id = c->known_id, .link = link, .idempotency_key = key },
                        &s->stop, &res);
        }
        json_decref(item);
        if (atomic_load(&s->stop)) {    /* abandoned: it stays pending for the next start */
                outbound_answer_free(&res.answer);
                return 0;
        }
        if (ti >= 0)
                atomic_fetch_add(&attempts_total[ti], 1);
        snprintf(retry, sizeof(retry), "0");
        if (r == 0 && res.answer.status / 100 == 2) {
                outcome = "delivered";
                error_text[0] = '\0';
        } else {
                long st = r == 0 ? res.answer.status : 0;

                if (ti >= 0)
                        atomic_fetch_add(&failures_total[ti], 1);
                outcome = r == -EINVAL ? "failing"
                          : st == 0 || st == 408 || st == 429 || st >= 500 ? "retry" : "failing";
                if (st) {
                        int n = snprintf(error_text, sizeof(error_text), "HTTP %ld: ", st);

                        clean_text(res.answer.body ? res.answer.body : "", res.answer.body_len,
                                   ERROR_MAX, error_text + n);
                } else {
                        clean_text(res.answer.error, strlen(res.answer.error), ERROR_MAX,
                                   error_text);
                }
                if (*outcome == 'r')
                        snprintf(retry, sizeof(retry), "%.3f", backoff(s, c->attempts + 1));
                log_warning("Delivering %s to %s failed (%s): %s", key, c->target,
                            *outcome == 'r' ? "retrying" : "failing until a reload",
                            error_text);
        }
        snprintf(version, sizeof(version), "%d", c->version);
        snprintf(status, sizeof(status), "%ld", res.answer.status);
        {
                const char *params[9] = { c->insight_id, version, c->target, outcome,
                                          res.answer.status ? status : NULL,
                                          *error_text ? error_text : NULL,
                                          *res.external_id ? res.external_id : NULL,
                                          *res.external_url ? res.external_url : NULL, retry };

                r = store_rows(s->store, "SELECT dl_outbox_finish($1, $2::int, $3, $4, $5::int, "
                               "$6, $7, $8, $9::float8)", 9, params, "s", NULL, ignore_row,
                               NULL, "Recording a delivery", err);
        }
        if (r >= 0 && *outcome == 'd')
                log_info("Delivered %s to %s%s%s", key, c->target, *res.external_id ? " as " : "",
                         res.external_id);
        outbound_answer_free(&res.answer);
        return r < 0 ? r : 0;
}

/* One round: register when the targets changed or a reload asked, then claim and attempt
 * one export. Returns 1 when one was attempted, 0 when none was due, -EIO on a database
 * failure. */
static int round_once(struct sender *s, bool reload) {
        const struct config *cfg = config_live_get(s->live);
        struct claim c = { 0 };
        struct error err = { 0 };
        char names[64];
        int r;

        configured(cfg, names, sizeof(names));
        r = connect_store(s, &err);
        if (r == 0 && (reload || strcmp(names, s->registered) != 0))
                r = do_register(s, names, &err);
        if (r == 0 && strcmp(names, "{}") != 0) {
                const char *params[1] = { names };

                r = store_rows(s->store, "SELECT insight_id, version, target, attempts, "
                               "item::text, known_id FROM dl_outbox_claim($1::text[])", 1,
                               params, "snsnss", NULL, take_claim, &c,
                               "Claiming an export", &err);
        }
        if (r >= 0 && c.found) {
                r = attempt(s, cfg, &c, &err);
                if (r == 0) {
                        const char *params[2] = { c.insight_id, c.target };

                        r = store_rows(s->store, "SELECT dl_outbox_release($1, $2)", 2, params,
                                       "b", NULL, ignore_row, NULL, "Releasing an export",
                                       &err);
                }
        }
        if (r < 0 && err.msg[0])
                log_warning("Outbox sender: %s", err.msg);
        r = r < 0 ? -EIO : c.found ? 1 : 0;
        claim_free(&c);
        return r;
}

static void *sender_main(void *arg) {
        struct sender *s = arg;

        pthread_mutex_lock(&s->lock);
        while (!atomic_load(&s->stop)) {
                bool reload = s->reload;
                struct timespec next;
                int r;

                s->reload = false;
                pthread_mutex_unlock(&s->lock);
                r = round_once(s, reload);
                if (r < 0) {
                        s->store = store_close(s->store);   /* ends its hold, if any */
                        if (reload) {
                                pthread_mutex_lock(&s->lock);
                                s->reload = true;
                                pthread_mutex_unlock(&s->lock);
                        }
                }
                pthread_mutex_lock(&s->lock);
                if (r == 1)
                        continue;       /* there may be more due at once */
                clock_gettime(CLOCK_MONOTONIC, &next);
                next.tv_nsec += (long) IDLE_MS * 1000000L;
                next.tv_sec += next.tv_nsec / 1000000000L;
                next.tv_nsec %= 1000000000L;
                while (!atomic_load(&s->stop) && !s->reload &&
                       pthread_cond_timedwait(&s->wake, &s->lock, &next) != ETIMEDOUT)
                        ;
        }
        pthread_mutex_unlock(&s->lock);
        return NULL;
}

struct sender *sender_start(const char *conninfo, struct config_live *live) {
        struct sender *s = calloc(1, sizeof(*s));
        pthread_condattr_t attr;

        if (!s || outbound_init() < 0) {
                free(s);
                return NULL;
        }
        s->conninfo = strdup(conninfo);
        if (!s->conninfo) {
                free(s);
                return NULL;
        }
        s->live = live;
        s->seed = (unsigned) time(NULL) ^ (unsigned) getpid();
        atomic_init(&s->stop, false);
        pthread_mutex_init(&s->lock, NULL);
        pthread_condattr_init(&attr);
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
        pthread_cond_init(&s->wake, &attr);
        pthread_condattr_destroy(&attr);
        if (pthread_create(&s->thread, NULL, sender_main, s) != 0) {
                pthread_cond_destroy(&s->wake);
                pthread_mutex_destroy(&s->lock);
                free(s->conninfo);
                free(s);
                return NULL;
        }
        return s;
}

void sender_reload(struct sender *s) {
        if (!s)
                return;
        pthread_mutex_lock(&s->lock);
        s->reload = true;
        pthread_cond_broadcast(&s->wake);
        pthread_mutex_unlock(&s->lock);
}

struct sender *sender_stop(struct sender *s) {
        if (!s)
                return NULL;
        pthread_mutex_lock(&s->lock);
        atomic_store(&s->stop, true);
        pthread_cond_broadcast(&s->wake);
        pthread_mutex_unlock(&s->lock);
        pthread_join(s->thread, NULL);
        pthread_cond_destroy(&s->wake);
        pthread_mutex_destroy(&s->lock);
        store_close(s->store);
        free(s->conninfo);
        free(s);
        return NULL;
}

/* ------------------------------------------------------------------ /metrics */

static int pending_query(struct store *st, const void *args, store_row_fn *row, void *ctx,
                         struct error *err) {
        (void) args;
        return store_rows(st, "SELECT target, n FROM dl_outbox_pending()", 0, NULL, "sn", NULL,
                          row, ctx, "Counting the pending exports", err);
}

static int pending_line(struct buf *out, const struct store_row *r) {
        char line[128];

        snprintf(line, sizeof(line), "doraloop_outbox_pending{target=\"%s\"} %s\n",
                 r->values[0], r->values[1]);
        return buf_puts(out, line);
}

int sender_metrics(const struct api *api, struct buf *out, struct error *err) {
        static const struct gauge g = {
                .help = "# HELP doraloop_outbox_pending Accepted insight versions waiting "
                        "for delivery, by target.\n# TYPE doraloop_outbox_pending gauge\n",
                .query = pending_query,
                .lines = pending_line,
        };
        char line[256];
        int r = gauge_write(api, &g, out, err);

        if (r < 0)
                return r;
        r = buf_puts(out, "# HELP doraloop_outbox_attempts_total Delivery attempts to "
                             "a product-discovery target by this daemon.\n"
                             "# TYPE doraloop_outbox_attempts_total counter\n");
        for (size_t i = 0; r >= 0 && i < N_TARGETS; i++) {
                snprintf(line, sizeof(line), "doraloop_outbox_attempts_total{target=\"%s\"} %"
                         PRIu64 "\n", targets[i]->name, atomic_load(&attempts_total[i]));
                r = buf_puts(out, line);
        }
        if (r >= 0)
                r = buf_puts(out, "# HELP doraloop_outbox_failures_total Delivery attempts "
                             "that did not deliver (retried or failing).\n"
                             "# TYPE doraloop_outbox_failures_total counter\n");
        for (size_t i = 0; r >= 0 && i < N_TARGETS; i++) {
                snprintf(line, sizeof(line), "doraloop_outbox_failures_total{target=\"%s\"} %"
                         PRIu64 "\n", targets[i]->name, atomic_load(&failures_total[i]));
                r = buf_puts(out, line);
        }
        return r < 0 ? error_set(err, ENOMEM, "unavailable", NULL, "Out of memory") : 0;
}
