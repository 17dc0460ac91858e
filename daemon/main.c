/* doraloopd: the process. Reads the configuration, brings the schema up to date, starts
 * the writers and the HTTP server, then serves systemd until told to stop: readiness,
 * STATUS=, the watchdog, reload on SIGHUP and a draining stop on SIGTERM (via a signalfd). */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include "../lib/arena.h"
#include "../lib/buf.h"
#include "../lib/error.h"
#include "../lib/store.h"
#include "api.h"
#include "config.h"
#include "dbpool.h"
#include "http.h"
#include "log.h"
#include "mirror.h"
#include "notify.h"
#include "replay.h"
#include "insights.h"
#include "retention.h"
#include "sender.h"
#include "writer.h"

#ifdef DORALOOP_FAULT_INJECTION
#include "../lib/delivery.h"
#include "../lib/source.h"
#endif

#ifndef DORALOOP_VERSION
#define DORALOOP_VERSION "0.0.0"
#endif

#define DRAIN_TIMEOUT_MS 20000

/* Bounds on every wait a writer makes on its database connection (the read API's pool gets
 * the same). They are what lets the watchdog tell a slow database, where the writer keeps
 * coming round its loop (with errors) and keeps beating, from a writer that is stuck. */
#define DB_CONNECT_TIMEOUT_S 5          /* per address tried */
#define DB_STATEMENT_TIMEOUT_MS 10000   /* the server cancels a statement after this */
#define DB_TCP_USER_TIMEOUT_MS 20000    /* unacknowledged data: the peer is gone */
#define DB_KEEPALIVE_IDLE_S 10          /* a silent peer is probed after this ... */
#define DB_KEEPALIVE_INTERVAL_S 5       /* ... every this ... */
#define DB_KEEPALIVE_COUNT 3            /* ... and given up after this many probes */

/* A writer that has not come round its loop for this long is stuck, not slow: one round is
 * a connect plus one batch, and each wait in it is bounded above (5 s to connect, 10 s per
 * statement, 25 s for a vanished server). Only a deadlock or a bug gets past it. */
#define WRITER_STALL_MS 60000

/* The HTTP side's heartbeat is a self-probe: GET /healthz through the listening socket,
 * every PROBE_INTERVAL_MS. It is stuck when no probe has been answered for HTTP_STALL_MS
 * (or connection_timeout + 30 s, if longer, so that a burst that fills every connection
 * slot is waited out before it counts as a wedge). */
#define PROBE_INTERVAL_MS 1000
#define PROBE_TIMEOUT_MS 5000
#define HTTP_STALL_MS 60000
#define READY_TIMEOUT_MS 30000          /* for the first probe to be answered */

struct limits {
        long statement_timeout_ms;
        int64_t writer_stall_us, http_stall_us;
};

static int64_t monotonic_us(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void usage(void) {
        printf("Usage: doraloopd [--config PATH] [--listen HOST:PORT] [--db CONNINFO]\n"
               "                 [--spool-dir DIR] [--KEY VALUE ...]\n"
               "\n"
               "Receives CI/CD and Jira webhooks, stores them in PostgreSQL and serves DORA\n"
               "metrics. Every key below can be set in the config file (default %s,\n"
               "'key = value' lines), as an environment variable DORALOOP_<KEY>, or as a\n"
               "flag --<key> (with - or _); flags win over the environment, which wins over\n"
               "the file. Secrets may also come from $CREDENTIALS_DIRECTORY/<key>.\n"
               "SIGHUP re-reads the file and the credentials.\n"
               "\n"
               "Keys:\n", CONFIG_DEFAULT_PATH);
        config_print_keys();
        printf("\n  --help      show this help\n  --version   show the version\n");
}

static int migrate(const struct config *cfg) {
        struct store *s = NULL;
        struct error err = { 0 };
        int r;

        int applied = 0;

        r = store_open(cfg->db, &s, &err);
        if (r == 0)
                r = applied = store_migrate(s, &err);
        if (r >= 0) {
                /* What derived state depends on, for every writer (and every daemon). */
                const char *names[] = { "production_environments", "change_policy",
                                        "change_key_projects", "incident_severities" };
                const char *values[] = { cfg->production_environments, cfg->change_policy,
                                         config_string(cfg, "change_key_projects"),
                                         cfg->incident_severities };

                r = store_configure(s, names, values, 4, &err);
        }
        store_close(s);
        if (r < 0) {
                log_error("Failed to prepare the database: %s", err.msg);
                return r;
        }
        if (applied > 0)
                log_info("Applied %d database migration(s)", applied);
        return 0;
}

static void warn_open_doors(const struct config *cfg) {
        if (cfg->allow_unsigned)
                log_warning("allow_unsigned is on: sources without a secret accept unsigned "
                            "deliveries. Use this for local trials only.");
        if (!cfg->api_token || !*cfg->api_token)
                log_warning("api_token is not set: the read API is open to anyone who can "
                            "reach it.");
}

/* Appends str to b unless an earlier append failed; *r keeps the first error. */
static void put(struct buf *b, int *r, const char *str) {
        if (*r == 0)
                *r = buf_puts(b, str);
}

/* Appends v as a conninfo value: quoted in a key=value string, percent-encoded in a URI. */
static void put_value(struct buf *b, int *r, const char *v, bool uri) {
        static const char hex[] = "0123456789ABCDEF";

        if (!uri)
                put(b, r, "'");
        for (const char *p = v; *p && *r == 0; p++) {
                unsigned char c = (unsigned char) *p;

                if (uri && !isalnum(c) && !strchr("-._~", c)) {
                        char esc[4] = { '%', hex[c >> 4], hex[c & 15], '\0' };

                        put(b, r, esc);
                } else if (!uri && (c == '\\' || c == '\'')) {
                        char esc[3] = { '\\', (char) c, '\0' };

                        put(b, r, esc);
                } else {
                        *r = buf_append(b, p, 1);
                }
        }
        if (!uri)
                put(b, r, "'");
}

/* The conninfo the writers and the read API's pool use: the configured one with the
 * timeouts above put first, so that a keyword the user sets wins (libpq keeps the last
 * value of a keyword). options carries $PGOPTIONS along, which it would otherwise hide.
 * Returns a string the caller frees, or NULL on OOM. */
static char *timed_conninfo(const char *conninfo, long statement_timeout_ms) {
        bool uri = strncmp(conninfo, "postgresql://", 13) == 0 ||
                   strncmp(conninfo, "postgres://", 11) == 0;
        const char *pgoptions = getenv("PGOPTIONS"), *query = strchr(conninfo, '?');
        const struct { const char *key; long value; } settings[] = {
                { "connect_timeout", DB_CONNECT_TIMEOUT_S },
                { "tcp_user_timeout", DB_TCP_USER_TIMEOUT_MS },
                { "keepalives", 1 },
                { "keepalives_idle", DB_KEEPALIVE_IDLE_S },
                { "keepalives_interval", DB_KEEPALIVE_INTERVAL_S },
                { "keepalives_count", DB_KEEPALIVE_COUNT },
        };
        char options[16 * 1024];
        struct buf b;
        int r = 0;

        snprintf(options, sizeof(options), "%s%s-c statement_timeout=%ld",
                 pgoptions ? pgoptions : "", pgoptions && *pgoptions ? " " : "",
                 statement_timeout_ms);
        buf_init(&b, 64 * 1024);
        if (uri) {      /* ours open the query string */
                r = buf_append(&b, conninfo, query ? (size_t) (query - conninfo)
                                                   : strlen(conninfo));
                put(&b, &r, "?");
        }
        for (size_t i = 0; i < sizeof(settings) / sizeof(settings[0]); i++) {
                char v[24];

                snprintf(v, sizeof(v), "%ld", settings[i].value);
                put(&b, &r, settings[i].key);
                put(&b, &r, "=");
                put_value(&b, &r, v, uri);
                put(&b, &r, uri ? "&" : " ");
        }
        put(&b, &r, "options=");
        put_value(&b, &r, options, uri);
        if (uri && query && query[1]) {
                put(&b, &r, "&");
                put(&b, &r, query + 1);
        } else if (!uri) {
                put(&b, &r, " ");
                put(&b, &r, conninfo);
        }
        if (r < 0) {
                buf_free(&b);
                return NULL;
        }
        return buf_steal(&b);
}

/* ------------------------------------------------------------------ fault injection */

#ifdef DORALOOP_FAULT_INJECTION
/* Test build only (build/fault/doraloopd, -DDORALOOP_FAULT_INJECTION). DORALOOP_FAULT_*
 * variables shorten the limits above so that tests take seconds, and SIGUSR1 wedges one
 * writer thread for real: it hands the writer a delivery whose done() blocks until shutdown,
 * as a deadlock in the writer would. */
static struct {
        pthread_mutex_t lock;
        pthread_cond_t release;
        bool released;
        unsigned injected;
} fault = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, 0 };

static void fault_block(struct delivery *d) {
        pthread_mutex_lock(&fault.lock);
        while (!fault.released)
                pthread_cond_wait(&fault.release, &fault.lock);
        pthread_mutex_unlock(&fault.lock);
        delivery_free(d);
}

static void fault_stall_writer(struct writer *w) {
        struct delivery *d = calloc(1, sizeof(*d));
        struct timespec now;
        char id[64];

        clock_gettime(CLOCK_REALTIME, &now);
        snprintf(id, sizeof(id), "doraloop-fault-%ld-%u", (long) getpid(), ++fault.injected);
        if (d) {
                d->source = source_find("generic");
                d->delivery_id = strdup(id);
                d->event = strdup("fault");
                d->headers = strdup("{}");
                d->body = strdup("{}");
                d->body_len = 2;
                d->received_us = (int64_t) now.tv_sec * 1000000 + now.tv_nsec / 1000;
                d->done = fault_block;
        }
        if (!d || !d->source || !d->delivery_id || !d->event || !d->headers || !d->body ||
            writer_submit(w, d) < 0) {
                log_error("Fault injection: failed to wedge a writer");
                delivery_free(d);
                return;
        }
        log_warning("Fault injection: a writer thread is wedged until shutdown");
}

static void fault_release(void) {
        pthread_mutex_lock(&fault.lock);
        fault.released = true;
        pthread_cond_broadcast(&fault.release);
        pthread_mutex_unlock(&fault.lock);
}

static long fault_ms(const char *name, long def) {
        const char *v = getenv(name);
        char *end;
        long n;

        if (!v)
                return def;
        errno = 0;
        n = strtol(v, &end, 10);
        if (errno || end == v || *end || n <= 0) {
                log_warning("Fault injection: ignoring %s='%s'", name, v);
                return def;
        }
        log_warning("Fault injection: %s=%ld", name, n);
        return n;
}
#endif

static struct limits limits_get(const struct config *cfg) {
        long http_ms = HTTP_STALL_MS;
        struct limits l;

        if (cfg->connection_timeout * 1000 + 30000 > http_ms)
                http_ms = cfg->connection_timeout * 1000 + 30000;
        l = (struct limits) {
                .statement_timeout_ms = DB_STATEMENT_TIMEOUT_MS,
                .writer_stall_us = (int64_t) WRITER_STALL_MS * 1000,
                .http_stall_us = (int64_t) http_ms * 1000,
        };
#ifdef DORALOOP_FAULT_INJECTION
        l.statement_timeout_ms = fault_ms("DORALOOP_FAULT_STATEMENT_TIMEOUT_MS",
                                          l.statement_timeout_ms);
        l.writer_stall_us = (int64_t) fault_ms("DORALOOP_FAULT_WRITER_STALL_MS",
                                               WRITER_STALL_MS) * 1000;
        l.http_stall_us = (int64_t) fault_ms("DORALOOP_FAULT_HTTP_STALL_MS", http_ms) * 1000;
#endif
        return l;
}

/* ------------------------------------------------------------------ the HTTP self-probe */

struct probe {
        struct sockaddr_storage addr;
        socklen_t addrlen;
        bool disabled;                  /* the listener is of a kind we cannot connect to */
        pthread_t thread;
        bool started;

        pthread_mutex_t lock;
        pthread_cond_t changed;         /* CLOCK_MONOTONIC; stop set or a probe answered */
        bool stop;                      /* guarded by lock, like answered */
        int64_t answered;               /* CLOCK_MONOTONIC us of the last 200, or 0 */
};

/* Where a client reaches the listening socket fd: its own address, with a wildcard bind
 * replaced by loopback. Returns 0 or a negative errno. */
static int probe_address(int fd, struct sockaddr_storage *ret, socklen_t *ret_len) {
        socklen_t len = sizeof(*ret);

        if (fd < 0)
                return -EBADF;
        if (getsockname(fd, (struct sockaddr *) ret, &len) < 0)
                return -errno;
        if (ret->ss_family == AF_INET) {
                struct sockaddr_in *in = (struct sockaddr_in *) ret;

                if (in->sin_addr.s_addr == htonl(INADDR_ANY))
                        in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        } else if (ret->ss_family == AF_INET6) {
                struct sockaddr_in6 *in6 = (struct sockaddr_in6 *) ret;

                if (IN6_IS_ADDR_UNSPECIFIED(&in6->sin6_addr))
                        in6->sin6_addr = in6addr_loopback;
        } else if (ret->ss_family != AF_UNIX) {
                return -EAFNOSUPPORT;
        }
        *ret_len = len;
        return 0;
}

/* One GET /healthz as any client sends it. Its answer needs a pool thread to accept, read,
 * route and reply, so it fails when the pool is wedged (every thread stuck in a handler or
 * on a lock) or no connection slot frees up; a timestamp of the last request handled would
 * not tell an idle server from a wedged one. Returns 0 on a 200, else a negative errno. */
static int probe_once(const struct probe *p) {
        static const char request[] = "GET /healthz HTTP/1.1\r\nHost: localhost\r\n"
                                      "User-Agent: doraloopd-watchdog\r\n"
                                      "Connection: close\r\n\r\n";
        const struct timeval tv = { PROBE_TIMEOUT_MS / 1000, (PROBE_TIMEOUT_MS % 1000) * 1000 };
        char answer[16];
        size_t got = 0;
        int fd, r = 0;

        fd = socket(p->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
            setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0 ||
            connect(fd, (const struct sockaddr *) &p->addr, p->addrlen) < 0 ||
            send(fd, request, sizeof(request) - 1, MSG_NOSIGNAL) != sizeof(request) - 1)
                r = -errno;
        while (r == 0 && got < 12) {    /* "HTTP/1.1 200" */
                ssize_t n = recv(fd, answer + got, sizeof(answer) - 1 - got, 0);

                if (n <= 0)
                        r = n < 0 ? -errno : -ECONNRESET;
                else
                        got += (size_t) n;
        }
        close(fd);
        if (r < 0)
                return r;
        answer[got] = '\0';
        return strncmp(answer, "HTTP/1.1 200", 12) == 0 || strncmp(answer, "HTTP/1.0 200", 12) == 0
                       ? 0 : -EPROTO;
}

static void deadline_after(struct timespec *ts, long ms) {
        clock_gettime(CLOCK_MONOTONIC, ts);
        ts->tv_sec += ms / 1000;
        ts->tv_nsec += (ms % 1000) * 1000000;
        if (ts->tv_nsec >= 1000000000) {
                ts->tv_sec++;
                ts->tv_nsec -= 1000000000;
        }
}

static void *probe_main(void *arg) {
        struct probe *p = arg;

        pthread_mutex_lock(&p->lock);
        while (!p->stop) {
                struct timespec next;
                bool ok;

                pthread_mutex_unlock(&p->lock);
                ok = probe_once(p) == 0;
                pthread_mutex_lock(&p->lock);
                if (ok) {
                        p->answered = monotonic_us();
                        pthread_cond_broadcast(&p->changed);
                }
                deadline_after(&next, PROBE_INTERVAL_MS);
                while (!p->stop &&
                       pthread_cond_timedwait(&p->changed, &p->lock, &next) != ETIMEDOUT)
                        ;
        }
        pthread_mutex_unlock(&p->lock);
        return NULL;
}

/* Starts probing the listener of h. Returns 0 or a negative errno. */
static int probe_start(struct probe *p, struct http *h) {
        pthread_condattr_t attr;
        int r;

        pthread_mutex_init(&p->lock, NULL);
        pthread_condattr_init(&attr);
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
        pthread_cond_init(&p->changed, &attr);
        pthread_condattr_destroy(&attr);
        r = probe_address(http_listen_fd(h), &p->addr, &p->addrlen);
        if (r < 0) {
                log_warning("The watchdog cannot probe this kind of listening socket (%s); "
                            "it watches the writers only", strerror(-r));
                p->disabled = true;
                return 0;
        }
        r = pthread_create(&p->thread, NULL, probe_main, p);
        if (r != 0)
                return -r;
        p->started = true;
        return 0;
}

/* Waits up to timeout_ms for a first answer. */
static bool probe_wait_answered(struct probe *p, long timeout_ms) {
        struct timespec deadline;
        bool answered;

        if (p->disabled)
                return true;
        deadline_after(&deadline, timeout_ms);
        pthread_mutex_lock(&p->lock);
        while (!p->answered &&
               pthread_cond_timedwait(&p->changed, &p->lock, &deadline) != ETIMEDOUT)
                ;
        answered = p->answered != 0;
        pthread_mutex_unlock(&p->lock);
        return answered;
}

/* CLOCK_MONOTONIC us of the last answered probe (now when probing is disabled). */
static int64_t probe_heartbeat(struct probe *p) {
        int64_t t;

        if (p->disabled)
                return monotonic_us();
        pthread_mutex_lock(&p->lock);
        t = p->answered;
        pthread_mutex_unlock(&p->lock);
        return t;
}

/* Stops the thread (within one probe timeout); a no-op when it is not running. */
static void probe_stop(struct probe *p) {
        if (!p->started)
                return;
        pthread_mutex_lock(&p->lock);
        p->stop = true;
        pthread_cond_broadcast(&p->changed);
        pthread_mutex_unlock(&p->lock);
        pthread_join(p->thread, NULL);
        p->started = false;
}

/* ------------------------------------------------------------------ systemd */

struct service {
        int argc;
        char **argv;
        struct config_live *live;
        struct writer *writer;
        struct sender *sender;          /* registers its targets again on a reload */
        struct probe probe;
        struct limits limits;
        uint64_t watchdog_us;           /* 0: systemd wants no pings */
        bool healthy;                   /* as of the last check; a change is logged once */
        char status[256];               /* the last STATUS= sent */
};

/* Sends STATUS= when it changed. */
static void report_status(struct service *s, const char *stuck) {
        struct writer_stats st;
        char status[256];

        writer_get_stats(s->writer, &st);
        snprintf(status, sizeof(status),
                 "%s; %zu queued, %" PRIu64 " stored, %" PRIu64 " duplicates, %" PRIu64
                 " failed", stuck ? stuck : "Accepting webhooks", st.queued, st.stored,
                 st.duplicates, st.failed);
        if (strcmp(status, s->status) == 0)
                return;
        memcpy(s->status, status, sizeof(status));
        (void) sd_notifyf(0, "STATUS=%s", status);
}

/* The watchdog check: pings only while both sides show a fresh heartbeat. */
static void check_health(struct service *s) {
        int64_t now = monotonic_us();
        int64_t writer_age = now - writer_heartbeat(s->writer);
        int64_t http_age = now - probe_heartbeat(&s->probe);
        char stuck[128] = "";

        if (writer_age >= s->limits.writer_stall_us)
                snprintf(stuck, sizeof(stuck), "Stuck: a writer has not come round its loop "
                         "for %" PRId64 " s", writer_age / 1000000);
        else if (http_age >= s->limits.http_stall_us)
                snprintf(stuck, sizeof(stuck), "Stuck: HTTP has not answered a probe for %"
                         PRId64 " s", http_age / 1000000);
        report_status(s, *stuck ? stuck : NULL);
        if (!*stuck) {
                if (!s->healthy)
                        log_notice("Watchdog: healthy again");
                s->healthy = true;
                if (s->watchdog_us)
                        (void) sd_notify(0, "WATCHDOG=1");
        } else if (s->healthy) {
                s->healthy = false;
                log_error("Watchdog: %s; %s", stuck, s->watchdog_us
                                  ? "no more pings, so systemd will restart the service"
                                  : "no watchdog is set, so nothing restarts the service");
        }
}

static void reload(struct service *s) {
        const struct config *old = config_live_get(s->live);
        char kept[256], errbuf[512];
        struct config *cfg;

        (void) sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%" PRId64 "\n"
                             "STATUS=Reloading the configuration", monotonic_us());
        s->status[0] = '\0';
        cfg = config_reload(old, s->argc, s->argv, kept, sizeof(kept), errbuf, sizeof(errbuf));
        if (!cfg) {
                log_error("Failed to reload the configuration, keeping the running one: %s",
                          errbuf);
        } else if (config_live_swap(s->live, cfg) < 0) {
                config_free(cfg);
                log_error("Failed to reload the configuration, keeping the running one: "
                          "out of memory");
        } else {
                if (*kept)
                        log_warning("Reload: %s only take(s) effect on restart; keeping the "
                                    "running value", kept);
                warn_open_doors(cfg);
                sender_reload(s->sender);
                log_notice("Reloaded the configuration");
        }
        (void) sd_notify(0, "READY=1");
        check_health(s);
}

/* Blocks the signals we handle (threads inherit the mask) and returns a signalfd. */
static int signals_open(void) {
        sigset_t set;

        sigemptyset(&set);
        sigaddset(&set, SIGTERM);
        sigaddset(&set, SIGINT);
        sigaddset(&set, SIGHUP);
#ifdef DORALOOP_FAULT_INJECTION
        sigaddset(&set, SIGUSR1);
#endif
        if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0)
                return -errno;
        signal(SIGPIPE, SIG_IGN);
        return signalfd(-1, &set, SFD_CLOEXEC);
}

static int inherited_listener(void) {
        int n = sd_listen_fds(1);

        if (n > 1)
                log_warning("Got %d sockets from systemd; serving on the first", n);
        return n >= 1 ? SD_LISTEN_FDS_START : -1;
}

/* Serves signals and the watchdog until SIGTERM or SIGINT. Returns 0, or -errno when the
 * signalfd fails. */
static int serve(struct service *s, int sfd) {
        uint64_t interval_us = 1000000;         /* STATUS= refresh, and pings */
        int64_t next;

        if (s->watchdog_us && s->watchdog_us / 4 < interval_us)
                interval_us = s->watchdog_us / 4 > 10000 ? s->watchdog_us / 4 : 10000;
        check_health(s);
        next = monotonic_us() + (int64_t) interval_us;
        for (;;) {
                struct signalfd_siginfo si;
                struct pollfd pfd = { .fd = sfd, .events = POLLIN };
                int64_t now = monotonic_us();
                int n;

                if (now >= next) {
                        check_health(s);
                        next += (int64_t) interval_us;
                        if (next <= now)
                                next = now + (int64_t) interval_us;
                        continue;
                }
                n = poll(&pfd, 1, (int) ((next - now + 999) / 1000));
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                if (n == 0)
                        continue;
                if (read(sfd, &si, sizeof(si)) != sizeof(si)) {
                        if (errno == EINTR || errno == EAGAIN)
                                continue;
                        return -errno;
                }
                if (si.ssi_signo == SIGHUP) {
                        log_notice("SIGHUP: reloading the configuration");
                        reload(s);
                        continue;
                }
#ifdef DORALOOP_FAULT_INJECTION
                if (si.ssi_signo == SIGUSR1) {
                        fault_stall_writer(s->writer);
                        continue;
                }
#endif
                log_notice("Received %s; finishing requests in flight",
                           strsignal((int) si.ssi_signo));
                (void) sd_notify(0, "STOPPING=1\nSTATUS=Finishing requests in flight");
                return 0;
        }
}

int main(int argc, char **argv) {
        struct config *cfg = NULL;
        struct service s = { .argc = argc, .argv = argv, .healthy = true };
        struct dbpool *pool = NULL, *primary = NULL;
        struct notify *notify = NULL;
        struct replay *replay = NULL;
        struct mirror *mirror = NULL;
        struct retention *retention = NULL;
        struct insights *insights = NULL;
        struct http *http = NULL;
        struct api api;
        char errbuf[512], *conninfo = NULL, *query_conninfo = NULL;
        int sfd = -1, ret = EXIT_FAILURE, listen_fd, r;

        arena_install(); /* before any jansson allocation or thread: see lib/arena.h */
        for (int i = 1; i < argc; i++) {
                if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
                        usage();
                        return EXIT_SUCCESS;
                }
                /* For scripts/gen-config-docs: the key reference, from the table. */
                if (strcmp(argv[i], "--reference=markdown") == 0 ||
                    strcmp(argv[i], "--reference=man") == 0) {
                        config_write_reference(stdout, strcmp(argv[i], "--reference=man") == 0);
                        return EXIT_SUCCESS;
                }
                if (strcmp(argv[i], "--reference=secrets") == 0) {
                        config_write_secrets(stdout);
                        return EXIT_SUCCESS;
                }
                if (strcmp(argv[i], "--version") == 0) {
                        printf("doraloopd %s\n", DORALOOP_VERSION);
                        return EXIT_SUCCESS;
                }
        }
        log_open();
        cfg = config_load(argc, argv, errbuf, sizeof(errbuf));
        if (!cfg) {
                fprintf(stderr, "doraloopd: %s\n", errbuf);
                return EXIT_FAILURE;
        }
        s.live = config_live_new(cfg);
        if (!s.live) {
                config_free(cfg);
                fprintf(stderr, "doraloopd: out of memory\n");
                return EXIT_FAILURE;
        }
        warn_open_doors(cfg);
        s.limits = limits_get(cfg);

        sfd = signals_open();
        if (sfd < 0) {
                log_error("Failed to set up signal handling: %s", strerror(errno));
                goto out;
        }
        (void) sd_notify(0, "STATUS=Applying database migrations");
        if (migrate(cfg) < 0)
                goto out;
        conninfo = timed_conninfo(cfg->db, s.limits.statement_timeout_ms);
        if (!conninfo) {
                log_error("Out of memory");
                goto out;
        }
        {
                struct writer_options wo = {
                        .conninfo = conninfo,
                        .threads = (int) cfg->writers,
                        .batch_max = (size_t) cfg->batch_max,
                        .queue_max = (size_t) cfg->queue_max,
                        .production_environments = cfg->production_environments,
                        .incident_link_window_hours = cfg->incident_link_window_hours,
                        .spool_dir = cfg->spool_dir,
                        .normalize = config_normalize_options(cfg),
                };
                char why[512];

                r = writer_start(&wo, &s.writer, why, sizeof(why));
                if (r < 0) {
                        log_error("Failed to start the writer: %s", why);
                        goto out;
                }
        }
        /* query_db, when set, is the reads' own pool; the gate keeps one on db. */
        primary = dbpool_new(conninfo, 8);
        if (*cfg->query_db)
                query_conninfo = timed_conninfo(cfg->query_db, s.limits.statement_timeout_ms);
        pool = !*cfg->query_db ? primary : query_conninfo ? dbpool_new(query_conninfo, 8) : NULL;
        if (!primary || !pool) {
                log_error("Out of memory");
                goto out;
        }
        mirror = mirror_new(pool, cfg->mirror_poll_ms);
        replay = mirror ? replay_new(conninfo, mirror) : NULL;
        if (!replay) {
                log_error("Out of memory");
                goto out;
        }
        retention = retention_start(conninfo, cfg->raw_retention_days);
        if (!retention) {
                log_error("Failed to start the upkeep of events_raw");
                goto out;
        }
        insights = insights_start(conninfo, &(struct store_insight_weights) {
                .window_days = config_insight_window_days(cfg),
                .support_hours = cfg->insight_support_hours,
                .failure_hours = cfg->insight_failure_hours });
        if (!insights) {
                log_error("Failed to start the upkeep of the insights");
                goto out;
        }
        s.sender = sender_start(conninfo, s.live);
        if (!s.sender) {
                log_error("Failed to start the sender of accepted insights");
                goto out;
        }
        notify = notify_start(conninfo, mirror);
        if (!notify)
                log_warning("Cannot start the listener for other daemons' writes; polling "
                            "every %ld ms instead", cfg->mirror_poll_ms);
        api = (struct api) { .pool = pool, .primary = primary, .notify = notify,
                             .writer = s.writer, .replay = replay, .mirror = mirror };
        listen_fd = inherited_listener();
        if (http_start(&(struct http_options) { .live = s.live, .writer = s.writer,
                                                .api = &api, .listen_fd = listen_fd },
                       &http, errbuf, sizeof(errbuf)) < 0) {
                log_error("Failed to start HTTP: %s", errbuf);
                goto out;
        }
        r = probe_start(&s.probe, http);
        if (r < 0) {
                log_error("Failed to start the watchdog's HTTP probe: %s", strerror(-r));
                goto out;
        }
        if (!probe_wait_answered(&s.probe, READY_TIMEOUT_MS)) {
                log_error("Failed to start HTTP: GET /healthz went unanswered for %d s",
                          READY_TIMEOUT_MS / 1000);
                goto out;
        }
        if (listen_fd >= 0)
                log_notice("doraloopd %s serving on the socket systemd passed in",
                           DORALOOP_VERSION);
        else {
                char routes[SOURCE_MAX * 24] = "";

                source_names(routes, sizeof(routes), "|");
                log_notice("doraloopd %s listening on http://%s/ (the dashboard; post "
                           "webhooks to http://%s/hooks/<%s>)",
                           DORALOOP_VERSION, cfg->listen, cfg->listen, routes);
        }
        /* Migrations ran, the writers are up and /healthz answered through the listener. */
        (void) sd_notify(0, "READY=1");
        if (sd_watchdog_enabled(0, &s.watchdog_us) <= 0)
                s.watchdog_us = 0;
        else
                log_info("Watchdog: pinging every %" PRIu64 " ms while the writers come round "
                         "their loop within %" PRId64 " s and HTTP answers within %" PRId64
                         " s", s.watchdog_us / 4000 < 1000 ? s.watchdog_us / 4000 : 1000,
                         s.limits.writer_stall_us / 1000000, s.limits.http_stall_us / 1000000);

        r = serve(&s, sfd);
        if (r < 0) {
                log_error("Failed to read signals: %s", strerror(-r));
                (void) sd_notify(0, "STOPPING=1");
        } else {
                ret = EXIT_SUCCESS;
        }
        probe_stop(&s.probe);
        if (!http_drain(http, DRAIN_TIMEOUT_MS))
                log_warning("Requests still in flight after %d ms; closing them",
                            DRAIN_TIMEOUT_MS);
out:
        probe_stop(&s.probe);
#ifdef DORALOOP_FAULT_INJECTION
        fault_release();
#endif
        /* Reads stop first (a second drain is harmless): they use the writer and the pool.
         * The writer goes last but one: it flushes what the HTTP side handed over, and
         * resumes the connections it wakes before MHD closes them. */
        if (http)
                (void) http_drain(http, 0);
        s.writer = writer_stop(s.writer);
        http = http_stop(http);
        retention = retention_stop(retention);
        insights = insights_stop(insights);
        s.sender = sender_stop(s.sender);
        replay = replay_free(replay);   /* after HTTP: no handler uses it; waits one chunk */
        notify = notify_stop(notify);
        mirror = mirror_free(mirror);   /* after the writer, HTTP, replay and notify */
        if (pool != primary)
                pool = dbpool_free(pool);
        primary = dbpool_free(primary);
        free(conninfo);
        free(query_conninfo);
        s.live = config_live_free(s.live);
        if (sfd >= 0)
                close(sfd);
        if (ret == EXIT_SUCCESS)
                log_notice("Stopped");
        return ret;
}
