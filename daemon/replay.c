/* replay: the background replay job behind /api/v1/replay (daemon/replay.h). */
#include "replay.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "../lib/delivery.h"
#include "../lib/doc.h"
#include "../lib/error.h"
#include "../lib/normalize.h"
#include "../lib/store.h"
#include "../lib/timefmt.h"
#include "config.h"
#include "mirror.h"
#include "log.h"
#include "reply.h"

/* A chunk is one transaction: up to a few hundred deliveries and a few MiB of bodies
 * (their text is held twice, by libpq and by the deliveries, while the chunk is
 * normalized), so memory stays bounded. It holds the writers' locks of its services while
 * it runs, so a live delivery of one of them waits for it: its size follows its time,
 * halved above CHUNK_SLOW_US and doubled below CHUNK_FAST_US. */
#define CHUNK_DELIVERIES 200
#define CHUNK_DELIVERIES_MIN 10
#define CHUNK_DELIVERIES_FIRST 20      /* before any is timed */
#define CHUNK_BYTES (4u << 20)
#define CHUNK_SLOW_US 250000
#define CHUNK_FAST_US 60000
#define SKIPPED_LISTED 100      /* the first ones listed; the rest only counted */
#define JOB_ID_LEN 40

enum job_status { JOB_IDLE, JOB_RUNNING, JOB_DONE, JOB_FAILED };

static const char *const status_names[] = { "idle", "running", "done", "failed" };

struct skipped {
        char *delivery_id, *why;
};

struct replay {
        char *conninfo;
        struct mirror *mirror;          /* told whenever the job changed the tables */
        pthread_mutex_t lock;           /* guards everything below */
        bool starting;                  /* a POST is opening the job's connection */
        bool thread_joinable;
        bool stop;
        pthread_t thread;

        /* The current or last job, as GET shows it. */
        char job[JOB_ID_LEN];
        enum job_status status;
        int64_t total, done, n_skipped;
        struct skipped skipped[SKIPPED_LISTED];
        size_t n_listed;
        int64_t started_us, finished_us;
        char message[256];              /* why it failed */
        int64_t chunk_started;          /* CLOCK_MONOTONIC us; the job's thread's own */

        /* What the job's thread owns while it runs. */
        struct store *store;
        struct normalize_options options;
        struct store_model model;
};

static int64_t now_us(void) {
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t monotonic_us(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* "rj-<unix seconds>-<8 hex>": sortable, and unique enough across daemons. */
static void new_job_id(char out[JOB_ID_LEN]) {
        uint32_t rnd = 0;

        if (getrandom(&rnd, sizeof(rnd), GRND_NONBLOCK) != sizeof(rnd))
                rnd = (uint32_t) now_us();
        snprintf(out, JOB_ID_LEN, "rj-%" PRId64 "-%08" PRIx32, now_us() / 1000000, rnd);
}

static void clear_skipped(struct replay *r) {
        for (size_t i = 0; i < r->n_listed; i++) {
                free(r->skipped[i].delivery_id);
                free(r->skipped[i].why);
        }
        r->n_listed = 0;
        r->n_skipped = 0;
}

struct replay *replay_new(const char *conninfo, struct mirror *mirror) {
        struct replay *r = calloc(1, sizeof(*r));

        if (!r)
                return NULL;
        r->mirror = mirror;
        r->conninfo = strdup(conninfo);
        if (!r->conninfo) {
                free(r);
                return NULL;
        }
        pthread_mutex_init(&r->lock, NULL);
        return r;
}

struct replay *replay_free(struct replay *r) {
        if (!r)
                return NULL;
        pthread_mutex_lock(&r->lock);
        r->stop = true;
        pthread_mutex_unlock(&r->lock);
        if (r->thread_joinable)
                pthread_join(r->thread, NULL);
        clear_skipped(r);
        pthread_mutex_destroy(&r->lock);
        free(r->conninfo);
        free(r);
        return NULL;
}

/* ------------------------------------------------------------------ the job's thread */

static int normalize_stored(struct delivery *d, void *ctx) {
        struct replay *r = ctx;

        return delivery_normalize(d, NULL, &r->options);
}

static void on_started(void *ctx, int64_t total) {
        struct replay *r = ctx;

        pthread_mutex_lock(&r->lock);
        r->total = total;
        pthread_mutex_unlock(&r->lock);
        mirror_data_changed(r->mirror);    /* the tables were emptied */
        r->chunk_started = monotonic_us();
}

static size_t on_progress(void *ctx, int64_t done, size_t chunk) {
        struct replay *r = ctx;
        int64_t now = monotonic_us(), took = now - r->chunk_started;
        bool go;

        mirror_data_changed(r->mirror);
        pthread_mutex_lock(&r->lock);
        r->done = done;
        go = !r->stop;
        pthread_mutex_unlock(&r->lock);
        r->chunk_started = now;
        if (took > CHUNK_SLOW_US)
                chunk = chunk / 2 > CHUNK_DELIVERIES_MIN ? chunk / 2 : CHUNK_DELIVERIES_MIN;
        else if (took < CHUNK_FAST_US)
                chunk = chunk * 2;      /* store_replay keeps it to CHUNK_DELIVERIES */
        return go ? chunk : 0;
}

static void on_skipped(void *ctx, const char *delivery_id, const char *why) {
        struct replay *r = ctx;

        log_warning("Replay %s: skipped delivery '%s': %s", r->job, delivery_id, why);
        pthread_mutex_lock(&r->lock);
        if (r->n_listed < SKIPPED_LISTED) {
                struct skipped *s = &r->skipped[r->n_listed];

                s->delivery_id = strdup(delivery_id);
                s->why = strdup(why);
                if (s->delivery_id && s->why)
                        r->n_listed++;
                else {
                        free(s->delivery_id);
                        free(s->why);
                }
        }
        r->n_skipped++;
        pthread_mutex_unlock(&r->lock);
}

static void *job_main(void *arg) {
        struct replay *r = arg;
        const struct store_replay_hooks hooks = {
                .chunk_deliveries = CHUNK_DELIVERIES,
                .chunk_first = CHUNK_DELIVERIES_FIRST,
                .chunk_bytes = CHUNK_BYTES,
                .normalize = normalize_stored,
                .started = on_started,
                .progress = on_progress,
                .skipped = on_skipped,
                .ctx = r,
        };
        struct error err = { 0 };
        int n;

        log_notice("Replay %s: replaying every stored delivery", r->job);
        n = store_replay(r->store, &r->model, &hooks, &err);
        mirror_data_changed(r->mirror);
        r->store = store_close(r->store);       /* releases the advisory lock */
        pthread_mutex_lock(&r->lock);
        r->status = n < 0 ? JOB_FAILED : JOB_DONE;
        r->finished_us = now_us();
        if (n < 0)
                snprintf(r->message, sizeof(r->message), "%s",
                         err.msg[0] ? err.msg : "Out of memory");
        pthread_mutex_unlock(&r->lock);
        if (n < 0)
                log_error("Replay %s failed: %s; the normalized tables hold what it applied "
                          "so far until a replay runs again", r->job, r->message);
        else
                log_notice("Replay %s: replayed %d deliveries, %" PRId64 " skipped", r->job,
                           n, r->n_skipped);
        return NULL;
}

/* ------------------------------------------------------------------ requests */

static json_t *running_body(const char *job) {
        return json_pack("{s:s,s:s}", "job", job, "status", "running");
}

/* -EBUSY (409) naming the job that runs (here, or on another daemon: holder, maybe ""). */
static int conflict(const char *holder, bool here, json_t **ret_body) {
        char msg[200];

        snprintf(msg, sizeof(msg), "A replay is already running%s%s%s; one runs at a time",
                 *holder ? " (job " : "", holder, *holder ? ")" : "");
        if (!here)
                snprintf(msg + strlen(msg), sizeof(msg) - strlen(msg),
                         " across the daemons sharing this database");
        *ret_body = json_pack("{s:{s:s,s:s},s:s?,s:s}", "error", "code", "replay_running",
                              "message", msg, "job", *holder ? holder : NULL, "status",
                              "running");
        return -EBUSY;
}

static int unavailable(const char *msg, json_t **ret_body) {
        *ret_body = doc_error("unavailable", "%s", msg);
        return -EAGAIN;
}

/* Opens the job's connection and takes the cross-daemon lock: 0, -EBUSY or -EAGAIN (body
 * set). */
static int claim(struct replay *r, const char *job, struct store **ret_store,
                 json_t **ret_body) {
        char holder[64] = "";
        struct error err = { 0 };
        struct store *s = NULL;
        int got;

        got = store_open(r->conninfo, &s, &err);
        if (got == 0)
                got = store_replay_lock(s, job, holder, sizeof(holder), &err);
        if (got == 1) {
                *ret_store = s;
                return 0;
        }
        store_close(s);
        if (got == 0)
                return conflict(holder, false, ret_body);
        log_error("Failed to start a replay: %s", err.msg);
        return unavailable(err.msg[0] ? err.msg : "Out of memory", ret_body);
}

int replay_start(struct replay *r, const struct config *cfg, json_t **ret_body) {
        char job[JOB_ID_LEN];
        struct store *s = NULL;
        int status, e;

        pthread_mutex_lock(&r->lock);
        if (r->starting || r->status == JOB_RUNNING) {
                status = conflict(r->starting ? "" : r->job, true, ret_body);
                pthread_mutex_unlock(&r->lock);
                return status;
        }
        r->starting = true;
        pthread_mutex_unlock(&r->lock);

        new_job_id(job);
        status = claim(r, job, &s, ret_body);
        pthread_mutex_lock(&r->lock);
        r->starting = false;
        if (status != 0) {
                pthread_mutex_unlock(&r->lock);
                return status;
        }
        if (r->thread_joinable) {       /* the last job's thread has ended: reap it */
                pthread_join(r->thread, NULL);
                r->thread_joinable = false;
        }
        clear_skipped(r);
        memcpy(r->job, job, sizeof(job));
        r->status = JOB_RUNNING;
        r->total = r->done = 0;
        r->started_us = now_us();
        r->finished_us = 0;
        r->message[0] = '\0';
        r->store = s;
        r->options = config_normalize_options(cfg);
        r->model = (struct store_model) { cfg->production_environments,
                                          cfg->incident_link_window_hours };
        e = pthread_create(&r->thread, NULL, job_main, r);
        if (e != 0) {
                r->store = store_close(r->store);
                r->status = JOB_FAILED;
                r->finished_us = now_us();
                snprintf(r->message, sizeof(r->message), "Cannot start a thread: %s",
                         strerror(e));
                pthread_mutex_unlock(&r->lock);
                return unavailable("Cannot start the replay's thread", ret_body);
        }
        r->thread_joinable = true;
        *ret_body = running_body(r->job);
        pthread_mutex_unlock(&r->lock);
        return 0;
}

static json_t *time_or_null(int64_t us) {
        char buf[TIMEFMT_LEN];

        return us ? json_string(timefmt_format(us, buf)) : json_null();
}

int replay_status(struct replay *r, json_t **ret_body) {
        json_t *skipped = json_array(), *body;

        pthread_mutex_lock(&r->lock);
        for (size_t i = 0; skipped && i < r->n_listed; i++)
                json_array_append_new(skipped, json_pack("{s:s,s:s}", "delivery_id",
                                                         r->skipped[i].delivery_id, "message",
                                                         r->skipped[i].why));
        body = json_pack("{s:s?,s:s,s:I,s:I,s:o,s:I,s:o,s:o,s:s?}",
                         "job", r->job[0] ? r->job : NULL,
                         "status", status_names[r->status],
                         "deliveries", (json_int_t) r->total,
                         "done", (json_int_t) r->done,
                         "skipped", skipped ? skipped : json_array(),
                         "skipped_count", (json_int_t) r->n_skipped,
                         "started_at", time_or_null(r->started_us),
                         "finished_at", time_or_null(r->finished_us),
                         "message", r->message[0] ? r->message : NULL);
        pthread_mutex_unlock(&r->lock);
        *ret_body = body;
        return 0;
}

int replay_post(const struct api *api, const struct api_request *req, json_t **ret_body,
                struct error *err) {
        int r = replay_start(api->replay, req->cfg, ret_body);

        (void) err;     /* every answer of replay_start() carries its body */
        return r == 0 ? REPLY_ACCEPTED : r;
}

int replay_get(const struct api *api, const struct api_request *req, json_t **ret_body,
               struct error *err) {
        (void) req;
        (void) err;
        return replay_status(api->replay, ret_body);
}
