/* guard: a deadline for request headers and a lingering close, on a thread of its own.
 * Every connection is on one list from accept to close; the thread shuts down those whose
 * headers are overdue, and reads and drops what clients still send after an early answer. */
#include "guard.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

#define TICK_MS 250     /* how late past its deadline a connection may be closed */

struct guard_conn {
        struct guard *guard;
        struct guard_conn *prev, *next;
        int fd;
        bool waiting;           /* for a request's headers, until deadline_ms */
        bool killed;            /* shut down for its deadline: never lingered on */
        int64_t deadline_ms;
        size_t linger_bytes;
};

struct lingerer {
        struct lingerer *prev, *next;
        int fd;                 /* our own duplicate: the socket outlives MHD's close */
        int64_t until_ms;
        size_t budget;
};

struct guard {
        struct guard_options opt;
        pthread_t thread;
        int epoll_fd, wake_fd;
        pthread_mutex_t lock;   /* guards both lists and their entries' fields */
        struct guard_conn *conns;
        struct lingerer *lingers;
        size_t n_lingers;
        struct log_ratelimit kills;
};

static int64_t now_ms(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The peer's address as text, for the log. */
static void peer_name(int fd, char *buf, size_t len) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        const void *a = NULL;

        snprintf(buf, len, "?");
        if (getpeername(fd, (struct sockaddr *) &ss, &sl) < 0)
                return;
        if (ss.ss_family == AF_INET)
                a = &((struct sockaddr_in *) &ss)->sin_addr;
        else if (ss.ss_family == AF_INET6)
                a = &((struct sockaddr_in6 *) &ss)->sin6_addr;
        if (a && !inet_ntop(ss.ss_family, a, buf, (socklen_t) len))
                snprintf(buf, len, "?");
}

static void linger_finish(struct guard *g, struct lingerer *l) {
        pthread_mutex_lock(&g->lock);
        if (l->prev)
                l->prev->next = l->next;
        else
                g->lingers = l->next;
        if (l->next)
                l->next->prev = l->prev;
        g->n_lingers--;
        pthread_mutex_unlock(&g->lock);
        (void) epoll_ctl(g->epoll_fd, EPOLL_CTL_DEL, l->fd, NULL);
        close(l->fd);
        free(l);
}

/* Reads and drops what has arrived; ends the linger at EOF, an error or its budget. */
static void linger_drain(struct guard *g, struct lingerer *l) {
        static char sink[16384];        /* only this thread writes it; never read */

        for (;;) {
                size_t want = l->budget < sizeof(sink) ? l->budget : sizeof(sink);
                ssize_t n = read(l->fd, sink, want);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                        return;
                if (n <= 0 || (size_t) n >= l->budget) {
                        linger_finish(g, l);
                        return;
                }
                l->budget -= (size_t) n;
        }
}

/* Shuts down the connections whose headers are overdue; MHD then sees them close. */
static void kill_overdue(struct guard *g, int64_t now) {
        char peer[INET6_ADDRSTRLEN] = "";
        int killed = 0, suppressed;
        bool pass;

        pthread_mutex_lock(&g->lock);
        for (struct guard_conn *c = g->conns; c; c = c->next) {
                if (!c->waiting || c->killed || now < c->deadline_ms)
                        continue;
                if (!killed)
                        peer_name(c->fd, peer, sizeof(peer));
                (void) shutdown(c->fd, SHUT_RDWR);
                c->killed = true;
                killed++;
        }
        pass = killed && log_ratelimit_pass(&g->kills, &suppressed);
        pthread_mutex_unlock(&g->lock);
        if (pass)
                log_warning("Closed %d connection(s) (from %s%s) whose request headers were not "
                            "complete in time (header_timeout)%s", killed, peer,
                            killed > 1 ? " and others" : "",
                            suppressed ? " (similar messages were suppressed)" : "");
}

static void expire_lingers(struct guard *g, int64_t now) {
        struct lingerer *l, *next;

        pthread_mutex_lock(&g->lock);
        l = g->lingers;
        pthread_mutex_unlock(&g->lock);
        /* Others only push at the head, and only this thread removes, so the next
         * pointers from here on change under nobody else's hands. */
        for (; l; l = next) {
                next = l->next;
                if (now >= l->until_ms)
                        linger_finish(g, l);
        }
}

static void *guard_main(void *arg) {
        struct guard *g = arg;

        for (;;) {
                struct epoll_event ev[64];
                int n = epoll_wait(g->epoll_fd, ev, 64, TICK_MS);
                int64_t now;

                for (int i = 0; i < n; i++) {
                        if (!ev[i].data.ptr)
                                return NULL;    /* guard_stop */
                        linger_drain(g, ev[i].data.ptr);
                }
                now = now_ms();
                expire_lingers(g, now);
                kill_overdue(g, now);
        }
}

int guard_start(const struct guard_options *o, struct guard **ret_guard) {
        struct guard *g = calloc(1, sizeof(*g));
        struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
        int r;

        if (!g)
                return -ENOMEM;
        g->opt = *o;
        g->kills = (struct log_ratelimit) LOG_RATELIMIT(10, 5);
        g->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
        g->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (g->epoll_fd < 0 || g->wake_fd < 0 ||
            epoll_ctl(g->epoll_fd, EPOLL_CTL_ADD, g->wake_fd, &ev) < 0) {
                r = -errno;
                goto fail;
        }
        pthread_mutex_init(&g->lock, NULL);
        r = -pthread_create(&g->thread, NULL, guard_main, g);
        if (r < 0) {
                pthread_mutex_destroy(&g->lock);
                goto fail;
        }
        *ret_guard = g;
        return 0;
fail:
        if (g->epoll_fd >= 0)
                close(g->epoll_fd);
        if (g->wake_fd >= 0)
                close(g->wake_fd);
        free(g);
        return r;
}

struct guard_conn *guard_conn_open(struct guard *g, int fd) {
        struct guard_conn *c = calloc(1, sizeof(*c));

        if (!c)
                return NULL;
        c->guard = g;
        c->fd = fd;
        c->waiting = true;
        c->deadline_ms = now_ms() + g->opt.header_ms;
        pthread_mutex_lock(&g->lock);
        c->next = g->conns;
        if (c->next)
                c->next->prev = c;
        g->conns = c;
        pthread_mutex_unlock(&g->lock);
        return c;
}

void guard_conn_headers_done(struct guard_conn *c) {
        if (!c)
                return;
        pthread_mutex_lock(&c->guard->lock);
        c->waiting = false;
        pthread_mutex_unlock(&c->guard->lock);
}

void guard_conn_request_done(struct guard_conn *c, size_t linger_bytes) {
        int64_t deadline;

        if (!c)
                return;
        deadline = now_ms() + c->guard->opt.idle_ms;
        pthread_mutex_lock(&c->guard->lock);
        c->waiting = true;
        c->deadline_ms = deadline;
        c->linger_bytes = linger_bytes;
        pthread_mutex_unlock(&c->guard->lock);
}

/* Under g->lock: keeps the socket open on a duplicate and hands it to the thread. */
static void linger_start(struct guard *g, int fd, size_t budget) {
        struct lingerer *l;
        struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP };

        if (g->n_lingers >= GUARD_LINGER_MAX)
                return;         /* a flood of early answers: those close at once */
        l = calloc(1, sizeof(*l));
        if (!l)
                return;
        l->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
        if (l->fd < 0) {
                free(l);
                return;
        }
        (void) shutdown(l->fd, SHUT_WR);        /* the answer is out: say so now */
        l->until_ms = now_ms() + GUARD_LINGER_MS;
        l->budget = budget;
        ev.data.ptr = l;
        l->next = g->lingers;
        if (l->next)
                l->next->prev = l;
        g->lingers = l;
        g->n_lingers++;
        if (epoll_ctl(g->epoll_fd, EPOLL_CTL_ADD, l->fd, &ev) < 0) {
                g->lingers = l->next;
                if (l->next)
                        l->next->prev = NULL;
                g->n_lingers--;
                close(l->fd);
                free(l);
        }
}

void guard_conn_close(struct guard_conn *c) {
        struct guard *g;

        if (!c)
                return;
        g = c->guard;
        pthread_mutex_lock(&g->lock);
        if (c->prev)
                c->prev->next = c->next;
        else
                g->conns = c->next;
        if (c->next)
                c->next->prev = c->prev;
        if (c->linger_bytes && !c->killed)
                linger_start(g, c->fd, c->linger_bytes);
        pthread_mutex_unlock(&g->lock);
        free(c);
}

struct guard *guard_stop(struct guard *g) {
        uint64_t one = 1;

        if (!g)
                return NULL;
        if (write(g->wake_fd, &one, sizeof(one)) != sizeof(one))
                log_warning("Failed to wake the connection guard: %s", strerror(errno));
        pthread_join(g->thread, NULL);
        while (g->lingers)
                linger_finish(g, g->lingers);
        while (g->conns) {      /* none after MHD_stop_daemon; freed all the same */
                struct guard_conn *c = g->conns;

                g->conns = c->next;
                free(c);
        }
        close(g->epoll_fd);
        close(g->wake_fd);
        pthread_mutex_destroy(&g->lock);
        free(g);
        return NULL;
}
