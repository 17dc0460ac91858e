/* writer: the ingest queue and the writer threads behind it (group commit), with the
 * spool for when PostgreSQL cannot take a batch. */
#include "writer.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../lib/delivery.h"
#include "../lib/error.h"
#include "../lib/idset.h"
#include "../lib/source.h"
#include "../lib/spool.h"
#include "../lib/store.h"
#include "log.h"

#define DRAIN_RETRY_US 1000000  /* how often to try the database while the spool waits */
#define RATE_WINDOW 60          /* seconds of commit counts behind the spool's pace */
#define SPOOL_RATE_MIN 50       /* deliveries/s the spool takes at least */
#define CHUNK_US 500000         /* what a replay chunk should cost the database */
#define CHUNK_MIN 16            /* deliveries in a replay chunk at least */
#define SPOOL_BURST_US 2000000  /* two seconds of the pace may come at once */

struct writer {
        struct writer_options opt;
        char *conninfo, *production;
        struct store_model model;

        pthread_mutex_t lock;           /* the queue, stats and heartbeats */
        pthread_cond_t nonempty;
        struct delivery *head, *tail;
        size_t queued;
        struct writer_room *rooms;      /* waiting for the queue to have room */
        bool stopping;
        struct writer_stats stats;
        struct log_ratelimit db_down;

        /* Deliveries committed in each of the last RATE_WINDOW seconds and the time the
         * writers spent committing them; from those, the database's pace (deliveries a
         * second, all writers together, as of the last window with any commit) and when
         * the spool may take its next batch. While the database is away the spool takes
         * deliveries at that pace, not at the pace of fsync: a sender sees what it saw
         * before, and the backlog of an outage of T seconds holds about T seconds of the
         * database's work, which the replay (given a chunk after every batch) drains in
         * about as long. The pace also sizes the replay's chunks. */
        uint32_t committed[RATE_WINDOW];
        int64_t busy_us[RATE_WINDOW];
        int64_t committed_sec;
        int64_t db_rate;
        int64_t spool_due_us;

        /* The spool, its ids (for "duplicate" while they wait) and the replay's progress.
         * Held only across an append, the read of one replay chunk, a duplicate check or
         * the bookkeeping after a chunk: never across a database call, so every writer can
         * replay a chunk at once and live batches go to the database meanwhile. Taken
         * before lock, never after.
         *
         * The replay hands out chunks in file order from replay_off. Every record before
         * replay_off is either committed or in a chunk in flight; a chunk that fails sends
         * replay_off back to its start (what follows it is replayed again: every write is
         * idempotent). So once nothing is in flight and replay_off is at the end, all of
         * the spool is committed and it may be emptied. */
        pthread_mutex_t spool_lock;
        struct spool *spool;
        struct idset *spooled_ids;
        int64_t next_drain_us;          /* the database failed: spool until then */
        uint64_t replay_off;            /* handed out up to this offset (a record boundary) */
        uint64_t reported_off;          /* the replay's report covers the spool up to here */
        unsigned in_flight;             /* chunks read and not yet committed or failed */
        uint64_t replayed;              /* deliveries replayed so far */
        struct spool_report replay_rep; /* what the replay found so far */
        bool spool_pending;             /* the spool is not empty; guarded by lock */

        int n_threads;
        struct writer_thread {
                pthread_t id;
                int64_t heartbeat;      /* CLOCK_MONOTONIC us; guarded by lock */
        } threads[];
};

struct writer_arg {
        struct writer *w;
        struct writer_thread *self;
};

/* The calling writer thread, so long operations deep inside can show they are moving. */
static __thread struct writer_thread *current;

static int64_t monotonic_us(void);
static bool stopping(struct writer *w);

static void beat(struct writer *w) {
        if (!current)
                return;
        pthread_mutex_lock(&w->lock);
        current->heartbeat = monotonic_us();
        pthread_mutex_unlock(&w->lock);
}

/* Waits for the spool, beating meanwhile: another writer may hold it through a long
 * replay, which is progress, not a hang. */
static void lock_spool(struct writer *w) {
        for (;;) {
                struct timespec deadline;

                clock_gettime(CLOCK_REALTIME, &deadline);
                deadline.tv_sec += 1;
                if (pthread_mutex_timedlock(&w->spool_lock, &deadline) == 0)
                        return;
                beat(w);
        }
}

static int64_t monotonic_us(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int writer_submit(struct writer *w, struct delivery *d) {
        int r = 0;

        pthread_mutex_lock(&w->lock);
        if (w->stopping)
                r = -ESHUTDOWN;
        else if (w->queued >= w->opt.queue_max)
                r = -EAGAIN;
        else {
                d->next = NULL;
                if (w->tail)
                        w->tail->next = d;
                else
                        w->head = d;
                w->tail = d;
                w->queued++;
                pthread_cond_signal(&w->nonempty);
        }
        pthread_mutex_unlock(&w->lock);
        return r;
}

bool writer_wait_room(struct writer *w, struct writer_room *room) {
        bool full;

        pthread_mutex_lock(&w->lock);
        full = w->queued >= w->opt.queue_max && !w->stopping;
        if (full) {
                room->next = w->rooms;
                w->rooms = room;
        }
        pthread_mutex_unlock(&w->lock);
        return full;
}

/* Runs the waits taken off the list (outside the lock: fn() may submit). */
static void run_rooms(struct writer_room *room) {
        while (room) {
                struct writer_room *next = room->next;

                room->fn(room);
                room = next;
        }
}

/* Takes up to batch_max deliveries; when wait is set, blocks while the queue is empty,
 * beating once a second (and returning, so a waiting spool is retried). Returns how many;
 * 0 with *ret_stop set when stopping with nothing left. */
static size_t take_batch(struct writer *w, struct writer_thread *self, struct delivery **batch,
                         bool wait, bool *ret_stop) {
        struct timespec deadline;
        struct writer_room *rooms = NULL;
        size_t n = 0;

        pthread_mutex_lock(&w->lock);
        self->heartbeat = monotonic_us();
        if (wait && !w->head && !w->stopping) {
                clock_gettime(CLOCK_MONOTONIC, &deadline);
                deadline.tv_sec += 1;
                (void) pthread_cond_timedwait(&w->nonempty, &w->lock, &deadline);
                self->heartbeat = monotonic_us();
        }
        while (w->head && n < w->opt.batch_max) {
                batch[n++] = w->head;
                w->head = w->head->next;
        }
        if (!w->head)
                w->tail = NULL;
        w->queued -= n;
        if (n || w->stopping) {
                rooms = w->rooms;
                w->rooms = NULL;
        }
        *ret_stop = n == 0 && w->stopping;
        pthread_mutex_unlock(&w->lock);
        run_rooms(rooms);
        return n;
}

/* Moves the commit counts on to this second, zeroing the seconds gone by, and updates the
 * database's pace while the window holds any commit. Returns this second. Call with lock
 * held. */
static int64_t roll_rate(struct writer *w) {
        int64_t sec = monotonic_us() / 1000000, busy = 0;
        uint64_t n = 0;

        for (int64_t t = w->committed_sec + 1; t <= sec && t <= w->committed_sec + RATE_WINDOW;
             t++) {
                w->committed[t % RATE_WINDOW] = 0;
                w->busy_us[t % RATE_WINDOW] = 0;
        }
        w->committed_sec = sec;
        for (int i = 0; i < RATE_WINDOW; i++) {
                n += w->committed[i];
                busy += w->busy_us[i];
        }
        /* Each writer's time includes waiting for the others' locks: opt.threads writers
         * committing n deliveries in busy microseconds all told is the database's rate. */
        if (n > 0)
                w->db_rate = (int64_t) (n * 1000000 * (uint64_t) w->opt.threads /
                                        (uint64_t) (busy > 0 ? busy : 1));
        return sec;
}

/* How many deliveries a replay chunk takes: about CHUNK_US of one writer's share of the
 * database, so a batch arriving meanwhile does not wait long, within [CHUNK_MIN,
 * batch_max]. Call with lock held. */
static size_t chunk_size(struct writer *w) {
        int64_t n = w->db_rate / (w->opt.threads > 0 ? w->opt.threads : 1) * CHUNK_US / 1000000;

        if (w->db_rate == 0 || n >= (int64_t) w->opt.batch_max)
                return w->opt.batch_max;
        if (n < CHUNK_MIN)
                n = CHUNK_MIN;
        return (size_t) n < w->opt.batch_max ? (size_t) n : w->opt.batch_max;
}

/* Waits until the spool may take n more deliveries at the database's pace (none when
 * stopping: what is queued then is stored at once), beating meanwhile. */
static void pace_spool(struct writer *w, size_t n) {
        int64_t now, due, rate;

        pthread_mutex_lock(&w->lock);
        (void) roll_rate(w);
        rate = w->db_rate > SPOOL_RATE_MIN ? w->db_rate : SPOOL_RATE_MIN;
        now = monotonic_us();
        due = w->spool_due_us > now - SPOOL_BURST_US ? w->spool_due_us : now - SPOOL_BURST_US;
        w->spool_due_us = due + (int64_t) n * 1000000 / rate;
        pthread_mutex_unlock(&w->lock);
        while (due > (now = monotonic_us()) && !stopping(w)) {
                int64_t until = due - now > 1000000 ? now + 1000000 : due;
                struct timespec ts = { .tv_sec = until / 1000000,
                                       .tv_nsec = (until % 1000000) * 1000 };

                (void) clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
                beat(w);
        }
}

static void log_db_failure(struct writer *w, const struct error *err, size_t n,
                           const char *what) {
        int suppressed;
        bool pass;

        pthread_mutex_lock(&w->lock);
        pass = log_ratelimit_pass(&w->db_down, &suppressed);
        pthread_mutex_unlock(&w->lock);
        if (pass)
                log_error("Failed to store %zu deliveries (%s): %s%s", n, what, err->msg,
                          suppressed ? " (similar messages were suppressed)" : "");
}

static int ensure_connected(struct writer *w, struct store **store, struct error *err) {
        if (store_connected(*store))
                return 0;
        *store = store_close(*store);
        return store_open(w->conninfo, store, err);
}

/* How often a batch is tried again at once after a deadlock or serialization failure (two
 * writers judging one change request can meet in one where the rows lead them). */
#define TRANSIENT_RETRIES 3

/* store_save_batch(), tried again while it meets a deadlock or serialization failure. */
static int save_retrying(struct writer *w, struct store *store, struct delivery **batch,
                         size_t n, struct error *err) {
        int r = store_save_batch(store, &w->model, batch, n, err);

        for (int retry = 0; r == -EAGAIN && retry < TRANSIENT_RETRIES; retry++)
                r = store_save_batch(store, &w->model, batch, n, err);
        return r;
}

/* PostgreSQL refused a row of the batch for its content: store each delivery on its own,
 * and one whose rows it refuses again as raw bytes with status "error", so a bad row never
 * blocks the others nor loses a delivery. Only that refusal makes an "error" row: any other
 * failure (a timeout behind a lock, a deadlock that persists, the connection) returns it,
 * and the batch goes to the spool, to be applied once the database takes it. */
static int save_each(struct writer *w, struct store *store, struct delivery **batch, size_t n,
                     struct error *ret_err) {
        for (size_t i = 0; i < n; i++) {
                struct error err = { 0 };
                int r = save_retrying(w, store, &batch[i], 1, &err);

                if (r == 0)
                        continue;
                if (r != -EBADMSG) {
                        *ret_err = err;
                        return r;
                }
                log_at(LOG_ERR, (&(struct log_fields) { .source = batch[i]->source->name,
                                                        .delivery_id = batch[i]->delivery_id,
                                                        .event = batch[i]->event,
                                                        .status = "error" }),
                       "Failed to apply delivery '%s'; storing it unnormalized: %s",
                       batch[i]->delivery_id, err.msg);
                event_list_clear(&batch[i]->events);
                batch[i]->status = "error";
                free(batch[i]->error);
                batch[i]->error = strdup(err.msg);
                r = store_save_batch(store, &w->model, &batch[i], 1, &err);
                if (r < 0) {
                        *ret_err = err;
                        return r;
                }
        }
        return 0;
}

/* Stores a batch in PostgreSQL. Returns 0, or -EIO when the database cannot take it now
 * (the caller spools it). */
static int save(struct writer *w, struct store **store, struct delivery **batch, size_t n,
                const char *what) {
        struct error err = { 0 };
        int64_t t0 = monotonic_us();
        bool kept = store_connected(*store);
        int r = ensure_connected(w, store, &err);
        int64_t sec;

        if (r == 0)
                r = save_retrying(w, *store, batch, n, &err);
        /* A connection kept idle through a database restart fails on its first use: one
         * fresh connection tries again, rather than spooling a batch the database would take.
         * Had the first try committed after all, the second finds its deliveries stored. */
        if (r == -EIO && kept && !store_connected(*store)) {
                *store = store_close(*store);
                r = store_open(w->conninfo, store, &err);
                if (r == 0)
                        r = save_retrying(w, *store, batch, n, &err);
        }
        if (r == -EBADMSG)
                r = save_each(w, *store, batch, n, &err);
        if (r < 0) {
                /* The connection may be mid-transaction or gone: start afresh next time. */
                *store = store_close(*store);
                log_db_failure(w, &err, n, what);
                return -EIO;
        }
        pthread_mutex_lock(&w->lock);
        sec = roll_rate(w);
        w->committed[sec % RATE_WINDOW] += (uint32_t) n;
        w->busy_us[sec % RATE_WINDOW] += monotonic_us() - t0;
        pthread_mutex_unlock(&w->lock);
        return 0;
}

/* Appends a batch to the spool, answering duplicates from the ids waiting there.
 * Call with spool_lock held. Returns 0 once durable, or -EIO. */
static int spool_batch(struct writer *w, struct delivery **batch, size_t n) {
        struct delivery **fresh = malloc(n * sizeof(*fresh));
        struct error err = { 0 };
        size_t k = 0;
        int r;

        if (!fresh)
                return -EIO;
        for (size_t i = 0; i < n; i++) {
                batch[i]->duplicate = idset_contains(w->spooled_ids, batch[i]->source->name,
                                                     batch[i]->delivery_id);
                if (!batch[i]->duplicate) {
                        fresh[k++] = batch[i];
                        if (idset_add(w->spooled_ids, batch[i]->source->name,
                                      batch[i]->delivery_id) < 0) {
                                /* Forget the ids added so far, as below: none of them is
                                 * spooled, and a retry must not be taken for a duplicate. */
                                for (size_t j = 0; j < k; j++)
                                        idset_remove(w->spooled_ids, fresh[j]->source->name,
                                                     fresh[j]->delivery_id);
                                free(fresh);
                                return -EIO;
                        }
                }
        }
        r = k ? spool_append(w->spool, fresh, k, &err) : 0;
        if (r < 0) {
                /* Not durable: forget the ids, so a retry is not taken for a duplicate. */
                for (size_t i = 0; i < k; i++)
                        idset_remove(w->spooled_ids, fresh[i]->source->name,
                                     fresh[i]->delivery_id);
                log_error("Failed to spool %zu deliveries: %s", k, err.msg);
                r = -EIO;
        } else {
                pthread_mutex_lock(&w->lock);
                w->stats.spooled += k;
                w->stats.spooled_total += k;
                w->spool_pending |= k > 0;
                pthread_mutex_unlock(&w->lock);
        }
        free(fresh);
        return r;
}

static bool spool_waiting(struct writer *w) {
        bool waiting;

        pthread_mutex_lock(&w->lock);
        waiting = w->spool_pending;
        pthread_mutex_unlock(&w->lock);
        return waiting;
}

static bool stopping(struct writer *w) {
        bool r;

        pthread_mutex_lock(&w->lock);
        r = w->stopping;
        pthread_mutex_unlock(&w->lock);
        return r;
}

/* The database failed: for a while, batches go straight to the spool (while it waits)
 * rather than each wait for a connection attempt. Call with spool_lock held. */
static void database_failed(struct writer *w) {
        w->next_drain_us = monotonic_us() + DRAIN_RETRY_US;
}

/* All of the spool is committed: report what the replay skipped and empty it. Call with
 * spool_lock held, nothing in flight and replay_off at the end. */
static void finish_replay(struct writer *w) {
        struct spool_report rep = w->replay_rep;
        struct error err = { 0 };

        if (rep.damaged || rep.torn_bytes)
                log_warning("The spool held %" PRIu64 " damaged record(s) (%" PRIu64
                            " bytes skipped) and %" PRIu64 " bytes of a torn last record; "
                            "those were not replayed", rep.damaged, rep.skipped_bytes,
                            rep.torn_bytes);
        if (spool_clear(w->spool, &err) < 0) {
                log_error("Failed to empty the replayed spool: %s", err.msg);
                database_failed(w);     /* tried again a second later */
                w->replay_rep = (struct spool_report) { 0 };    /* reported already */
                return;
        }
        idset_clear(w->spooled_ids);
        pthread_mutex_lock(&w->lock);
        w->stats.spooled = 0;
        w->spool_pending = false;
        pthread_mutex_unlock(&w->lock);
        log_notice("Replayed %" PRIu64 " spooled deliveries into the database", w->replayed);
        w->replay_off = w->reported_off = 0;
        w->replayed = 0;
        w->replay_rep = (struct spool_report) { 0 };
}

struct chunk {
        struct delivery **ds;
        size_t n;
};

static int collect(struct delivery *d, void *ctx) {
        struct chunk *c = ctx;

        c->ds[c->n++] = d;
        return 0;
}

/* Replays the next chunk of the spool (chunk_size() deliveries) into the database: read under
 * spool_lock, normalized and committed without it, so the other writers replay the chunks
 * after it meanwhile and live batches are not held up. A chunk cut short (the database
 * went away again) is done again, and so is everything after it: every write is
 * idempotent, so nothing counts twice; after a crash the replay starts over from the
 * beginning for the same reason. Empties the spool once all of it is committed. chunk has
 * room for batch_max deliveries. Returns true when a chunk was committed (there may be
 * more), false when there is nothing to do now. */
static bool replay_step(struct writer *w, struct store **store, struct delivery **chunk) {
        struct chunk c = { .ds = chunk };
        struct spool_report rep;
        struct error err = { 0 };
        uint64_t start, next;
        size_t max;
        int r;

        lock_spool(w);
        if (!spool_waiting(w) || monotonic_us() < w->next_drain_us) {
                pthread_mutex_unlock(&w->spool_lock);
                return false;
        }
        start = w->replay_off;
        if (start >= spool_bytes(w->spool)) {
                /* All handed out: the last writer to commit its chunk empties the spool
                 * (here only when that failed before, or held no whole record). */
                if (w->in_flight == 0)
                        finish_replay(w);
                pthread_mutex_unlock(&w->spool_lock);
                return false;
        }
        pthread_mutex_lock(&w->lock);
        max = chunk_size(w);
        pthread_mutex_unlock(&w->lock);
        r = spool_read_from(w->spool, start, max, collect, &c, &rep, &next, &err);
        if (r < 0) {
                pthread_mutex_unlock(&w->spool_lock);
                for (size_t i = 0; i < c.n; i++)
                        delivery_free(c.ds[i]);
                log_error("Failed to read the spool: %s", err.msg);
                lock_spool(w);
                database_failed(w);
                pthread_mutex_unlock(&w->spool_lock);
                return false;
        }
        /* Damage is counted once, the first time the replay passes it. */
        if (start >= w->reported_off) {
                w->replay_rep.damaged += rep.damaged;
                w->replay_rep.skipped_bytes += rep.skipped_bytes;
                w->replay_rep.torn_bytes += rep.torn_bytes;
        }
        if (next > w->reported_off)
                w->reported_off = next;
        w->replay_off = next;
        w->in_flight++;
        pthread_mutex_unlock(&w->spool_lock);

        beat(w);
        /* Normalized anew: the spool keeps what arrived, not what it meant. */
        for (size_t i = 0; i < c.n && r == 0; i++)
                r = delivery_normalize(c.ds[i], NULL, &w->opt.normalize);
        if (r == 0 && c.n)
                r = save(w, store, c.ds, c.n, "replaying the spool");
        for (size_t i = 0; i < c.n; i++)
                c.ds[i] = delivery_free(c.ds[i]);
        beat(w);

        lock_spool(w);
        w->in_flight--;
        if (r < 0) {
                if (start < w->replay_off)
                        w->replay_off = start;
                database_failed(w);
        } else {
                w->replayed += c.n;
                pthread_mutex_lock(&w->lock);
                /* readyz says 503 until the spool is empty, whatever the count says */
                w->stats.spooled = w->stats.spooled > c.n ? w->stats.spooled - c.n : 1;
                pthread_mutex_unlock(&w->lock);
                if (w->in_flight == 0 && w->replay_off >= spool_bytes(w->spool))
                        finish_replay(w);
        }
        pthread_mutex_unlock(&w->spool_lock);
        return r == 0;
}

/* Stores one batch: into PostgreSQL, or the spool (at the database's pace) when the
 * database fails (or failed a moment ago while the spool waits). While the spool waits, a
 * delivery whose id is in it is answered "duplicate" from there and not stored again (its
 * spooled copy will be); the others go to the database at once, ahead of the replay: the
 * upserts do not depend on the order deliveries arrive in. Reorders batch. Returns 0 once
 * durable, or -EIO. */
static int store_batch(struct writer *w, struct store **store, struct delivery **batch,
                       size_t n) {
        size_t k = n;
        int r;

        if (spool_waiting(w)) {
                lock_spool(w);
                if (monotonic_us() < w->next_drain_us) {
                        pthread_mutex_unlock(&w->spool_lock);
                        pace_spool(w, n);
                        lock_spool(w);
                        r = spool_batch(w, batch, n);
                        pthread_mutex_unlock(&w->spool_lock);
                        return r;
                }
                k = 0;
                for (size_t i = 0; i < n; i++) {
                        struct delivery *d = batch[i];

                        d->duplicate = idset_contains(w->spooled_ids, d->source->name,
                                                      d->delivery_id);
                        if (!d->duplicate) {
                                batch[i] = batch[k];
                                batch[k++] = d;
                        }
                }
                pthread_mutex_unlock(&w->spool_lock);
        }
        if (k == 0 || save(w, store, batch, k, "writing to the database") == 0)
                return 0;
        lock_spool(w);
        database_failed(w);
        pthread_mutex_unlock(&w->spool_lock);
        pace_spool(w, k);
        lock_spool(w);
        r = spool_batch(w, batch, k);
        pthread_mutex_unlock(&w->spool_lock);
        return r;
}

static void *writer_main(void *arg) {
        struct writer *w = ((struct writer_arg *) arg)->w;
        struct writer_thread *self = ((struct writer_arg *) arg)->self;
        struct delivery **batch = calloc(w->opt.batch_max, sizeof(*batch));
        struct delivery **chunk = calloc(w->opt.batch_max, sizeof(*chunk));
        struct store *store = NULL;
        bool stop = false, replaying = false;

        free(arg);
        current = self;
        if (!batch || !chunk)
                abort(); /* at start-up; nothing has been accepted yet */
        while (!stop) {
                /* While the replay has chunks to give, do not wait for deliveries. */
                size_t n = take_batch(w, self, batch, !replaying, &stop);
                int r;

                /* A waiting spool: one chunk of it after each batch, so the backlog gets
                 * at least as much of the database as new deliveries (a batch holds what
                 * came in during the chunk before it) and no delivery waits for more than
                 * a chunk. What is left when stopping is replayed at the next start. */
                if (n == 0) {
                        replaying = !stop && !stopping(w) && spool_waiting(w) &&
                                    replay_step(w, &store, chunk);
                        continue;
                }
                r = store_batch(w, &store, batch, n);

                pthread_mutex_lock(&w->lock);
                w->stats.batches++;
                for (size_t i = 0; i < n; i++) {
                        if (r < 0)
                                w->stats.failed++;
                        else if (batch[i]->duplicate)
                                w->stats.duplicates++;
                        else
                                w->stats.stored++;
                }
                pthread_mutex_unlock(&w->lock);

                for (size_t i = 0; i < n; i++) {
                        batch[i]->result = r < 0 ? -EIO : 0;
                        batch[i]->done(batch[i]);
                }
                replaying = !stopping(w) && spool_waiting(w) && replay_step(w, &store, chunk);
        }
        store_close(store);
        free(chunk);
        free(batch);
        return NULL;
}

static int remember_spooled(struct delivery *d, void *ctx) {
        struct writer *w = ctx;
        int r = idset_add(w->spooled_ids, d->source->name, d->delivery_id);

        delivery_free(d);
        if (r > 0)
                w->stats.spooled++;
        return r < 0 ? r : 0;
}

/* A spool left by a previous run: count it and remember its ids (a redelivery of one is a
 * duplicate); the writers replay it once the database answers. */
static int open_spool(struct writer *w, char *errbuf, size_t errlen) {
        struct spool_report rep;
        struct error err = { 0 };
        int r;

        w->spooled_ids = idset_new();
        if (!w->spooled_ids)
                return -ENOMEM;
        r = spool_open(w->opt.spool_dir, &w->spool, &err);
        if (r == 0 && spool_bytes(w->spool) > 0)
                r = spool_read(w->spool, remember_spooled, w, &rep, &err);
        if (r < 0) {
                snprintf(errbuf, errlen, "spool_dir: %s", err.msg[0] ? err.msg : strerror(-r));
                return r;
        }
        /* Even with no whole record, so the damage is reported and cleared. */
        w->spool_pending = spool_bytes(w->spool) > 0;
        if (spool_bytes(w->spool) > 0)
                log_notice("Found %zu deliveries in the spool from a previous run "
                           "(%" PRIu64 " damaged, %" PRIu64 " torn bytes); replaying them",
                           w->stats.spooled, rep.damaged, rep.torn_bytes);
        return 0;
}

int writer_start(const struct writer_options *o, struct writer **ret_writer, char *errbuf,
                 size_t errlen) {
        struct writer *w = calloc(1, sizeof(*w) + (size_t) o->threads * sizeof(w->threads[0]));
        pthread_condattr_t attr;
        int r;

        if (!w)
                return -ENOMEM;
        w->opt = *o;
        w->conninfo = strdup(o->conninfo);
        w->production = strdup(o->production_environments ? o->production_environments : "");
        w->model = (struct store_model) { w->production, o->incident_link_window_hours };
        w->db_down = (struct log_ratelimit) LOG_RATELIMIT(10, 3);
        pthread_mutex_init(&w->lock, NULL);
        pthread_mutex_init(&w->spool_lock, NULL);
        pthread_condattr_init(&attr);
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
        pthread_cond_init(&w->nonempty, &attr);
        pthread_condattr_destroy(&attr);
        if (!w->conninfo || !w->production) {
                snprintf(errbuf, errlen, "out of memory");
                writer_stop(w);
                return -ENOMEM;
        }
        r = open_spool(w, errbuf, errlen);
        if (r < 0) {
                writer_stop(w);
                return r;
        }
        for (int i = 0; i < o->threads; i++) {
                struct writer_arg *arg = malloc(sizeof(*arg));

                w->threads[i].heartbeat = monotonic_us();
                if (arg)
                        *arg = (struct writer_arg) { w, &w->threads[i] };
                r = arg ? pthread_create(&w->threads[i].id, NULL, writer_main, arg) : ENOMEM;
                if (r != 0) {
                        free(arg);
                        snprintf(errbuf, errlen, "cannot start a writer thread: %s",
                                 strerror(r));
                        writer_stop(w);
                        return -r;
                }
                w->n_threads++;
        }
        *ret_writer = w;
        return 0;
}

struct writer *writer_stop(struct writer *w) {
        if (!w)
                return NULL;
        pthread_mutex_lock(&w->lock);
        w->stopping = true;
        pthread_cond_broadcast(&w->nonempty);
        pthread_mutex_unlock(&w->lock);
        for (int i = 0; i < w->n_threads; i++)
                pthread_join(w->threads[i].id, NULL);
        pthread_mutex_destroy(&w->lock);
        pthread_mutex_destroy(&w->spool_lock);
        pthread_cond_destroy(&w->nonempty);
        spool_close(w->spool);
        idset_free(w->spooled_ids);
        free(w->conninfo);
        free(w->production);
        free(w);
        return NULL;
}

int64_t writer_heartbeat(struct writer *w) {
        int64_t oldest = INT64_MAX;

        pthread_mutex_lock(&w->lock);
        for (int i = 0; i < w->n_threads; i++)
                if (w->threads[i].heartbeat < oldest)
                        oldest = w->threads[i].heartbeat;
        pthread_mutex_unlock(&w->lock);
        return oldest;
}

void writer_get_stats(struct writer *w, struct writer_stats *ret_stats) {
        pthread_mutex_lock(&w->lock);
        *ret_stats = w->stats;
        ret_stats->queued = w->queued;
        pthread_mutex_unlock(&w->lock);
}
