/* notify: one connection LISTENing on db; every NOTIFY (lib/store.c sends one with each
 * committed batch, ours too) makes the mirror's next read sync first. */
#include "notify.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "../lib/error.h"
#include "../lib/store.h"
#include "../lib/store_notify.h"
#include "log.h"
#include "mirror.h"

/* The longest wait for a notification; a stop wakes it at once. */
#define WAIT_MS 5000
/* Between attempts to (re)connect and LISTEN: from the first to the last, doubling. */
#define BACKOFF_FIRST_MS 500
#define BACKOFF_MAX_MS 30000

struct notify {
        char *conninfo;
        struct mirror *mirror;          /* borrowed */
        pthread_t thread;
        int wake_fd;                    /* readable once notify_stop() ran */
        atomic_bool stop, listening;
        atomic_uint_fast64_t received;
};

/* Opens a connection and LISTENs; NULL (err filled) when either fails. */
static struct store *listen_on(const char *conninfo, struct error *err) {
        struct store *s = NULL;

        if (store_open(conninfo, &s, err) < 0)
                return NULL;
        if (store_listen(s, err) < 0)
                s = store_close(s);
        return s;
}

/* Sleeps ms, or less when stopped. */
static void pause_ms(struct notify *n, int ms) {
        struct pollfd p = { .fd = n->wake_fd, .events = POLLIN };

        (void) poll(&p, 1, ms);
}

/* Listens until the connection is lost or the thread stops. */
static void listen_while_up(struct notify *n, struct store *s) {
        struct error err = { 0 };

        atomic_store(&n->listening, true);
        /* Rows committed while nobody listened are only polled for: look once now. */
        mirror_data_changed(n->mirror);
        while (!atomic_load(&n->stop)) {
                int got = store_wait_notify(s, n->wake_fd, WAIT_MS, &err);

                if (got < 0) {
                        log_warning("Stopped listening for other daemons' writes (polling "
                                    "meanwhile): %s", err.msg);
                        break;
                }
                if (got > 0) {
                        atomic_fetch_add(&n->received, (uint64_t) got);
                        mirror_data_changed(n->mirror);
                }
        }
        atomic_store(&n->listening, false);
}

static void *notify_main(void *arg) {
        struct notify *n = arg;
        int backoff = BACKOFF_FIRST_MS;
        bool warned = false;

        while (!atomic_load(&n->stop)) {
                struct error err = { 0 };
                struct store *s = listen_on(n->conninfo, &err);

                if (!s) {
                        if (!warned)
                                log_warning("Cannot listen for other daemons' writes; they "
                                            "show at the next poll instead: %s", err.msg);
                        warned = true;
                        pause_ms(n, backoff);
                        backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
                        continue;
                }
                log_info("Listening for other daemons' writes on " STORE_NOTIFY_CHANNEL);
                warned = false;
                backoff = BACKOFF_FIRST_MS;
                listen_while_up(n, s);
                store_close(s);
        }
        return NULL;
}

struct notify *notify_start(const char *conninfo, struct mirror *m) {
        struct notify *n = calloc(1, sizeof(*n));

        if (!n)
                return NULL;
        n->mirror = m;
        n->conninfo = strdup(conninfo);
        n->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (!n->conninfo || n->wake_fd < 0 ||
            pthread_create(&n->thread, NULL, notify_main, n) != 0) {
                if (n->wake_fd >= 0)
                        close(n->wake_fd);
                free(n->conninfo);
                free(n);
                return NULL;
        }
        return n;
}

struct notify *notify_stop(struct notify *n) {
        uint64_t one = 1;

        if (!n)
                return NULL;
        atomic_store(&n->stop, true);
        if (write(n->wake_fd, &one, sizeof(one)) < 0)
                log_warning("Cannot wake the listener: %s", strerror(errno));
        pthread_join(n->thread, NULL);
        close(n->wake_fd);
        free(n->conninfo);
        free(n);
        return NULL;
}

bool notify_listening(const struct notify *n) {
        return n && atomic_load(&n->listening);
}

uint64_t notify_received(const struct notify *n) {
        return n ? atomic_load(&n->received) : 0;
}
