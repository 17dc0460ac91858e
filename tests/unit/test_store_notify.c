/* Unit tests for store_notify, against a real PostgreSQL database (DORALOOP_TEST_DB, made
 * by tests/test_unit.py): a batch committed on another connection is heard, a wait with
 * nothing to hear times out or returns at once when woken, and a listener whose server
 * process is terminated says so as -EIO. Also store_retries() starts at zero. */
#include "store_notify.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "delivery.h"
#include "error.h"
#include "fixture.h"
#include "store.h"

static const struct store_model model = { "production", 24 };

static double now_s(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static void test_hears_a_batch(struct store *listener, struct store *writer) {
        struct delivery *d = fixture_generic("notify-1", "{\"type\":\"deployment\",\"id\":"
                                             "\"n1\",\"service\":\"api\",\"environment\":"
                                             "\"production\",\"status\":\"success\"}",
                                             INT64_C(1715040000000000));
        struct error err = { 0 };

        CHECK(d && store_save_batch(writer, &model, &d, 1, &err) == 0);
        delivery_free(d);
        CHECK(store_wait_notify(listener, -1, 5000, &err) >= 1);
        /* Heard once: nothing more waits. */
        CHECK(store_wait_notify(listener, -1, 50, &err) == 0);
}

static void test_wakes_and_times_out(struct store *listener) {
        struct error err = { 0 };
        int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        uint64_t one = 1;
        double began = now_s();

        CHECK(store_wait_notify(listener, fd, 100, &err) == 0);
        CHECK(now_s() - began >= 0.09);
        CHECK(write(fd, &one, sizeof(one)) == sizeof(one));
        began = now_s();
        CHECK(store_wait_notify(listener, fd, 10000, &err) == 0);
        CHECK(now_s() - began < 1.0);
        close(fd);
}

static void test_lost_connection(const char *conninfo, struct store *listener) {
        struct error err = { 0 };
        FILE *psql = fixture_psql_open(conninfo);
        int r = -1;

        CHECK(psql != NULL);
        if (!psql)
                return;
        CHECK(fixture_psql_send(psql, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                "WHERE query LIKE 'LISTEN %';") == 0);
        CHECK(fixture_psql_close(psql) == 0);
        for (int i = 0; i < 50 && r != -EIO; i++)
                r = store_wait_notify(listener, -1, 100, &err);
        CHECK(r == -EIO);
        CHECK(err.msg[0] != '\0');
}

int main(int argc, char **argv) {
        const char *conninfo = fixture_db(argc, argv);
        struct store *writer, *listener = NULL;
        struct store_retries rt;
        struct error err = { 0 };

        if (!conninfo) {
                fprintf(stderr, "test_store_notify needs an empty database: DORALOOP_TEST_DB\n");
                return 2;
        }
        writer = fixture_store(conninfo);
        CHECK(writer != NULL);
        CHECK(store_open(conninfo, &listener, &err) == 0);
        if (!writer || !listener)
                return check_summary();
        CHECK(store_listen(listener, &err) == 0);
        store_retries(&rt);
        CHECK(rt.serialization == 0 && rt.deadlock == 0 && rt.unique == 0);
        test_hears_a_batch(listener, writer);
        test_wakes_and_times_out(listener);
        test_lost_connection(conninfo, listener);
        store_close(listener);
        store_close(writer);
        return check_summary();
}
