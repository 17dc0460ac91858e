/* Unit tests for store_standby, against a real PostgreSQL database (DORALOOP_TEST_DB, made
 * by tests/test_unit.py), a primary: not in recovery, no lag. A real standby is
 * tests/integration/test_replica.py's. */
#include "store_standby.h"

#include <stdbool.h>
#include <stdio.h>

#include "check.h"
#include "error.h"
#include "fixture.h"
#include "store.h"

int main(int argc, char **argv) {
        const char *conninfo = fixture_db(argc, argv);
        struct error err = { 0 };
        struct store *s = NULL;
        bool standby = true;
        double lag = -1;

        if (!conninfo) {
                fprintf(stderr, "test_store_standby needs an empty database: DORALOOP_TEST_DB\n");
                return 2;
        }
        CHECK(store_open(conninfo, &s, &err) == 0);
        if (!s)
                return check_summary();
        CHECK(store_standby_lag(s, &standby, &lag, &err) == 0);
        CHECK(!standby);
        CHECK(lag == 0);
        store_close(s);
        return check_summary();
}
