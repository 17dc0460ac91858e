/* review_markdown: the review's agenda as Markdown. */
#include "review_markdown.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "buf.h"

#define CELL_MAX 200    /* characters of one text in a cell: a title, not a body */

/* The output and its first error: every write after one is skipped. */
struct md {
        struct buf *out;
        int r;
};

static void put(struct md *m, const char *s) {
        if (m->r == 0)
                m->r = buf_puts(m->out, s);
}

static void __attribute__((format(printf, 2, 3))) putf(struct md *m, const char *fmt, ...) {
        char line[512];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(line, sizeof(line), fmt, ap);
        va_end(ap);
        put(m, line);
}

/* A text from the data as one cell or heading: no line breaks, '|' escaped, no HTML
 * (a title "<script>" stays text in a wiki), at most CELL_MAX bytes (not cutting a
 * UTF-8 sequence). NULL or not a string: "-". */
static void text(struct md *m, const json_t *v) {
        const char *s = json_is_string(v) ? json_string_value(v) : NULL;
        char cell[CELL_MAX * 5 + 8];
        size_t at = 0, n = 0;

        if (!s || !*s) {
                put(m, "-");
                return;
        }
        for (; *s && at + 6 < sizeof(cell); s++, n++) {
                unsigned char c = (unsigned char) *s;

                if (n >= CELL_MAX && (c & 0xC0) != 0x80) {
                        memcpy(cell + at, "...", 3);
                        at += 3;
                        break;
                }
                if (c == '|' || c == '\\') {
                        cell[at++] = '\\';
                        cell[at++] = (char) c;
                } else if (c == '<') {
                        memcpy(cell + at, "&lt;", 4);
                        at += 4;
                } else if (c == '>') {
                        memcpy(cell + at, "&gt;", 4);
                        at += 4;
                } else if (c < 0x20 || c == 0x7F) {
                        cell[at++] = ' ';
                } else {
                        cell[at++] = (char) c;
                }
        }
        cell[at] = '\0';
        put(m, cell);
}

static void field(struct md *m, const json_t *o, const char *key) {
        text(m, json_object_get(o, key));
}

/* A number as the JSON has it: integers whole, others with at most 4 decimals (0.8,
 * 41.6); null "-". */
static void number(struct md *m, const json_t *v) {
        if (json_is_integer(v)) {
                putf(m, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        } else if (json_is_real(v) && isfinite(json_real_value(v))) {
                char s[64];
                size_t n;

                snprintf(s, sizeof(s), "%.4f", json_real_value(v));
                n = strlen(s);
                while (n > 0 && s[n - 1] == '0')
                        s[--n] = '\0';
                if (n > 0 && s[n - 1] == '.')
                        s[--n] = '\0';
                put(m, s);
        } else {
                put(m, "-");
        }
}

static int64_t integer(const json_t *o, const char *key) {
        const json_t *v = json_object_get(o, key);

        return json_is_number(v) ? (int64_t) llround(json_number_value(v)) : 0;
}

/* Seconds as "2d 3h", "1h 30m", "5m 10s", "40s"; null "-". */
static void duration(struct md *m, const json_t *v) {
        int64_t s;

        if (!json_is_number(v)) {
                put(m, "-");
                return;
        }
        s = (int64_t) llround(json_number_value(v));
        if (s >= 86400)
                putf(m, "%" PRId64 "d %" PRId64 "h", s / 86400, s % 86400 / 3600);
        else if (s >= 3600)
                putf(m, "%" PRId64 "h %" PRId64 "m", s / 3600, s % 3600 / 60);
        else if (s >= 60)
                putf(m, "%" PRId64 "m %" PRId64 "s", s / 60, s % 60);
        else
                putf(m, "%" PRId64 "s", s);
}

/* A list of strings, ", "-separated ("-" when empty). */
static void names(struct md *m, const json_t *list) {
        size_t i;
        const json_t *v;

        if (json_array_size(list) == 0) {
                put(m, "-");
                return;
        }
        json_array_foreach(list, i, v) {
                if (i)
                        put(m, ", ");
                text(m, v);
        }
}

static void table(struct md *m, const char *head) {
        put(m, "\n| ");
        put(m, head);
        put(m, " |\n|");
        for (const char *c = head; *c; c++)
                if (*c == '|')
                        put(m, "---|");
        put(m, "---|\n");
}

static void section(struct md *m, const char *title, const json_t *list) {
        putf(m, "\n### %s\n", title);
        if (json_array_size(list) == 0)
                put(m, "\nNone.\n");
}

static void failures(struct md *m, const json_t *list) {
        size_t i;
        const json_t *f;

        section(m, "Failed deployments", list);
        if (json_array_size(list) == 0)
                return;
        table(m, "Deployment | Environment | Finished | Incidents | Followed by");
        json_array_foreach(list, i, f) {
                put(m, "| "), field(m, f, "deployment");
                put(m, " | "), field(m, f, "environment");
                put(m, " | "), field(m, f, "finished_at");
                put(m, " | "), names(m, json_object_get(f, "incidents"));
                put(m, " | "), field(m, f, "followed_by");
                put(m, " |\n");
        }
}

static void factors(struct md *m, const json_t *list) {
        size_t i;
        const json_t *f;

        if (json_array_size(list) == 0) {
                put(m, "-");
                return;
        }
        json_array_foreach(list, i, f) {
                if (i)
                        put(m, ", ");
                field(m, f, "dimension");
                if (json_is_string(json_object_get(f, "category")))
                        put(m, "/"), field(m, f, "category");
                put(m, " ("), field(m, f, "role"), put(m, ")");
        }
}

static void incidents(struct md *m, const json_t *list) {
        size_t i;
        const json_t *x;

        section(m, "Incidents", list);
        if (json_array_size(list) == 0)
                return;
        table(m, "Incident | Title | Severity | Opened | Resolved | Downtime | Factors");
        json_array_foreach(list, i, x) {
                put(m, "| "), field(m, x, "incident");
                put(m, " | "), field(m, x, "title");
                put(m, " | "), field(m, x, "severity");
                put(m, " | "), field(m, x, "opened_at");
                put(m, " | "), field(m, x, "resolved_at");
                put(m, " | "), duration(m, json_object_get(x, "downtime_seconds"));
                put(m, " | "), factors(m, json_object_get(x, "factors"));
                put(m, " |\n");
        }
}

static void support(struct md *m, const json_t *s) {
        const json_t *features = json_object_get(s, "features");
        size_t i;
        const json_t *f;

        put(m, "\n### Support\n\n");
        putf(m, "%" PRId64 " opened, %" PRId64 " resolved, %" PRId64 " open at the end, "
             "median resolution ", integer(s, "opened"), integer(s, "resolved"),
             integer(s, "open_now"));
        duration(m, json_object_get(s, "median_resolution_seconds"));
        putf(m, ", %" PRId64 " customers, %" PRId64 " linked to incidents.\n",
             integer(s, "customers"), integer(s, "linked_to_incidents"));
        if (json_array_size(features) == 0)
                return;
        table(m, "Feature | Opened | Customers");
        json_array_foreach(features, i, f) {
                put(m, "| "), field(m, f, "feature");
                put(m, " | "), number(m, json_object_get(f, "opened"));
                put(m, " | "), number(m, json_object_get(f, "customers"));
                put(m, " |\n");
        }
}

/* The evidence of an insight: "incidents INC-1, INC-2; deployments d-7". */
static void evidence(struct md *m, const json_t *e) {
        static const char *const kinds[] = { "incidents", "problems", "observations",
                                             "deployments" };
        bool any = false;

        for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
                const json_t *list = json_object_get(e, kinds[k]);

                if (json_array_size(list) == 0)
                        continue;
                putf(m, "%s%s ", any ? "; " : "", kinds[k]);
                names(m, list);
                any = true;
        }
        if (!any)
                put(m, "-");
}

static void insights(struct md *m, const json_t *list, int64_t awaiting) {
        size_t i;
        const json_t *x;

        putf(m, "\n### Insights awaiting a decision (%" PRId64 ")\n", awaiting);
        if (json_array_size(list) == 0) {
                put(m, "\nNone.\n");
                return;
        }
        if (awaiting > (int64_t) json_array_size(list))
                putf(m, "\nThe top %zu by score.\n", json_array_size(list));
        table(m, "# | Insight | Id | Score | Impact hours | Reach | Confidence | Recurrence | "
                 "Evidence");
        json_array_foreach(list, i, x) {
                const json_t *parts = json_object_get(x, "parts");

                putf(m, "| %zu | ", i + 1), field(m, x, "title");
                put(m, " | "), field(m, x, "id");
                put(m, " | "), number(m, json_object_get(x, "score"));
                put(m, " | "), number(m, json_object_get(parts, "impact_hours"));
                put(m, " | "), number(m, json_object_get(parts, "reach"));
                put(m, " | "), number(m, json_object_get(parts, "confidence"));
                put(m, " | "), number(m, json_object_get(parts, "recurrence"));
                put(m, " | "), evidence(m, json_object_get(x, "evidence"));
                put(m, " |\n");
        }
}

static void decisions(struct md *m, const json_t *list) {
        size_t i;
        const json_t *d;

        section(m, "Decisions taken", list);
        if (json_array_size(list) == 0)
                return;
        table(m, "Decided | Insight | Id | Decision | By | Reason | Score | Status now");
        json_array_foreach(list, i, d) {
                put(m, "| "), field(m, d, "decided_at");
                put(m, " | "), field(m, d, "title");
                put(m, " | "), field(m, d, "insight");
                put(m, " | "), field(m, d, "decision");
                put(m, " | "), field(m, d, "actor");
                put(m, " | "), field(m, d, "reason");
                put(m, " | "), number(m, json_object_get(d, "score"));
                put(m, " | "), field(m, d, "status");
                put(m, " |\n");
        }
}

static void service(struct md *m, const json_t *s) {
        const json_t *dep = json_object_get(s, "deployments");

        put(m, "\n## "), field(m, s, "service"), put(m, "\n\n");
        putf(m, "Deployments: %" PRId64 ", %" PRId64 " failed.\n", integer(dep, "count"),
             integer(dep, "failed"));
        failures(m, json_object_get(s, "failures"));
        incidents(m, json_object_get(s, "incidents"));
        support(m, json_object_get(s, "support"));
        insights(m, json_object_get(s, "insights"), integer(s, "insights_awaiting"));
        decisions(m, json_object_get(s, "decisions"));
}

int review_markdown(const json_t *doc, struct buf *out) {
        const json_t *window = json_object_get(doc, "window");
        const json_t *services = json_object_get(doc, "services");
        struct md m = { .out = out };
        size_t i;
        const json_t *s;

        put(&m, "# Review: "), field(&m, window, "from"), put(&m, " to ");
        field(&m, window, "to"), put(&m, "\n\n");
        put(&m, "Deployments to "), field(&m, doc, "environment");
        put(&m, "; incidents, support and decisions of the window; insights as they stand.\n");
        if (json_array_size(services) == 0)
                put(&m, "\nNothing to review.\n");
        json_array_foreach(services, i, s)
                service(&m, s);
        return m.r;
}
