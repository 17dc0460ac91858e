/* doraloopd: the process. Reads the configuration, brings the schema up to date, starts
 * the writers and the HTTP server, then waits for signals (signalfd) until told to stop. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "../lib/error.h"
#include "../lib/store.h"
#include "api.h"
#include "config.h"
#include "dbpool.h"
#include "http.h"
#include "log.h"
#include "writer.h"

#ifndef DORALOOP_VERSION
#define DORALOOP_VERSION "0.0.0"
#endif

#define DRAIN_TIMEOUT_MS 20000

static void usage(void) {
        printf("Usage: doraloopd [--config PATH] [--listen HOST:PORT] [--db CONNINFO]\n"
               "                 [--spool-dir DIR] [--KEY VALUE ...]\n"
               "\n"
               "Receives CI/CD and Jira webhooks, stores them in PostgreSQL and serves DORA\n"
               "metrics. Every key below can be set in the config file (default %s,\n"
               "'key = value' lines), as an environment variable DORALOOP_<KEY>, or as a\n"
               "flag --<key> (with - or _); flags win over the environment, which wins over\n"
               "the file. Secrets may also come from $CREDENTIALS_DIRECTORY/<key>.\n"
               "\n"
               "Keys:\n", CONFIG_DEFAULT_PATH);
        config_print_keys();
        printf("\n  --help      show this help\n  --version   show the version\n");
}

static int migrate(const struct config *cfg) {
        struct store *s = NULL;
        struct error err = { 0 };
        int r;

        r = store_open(cfg->db, &s, &err);
        if (r == 0)
                r = store_migrate(s, &err);
        store_close(s);
        if (r < 0) {
                log_error("Failed to prepare the database: %s", err.msg);
                return r;
        }
        if (r > 0)
                log_info("Applied %d database migration(s)", r);
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

/* Blocks the signals we handle (threads inherit the mask) and returns a signalfd. */
static int signals_open(void) {
        sigset_t set;

        sigemptyset(&set);
        sigaddset(&set, SIGTERM);
        sigaddset(&set, SIGINT);
        sigaddset(&set, SIGHUP);
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

int main(int argc, char **argv) {
        struct config *cfg = NULL;
        struct writer *writer = NULL;
        struct dbpool *pool = NULL;
        struct http *http = NULL;
        struct api api;
        char errbuf[512];
        int sfd = -1, ret = EXIT_FAILURE, listen_fd;

        for (int i = 1; i < argc; i++) {
                if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
                        usage();
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
        warn_open_doors(cfg);

        sfd = signals_open();
        if (sfd < 0) {
                log_error("Failed to set up signal handling: %s", strerror(errno));
                goto out;
        }
        if (migrate(cfg) < 0)
                goto out;
        {
                struct writer_options wo = {
                        .conninfo = cfg->db,
                        .threads = (int) cfg->writers,
                        .batch_max = (size_t) cfg->batch_max,
                        .queue_max = (size_t) cfg->queue_max,
                };
                int r = writer_start(&wo, &writer);

                if (r < 0) {
                        log_error("Failed to start the writer: %s", strerror(-r));
                        goto out;
                }
        }
        pool = dbpool_new(cfg->db, 8);
        if (!pool) {
                log_error("Out of memory");
                goto out;
        }
        api = (struct api) { .cfg = cfg, .pool = pool, .writer = writer };
        listen_fd = inherited_listener();
        if (http_start(&(struct http_options) { .cfg = cfg, .writer = writer, .api = &api,
                                                .listen_fd = listen_fd },
                       &http, errbuf, sizeof(errbuf)) < 0) {
                log_error("Failed to start HTTP: %s", errbuf);
                goto out;
        }
        if (listen_fd >= 0)
                log_notice("doraloopd %s serving on the socket systemd passed in",
                           DORALOOP_VERSION);
        else
                log_notice("doraloopd %s listening on http://%s/ (post webhooks to "
                           "http://%s/hooks/<github|gitlab|jira|jenkins|generic>)",
                           DORALOOP_VERSION, cfg->listen, cfg->listen);
        (void) sd_notify(0, "READY=1\nSTATUS=Accepting webhooks");

        for (;;) {
                struct signalfd_siginfo si;
                ssize_t n = read(sfd, &si, sizeof(si));

                if (n < 0 && errno == EINTR)
                        continue;
                if (n != sizeof(si)) {
                        log_error("Failed to read signals: %s", strerror(errno));
                        break;
                }
                if (si.ssi_signo == SIGHUP) {
                        log_notice("SIGHUP: configuration reload is not supported yet; "
                                   "restart to apply changes");
                        continue;
                }
                log_notice("Received %s; finishing requests in flight",
                           strsignal((int) si.ssi_signo));
                (void) sd_notify(0, "STOPPING=1\nSTATUS=Finishing requests in flight");
                ret = EXIT_SUCCESS;
                break;
        }
        if (!http_drain(http, DRAIN_TIMEOUT_MS))
                log_warning("Requests still in flight after %d ms; closing them",
                            DRAIN_TIMEOUT_MS);
out:
        /* The writer goes last but one: it flushes what the HTTP side handed over, and
         * resumes the connections it wakes before MHD closes them. */
        writer = writer_stop(writer);
        http = http_stop(http);
        pool = dbpool_free(pool);
        cfg = config_free(cfg);
        if (sfd >= 0)
                close(sfd);
        if (ret == EXIT_SUCCESS)
                log_notice("Stopped");
        return ret;
}
