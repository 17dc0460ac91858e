/* Unit tests for idset: membership by (source, id) pair, growth, removal and clearing. */
#include "idset.h"

#include <stdio.h>

#include "check.h"

int main(void) {
        struct idset *s = idset_new();
        char id[32];

        CHECK(s != NULL);
        CHECK(idset_size(s) == 0);
        CHECK(!idset_contains(s, "github", "a"));

        CHECK(idset_add(s, "github", "a") == 1);
        CHECK(idset_add(s, "github", "a") == 0);        /* already there */
        CHECK(idset_add(s, "gitlab", "a") == 1);        /* another source, another pair */
        CHECK(idset_size(s) == 2);
        CHECK(idset_contains(s, "github", "a"));
        CHECK(!idset_contains(s, "jira", "a"));
        /* The pair is two strings, not their concatenation. */
        CHECK(idset_add(s, "ab", "c") == 1);
        CHECK(!idset_contains(s, "a", "bc"));
        CHECK(idset_add(s, "", "") == 1);
        CHECK(idset_contains(s, "", ""));

        /* Many more than the initial buckets: all found, none twice. */
        {
                int added = 0;

                for (int i = 0; i < 20000; i++) {
                        snprintf(id, sizeof(id), "delivery-%d", i);
                        added += idset_add(s, "generic", id) == 1;
                }
                CHECK(added == 20000);
        }
        CHECK(idset_size(s) == 20004);
        for (int i = 0; i < 20000; i += 997) {
                snprintf(id, sizeof(id), "delivery-%d", i);
                CHECK(idset_contains(s, "generic", id));
                CHECK(idset_add(s, "generic", id) == 0);
        }

        idset_remove(s, "github", "a");
        idset_remove(s, "github", "a");                 /* absent: nothing happens */
        idset_remove(s, "nope", "nope");
        CHECK(!idset_contains(s, "github", "a"));
        CHECK(idset_contains(s, "gitlab", "a"));
        CHECK(idset_size(s) == 20003);

        idset_clear(s);
        CHECK(idset_size(s) == 0);
        CHECK(!idset_contains(s, "gitlab", "a"));
        CHECK(idset_add(s, "gitlab", "a") == 1);        /* usable after clearing */
        CHECK(idset_free(s) == NULL);
        CHECK(idset_free(NULL) == NULL);
        return check_summary();
}
