/* problems: the open-problems gauge of /metrics. */
#include "problems.h"

#include <errno.h>
#include <stdio.h>

#include "../lib/buf.h"
#include "../lib/metrics.h"
#include "../lib/store_problems.h"
#include "gauge.h"

static int open_problems(struct store *s, const void *args, store_row_fn *row, void *ctx,
                         struct error *err) {
        (void) args;
        return store_problems_open(s, row, ctx, err);
}

static int service_lines(struct buf *out, const struct store_row *r) {
        char label[METRICS_LABEL_MAX], line[2 * METRICS_LABEL_MAX + 160];

        if (metrics_label(r->values[0], label) < 0)
                return -ENOMEM;
        snprintf(line, sizeof(line),
                 "doraloop_problems_open{service=\"%s\",known_error=\"false\"} %s\n"
                 "doraloop_problems_open{service=\"%s\",known_error=\"true\"} %s\n",
                 label, r->values[1], label, r->values[2]);
        return buf_puts(out, line);
}

int problems_metrics(const struct api *api, struct buf *out, struct error *err) {
        static const struct gauge g = {
                .help = "# HELP doraloop_problems_open Problems neither resolved nor deleted, "
                        "known errors (with a workaround) apart.\n"
                        "# TYPE doraloop_problems_open gauge\n",
                .query = open_problems,
                .lines = service_lines,
        };

        return gauge_write(api, &g, out, err);
}
