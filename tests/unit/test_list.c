/* Unit tests for list (comma-separated values) and the lookups built on it. */
#include "list.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "normalize.h"

#include "check.h"

static bool is_b(const char *item, size_t len, const void *ctx) {
        (void) ctx;
        return len == 1 && item[0] == 'b';
}

static bool count_all(const char *item, size_t len, const void *ctx) {
        (void) item, (void) len, (void) ctx;
        return true;
}

int main(void) {
        struct normalize_options o = normalize_defaults();
        char buf[64], *s;

        CHECK(list_visit(" a , b,,b ", is_b, NULL) == 2);       /* trimmed, empty skipped */
        CHECK(list_visit(" a , b,, c ", count_all, NULL) == 3);
        CHECK(list_visit(NULL, count_all, NULL) == 0);
        CHECK(list_visit("", count_all, NULL) == 0);

        CHECK(normalize_in_list("production, prod", "PROD"));
        CHECK(!normalize_in_list("production, prod", "staging"));

        /* service_map: the first entry for a name wins; no entry: the repository's name. */
        o.service_map = "acme/shop = storefront, acme/shop=other, PAY=payments";
        s = normalize_repo_service(&o, "acme/shop");
        CHECK_STR(s, "storefront");
        free(s);
        s = normalize_service(&o, "pay");
        CHECK_STR(s, "payments");
        free(s);
        s = normalize_repo_service(&o, "group/sub/ledger");
        CHECK_STR(s, "ledger");
        free(s);
        o.service_map = "acme/shop=";                           /* no service: ignored */
        s = normalize_repo_service(&o, "acme/shop");
        CHECK_STR(s, "shop");
        free(s);

        /* Change keys: the earliest standing alone, of any configured project. */
        CHECK_STR(normalize_change_key("fix OPS-7 then CHG-12", "CHG, OPS", buf, sizeof(buf)),
                  "OPS-7");
        CHECK(normalize_change_key("XCHG-12 and CHG-12a", "CHG", buf, sizeof(buf)) == NULL);
        CHECK_STR(normalize_change_key("CHG-5-faster-checkout", "CHG", buf, sizeof(buf)),
                  "CHG-5");
        CHECK(normalize_change_key(NULL, "CHG", buf, sizeof(buf)) == NULL);
        /* list_split: trimmed, empties skipped; more than max or a buf too short is -E2BIG,
         * never a silent cut. */
        {
                char split[32];
                const char *items[3];

                CHECK(list_split(" production , ,prod ", split, sizeof(split), items, 3) == 2);
                CHECK_STR(items[0], "production");
                CHECK_STR(items[1], "prod");
                CHECK(list_split(NULL, split, sizeof(split), items, 3) == 0);
                CHECK(list_split("a,b,c,d", split, sizeof(split), items, 3) == -E2BIG);
                CHECK(list_split("a,b,c", split, sizeof(split), items, 3) == 3);
                CHECK(list_split("0123456789012345678901234567890123", split, sizeof(split),
                                 items, 3) == -E2BIG);
        }
        return check_summary();
}
