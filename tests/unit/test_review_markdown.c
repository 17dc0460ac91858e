/* Unit tests for review_markdown: a whole agenda (GET /api/v1/review's JSON) as Markdown,
 * its tables and their order; webhook text escaped so that it stays one cell ('|', '\',
 * HTML, line breaks, long titles cut on a UTF-8 boundary); empty lists as "None."; missing
 * and mistyped members as "-" or zero, never a crash; the output's bound as -E2BIG. */
#include "review_markdown.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "check.h"

/* The Markdown of doc (JSON text), malloc'd; NULL when it does not parse or fails. */
static char *render(const char *doc_text, size_t max, int *ret) {
        json_error_t jerr;
        json_t *doc = json_loads(doc_text, 0, &jerr);
        struct buf out;
        char *md;

        if (!doc) {
                fprintf(stderr, "bad test JSON: %s\n", jerr.text);
                *ret = -EINVAL;
                return NULL;
        }
        buf_init(&out, max);
        *ret = review_markdown(doc, &out);
        json_decref(doc);
        md = buf_steal(&out);
        buf_free(&out);
        return md;
}

static int starts(const char *s, const char *prefix) {
        return strncmp(s, prefix, strlen(prefix)) == 0;
}

static const char full[] =
        "{\"window\":{\"from\":\"2024-05-01T00:00:00Z\",\"to\":\"2024-05-08T00:00:00Z\"},"
        "\"environment\":\"production\",\"services\":[{\"service\":\"api\","
        "\"deployments\":{\"count\":12,\"failed\":2},"
        "\"failures\":[{\"deployment\":\"d-7\",\"environment\":\"production\","
        "\"finished_at\":\"2024-05-02T10:00:00Z\",\"incidents\":[\"INC-1\",\"INC-2\"],"
        "\"followed_by\":\"rollback\"}],"
        "\"incidents\":[{\"incident\":\"INC-1\",\"title\":\"a|b\\\\c <script>x</script>\\nnext\","
        "\"severity\":\"sev1\",\"opened_at\":\"2024-05-02T10:05:00Z\","
        "\"resolved_at\":\"2024-05-02T11:35:00Z\",\"downtime_seconds\":5400,"
        "\"factors\":[{\"dimension\":\"technological\",\"category\":\"capacity\","
        "\"role\":\"primary\"},{\"dimension\":\"process\",\"category\":null,"
        "\"role\":\"contributing\"}]}],"
        "\"support\":{\"opened\":7,\"resolved\":5,\"open_now\":2,"
        "\"median_resolution_seconds\":183600,\"customers\":3,\"linked_to_incidents\":1,"
        "\"features\":[{\"feature\":\"saved-cards\",\"opened\":4,\"customers\":2}]},"
        "\"insights_awaiting\":3,"
        "\"insights\":[{\"id\":\"failing_changes/api\",\"title\":\"api: 2 of 12 failed\","
        "\"score\":41.6,\"parts\":{\"impact_hours\":13,\"reach\":2,\"confidence\":0.8,"
        "\"recurrence\":1},\"evidence\":{\"incidents\":[\"INC-1\"],\"problems\":[],"
        "\"observations\":[],\"deployments\":[\"d-7\",\"d-9\"]}}],"
        "\"decisions\":[{\"decided_at\":\"2024-05-03T09:00:00Z\",\"title\":\"t\","
        "\"insight\":\"slow_restore/api\",\"decision\":\"dismiss\",\"actor\":\"ana\","
        "\"reason\":\"known | fixed\",\"score\":2.5,\"status\":\"dismissed\"}]}]}";

static void test_full(void) {
        int r;
        char *md = render(full, 1 << 20, &r);

        CHECK(r == 0 && md);
        if (!md)
                return;
        CHECK(starts(md, "# Review: 2024-05-01T00:00:00Z to 2024-05-08T00:00:00Z\n\n"
                         "Deployments to production;"));
        CHECK(strstr(md, "\n## api\n\nDeployments: 12, 2 failed.\n") != NULL);
        CHECK(strstr(md, "| Deployment | Environment | Finished | Incidents | Followed by |\n"
                         "|---|---|---|---|---|\n"
                         "| d-7 | production | 2024-05-02T10:00:00Z | INC-1, INC-2 | rollback |\n")
              != NULL);
        /* '|' and '\' escaped, HTML as entities, the line break a space: one cell */
        CHECK(strstr(md, "| INC-1 | a\\|b\\\\c &lt;script&gt;x&lt;/script&gt; next | sev1 | "
                         "2024-05-02T10:05:00Z | 2024-05-02T11:35:00Z | 1h 30m | "
                         "technological/capacity (primary), process (contributing) |\n")
              != NULL);
        CHECK(strstr(md, "<script>") == NULL);
        CHECK(strstr(md, "7 opened, 5 resolved, 2 open at the end, median resolution 2d 3h, "
                         "3 customers, 1 linked to incidents.\n") != NULL);
        CHECK(strstr(md, "| saved-cards | 4 | 2 |\n") != NULL);
        CHECK(strstr(md, "### Insights awaiting a decision (3)\n\nThe top 1 by score.\n")
              != NULL);
        CHECK(strstr(md, "| 1 | api: 2 of 12 failed | failing_changes/api | 41.6 | 13 | 2 | "
                         "0.8 | 1 | incidents INC-1; deployments d-7, d-9 |\n") != NULL);
        CHECK(strstr(md, "| 2024-05-03T09:00:00Z | t | slow_restore/api | dismiss | ana | "
                         "known \\| fixed | 2.5 | dismissed |\n") != NULL);
        /* the sections in the answer's order */
        CHECK(strstr(md, "### Failed deployments") < strstr(md, "### Incidents") &&
              strstr(md, "### Incidents") < strstr(md, "### Support") &&
              strstr(md, "### Support") < strstr(md, "### Insights") &&
              strstr(md, "### Insights") < strstr(md, "### Decisions taken"));
        free(md);
}

/* Empty lists are "None."; no services at all, "Nothing to review." */
static void test_empty(void) {
        int r;
        char *md = render("{\"window\":{\"from\":\"a\",\"to\":\"b\"},\"environment\":\"prod\","
                          "\"services\":[{\"service\":\"web\",\"deployments\":{\"count\":0,"
                          "\"failed\":0},\"failures\":[],\"incidents\":[],\"support\":{"
                          "\"opened\":0,\"median_resolution_seconds\":null,\"features\":[]},"
                          "\"insights_awaiting\":0,\"insights\":[],\"decisions\":[]}]}",
                          1 << 20, &r);

        CHECK(r == 0 && md);
        if (md) {
                CHECK(strstr(md, "### Failed deployments\n\nNone.\n") != NULL);
                CHECK(strstr(md, "### Incidents\n\nNone.\n") != NULL);
                CHECK(strstr(md, "median resolution -,") != NULL);
                CHECK(strstr(md, "| Feature |") == NULL);
                CHECK(strstr(md, "### Insights awaiting a decision (0)\n\nNone.\n") != NULL);
                CHECK(strstr(md, "### Decisions taken\n\nNone.\n") != NULL);
                CHECK(strstr(md, "The top") == NULL);
        }
        free(md);
        md = render("{\"window\":{\"from\":\"a\",\"to\":\"b\"},\"services\":[]}", 1 << 20, &r);
        CHECK(r == 0 && md && strstr(md, "\nNothing to review.\n") != NULL);
        CHECK(md && strstr(md, "Deployments to -;") != NULL);  /* no environment member */
        free(md);
}

/* Members missing or of the wrong type: "-" for texts and numbers, 0 for counts. */
static void test_mistyped(void) {
        int r;
        char *md = render("{\"window\":7,\"services\":[{\"service\":[1],\"deployments\":\"x\","
                          "\"failures\":[{\"deployment\":5,\"incidents\":\"INC-1\"},7],"
                          "\"incidents\":[{\"incident\":\"I\",\"downtime_seconds\":\"long\","
                          "\"factors\":{}}],\"support\":[],\"insights_awaiting\":\"many\","
                          "\"insights\":[{\"title\":\"\",\"score\":\"high\",\"parts\":[],"
                          "\"evidence\":{\"incidents\":\"INC-9\"}}],\"decisions\":{}}]}",
                          1 << 20, &r);

        CHECK(r == 0 && md);
        if (md) {
                CHECK(starts(md, "# Review: - to -\n"));
                CHECK(strstr(md, "\n## -\n\nDeployments: 0, 0 failed.\n") != NULL);
                CHECK(strstr(md, "| - | - | - | - | - |\n") != NULL);      /* 5, "INC-1" */
                CHECK(strstr(md, "| I | - | - | - | - | - | - |\n") != NULL);
                CHECK(strstr(md, "0 opened, 0 resolved, 0 open at the end") != NULL);
                CHECK(strstr(md, "### Insights awaiting a decision (0)\n") != NULL);
                CHECK(strstr(md, "| 1 | - | - | - | - | - | - | - | - |\n") != NULL);
                CHECK(strstr(md, "### Decisions taken\n\nNone.\n") != NULL);
        }
        free(md);
        /* not even an object */
        md = render("[1,2]", 1 << 20, &r);
        CHECK(r == 0 && md && strstr(md, "Nothing to review.") != NULL);
        free(md);
}

/* A title past 200 bytes is cut before a UTF-8 sequence's continuation bytes, then "...". */
static void test_long_title(void) {
        char doc[2048], title[700];
        size_t at = 0;
        int r;
        char *md, *cell, *end;

        memset(title, 'a', 199);
        at = 199;
        for (int i = 0; i < 100; i++) {         /* "é" is two bytes: 0xC3 0xA9 */
                title[at++] = (char) 0xC3;
                title[at++] = (char) 0xA9;
        }
        title[at] = '\0';
        snprintf(doc, sizeof(doc), "{\"services\":[{\"service\":\"api\",\"incidents\":[{"
                 "\"incident\":\"I\",\"title\":\"%s\"}]}]}", title);
        md = render(doc, 1 << 20, &r);
        CHECK(r == 0 && md);
        cell = md ? strstr(md, "| I | ") : NULL;
        CHECK(cell != NULL);
        if (cell) {
                cell += 6;
                end = strstr(cell, " | ");
                CHECK(end != NULL);
                /* 199 'a', one whole "é" (bytes 199, 200), then "..." */
                CHECK(end && end - cell == 199 + 2 + 3);
                CHECK(end && strncmp(end - 5, "\xC3\xA9...", 5) == 0);
        }
        free(md);
}

/* The output's bound reached: -E2BIG, not a partial success. */
static void test_bound(void) {
        int r;
        char *md = render(full, 64, &r);

        CHECK(r == -E2BIG);
        CHECK(!md || strlen(md) <= 64);
        free(md);
}

int main(void) {
        test_full();
        test_empty();
        test_mistyped();
        test_long_title();
        test_bound();
        return check_summary();
}
