/* problems: the open-problems gauge of /metrics. */
#include "problems.h"

#include <errno.h>
#include <stdio.h>

#include "../lib/buf.h"
#include "../lib/error.h"
#include "../lib/metrics.h"
#include "../lib/store_problems.h"

struct gauge_read {
        struct buf *out;
        size_t start;           /* out's length before the lines: a retry starts there */
};

static int add_lines(void *ctx, const struct store_row *r) {
        struct gauge_read *g = ctx;
        char label[METRICS_LABEL_MAX], line[2 * METRICS_LABEL_MAX + 160];

        if (metrics_label(r->values[0], label) < 0)
                return -ENOMEM;
        snprintf(line, sizeof(line),
                 "doraloop_problems_open{service=\"%s\",known_error=\"false\"} %s\n"
                 "doraloop_problems_open{service=\"%s\",known_error=\"true\"} %s\n",
                 label, r->values[1], label, r->values[2]);
        return buf_puts(g->out, line);
}

static int read_gauge(struct store *s, void *ctx, struct error *err) {
        struct gauge_read *g = ctx;

        g->out->len = g->start;
        if (g->out->data)
                g->out->data[g->start] = '\0';
        return store_problems_open(s, add_lines, g, err);
}

int problems_metrics(const struct api *api, struct buf *out, struct error *err) {
        struct gauge_read g = { out, 0 };
        int r = buf_puts(out, "# HELP doraloop_problems_open Problems neither resolved nor "
                         "deleted, known errors (with a workaround) apart.\n"
                         "# TYPE doraloop_problems_open gauge\n");

        if (r == 0) {
                g.start = out->len;
                r = api_with_store(api, read_gauge, &g, err);
        }
        if (r < 0 && r != -EIO)
                return error_set(err, ENOMEM, "unavailable", NULL, "Out of memory");
        return r;
}
