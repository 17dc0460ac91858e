/* Unit tests for changectl: each rule of the deployment gate, in its order, with the
 * sentence it gives the pipeline. */
#include "changectl.h"

#include <string.h>

#include "check.h"
#include "event.h"
#include "timefmt.h"

#define HOUR_US (3600LL * 1000000)

static bool gate(const struct changectl_record *r, const char *service, const char *env,
                 int64_t now, char *reason) {
        return changectl_gate(r, service, env, "production,prod", now, reason, 256);
}

int main(void) {
        static const char *const checkout[] = { "checkout", "payments" };
        struct changectl_record r = { .found = true, .key = "CHG-1", .status = "approved",
                                      .planned_start = TIME_UNSET, .planned_end = TIME_UNSET };
        int64_t now;
        char reason[256];

        CHECK(timefmt_parse("2024-05-06T12:00:00Z", &now) == 0);

        /* Outside production, anything goes, known or not. */
        r.found = false;
        CHECK(gate(&r, "checkout", "staging", now, reason));
        CHECK_STR(reason, "staging is not a production environment: no change approval is needed");
        CHECK(!gate(&r, "checkout", "prod", now, reason));
        CHECK_STR(reason, "CHG-1 is unknown: no change-management tool has reported it");

        /* Approved or implementing only. */
        r.found = true;
        CHECK(gate(&r, "checkout", "production", now, reason));
        CHECK_STR(reason, "CHG-1 is approved");
        r.status = "implementing";
        CHECK(gate(&r, "checkout", "production", now, reason));
        r.status = "pending";
        CHECK(!gate(&r, "checkout", "production", now, reason));
        CHECK_STR(reason, "CHG-1 is pending; it must be approved");
        r.status = "declined";
        CHECK(!gate(&r, "checkout", "production", now, reason));

        /* Inside the planned window, whichever ends it has. */
        r.status = "approved";
        r.planned_start = now + HOUR_US;
        CHECK(!gate(&r, "checkout", "production", now, reason));
        CHECK_STR(reason, "CHG-1's planned window opens at 2024-05-06T13:00:00Z");
        r.planned_start = now - HOUR_US;
        r.planned_end = now - 1;
        CHECK(!gate(&r, "checkout", "production", now, reason));
        CHECK_STR(reason, "CHG-1's planned window closed at 2024-05-06T11:59:59.999999Z");
        r.planned_end = now;                            /* the end itself is inside */
        CHECK(gate(&r, "checkout", "production", now, reason));
        CHECK_STR(reason, "CHG-1 is approved and inside its planned window "
                          "(2024-05-06T11:00:00Z to 2024-05-06T12:00:00Z)");
        r.planned_start = TIME_UNSET;
        CHECK(gate(&r, "checkout", "production", now, reason));
        CHECK_STR(reason, "CHG-1 is approved and inside its planned window "
                          "(open to 2024-05-06T12:00:00Z)");

        /* It covers the services it names; naming none covers any. */
        r.planned_end = TIME_UNSET;
        r.services = checkout;
        r.n_services = 2;
        CHECK(gate(&r, "payments", "production", now, reason));
        CHECK(!gate(&r, "search", "production", now, reason));
        CHECK_STR(reason, "CHG-1 does not cover service search");
        CHECK(gate(&r, NULL, "production", now, reason));      /* no service asked */
        r.n_services = 0;
        CHECK(gate(&r, "search", "production", now, reason));

        /* No environment given: the rules of production apply. */
        r.status = "pending";
        CHECK(!gate(&r, "checkout", NULL, now, reason));

        /* A short reason buffer is cut, never overrun. */
        {
                char small[8];

                CHECK(!changectl_gate(&r, "checkout", NULL, "production", now, small,
                                      sizeof(small)));
                CHECK(strlen(small) == sizeof(small) - 1);
        }
        return check_summary();
}
