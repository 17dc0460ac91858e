/* rca: GET /api/v1/rca: the figures of the window and the previous one, from the mirror
 * (daemon/mirror.c, lib/rcamirror.c), as JSON text. */
#include "rca.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "../lib/cube.h"
#include "../lib/buf.h"
#include "../lib/error.h"
#include "../lib/jsontext.h"
#include "../lib/metrics.h"
#include "../lib/rcamirror.h"
#include "../lib/store_rca.h"
#include "../lib/timefmt.h"
#include "mirror.h"
#include "params.h"
#include "reply.h"

/* "from" and "to" as API.md's times, "days" a number (a real when not whole): the same
 * "window" object as /api/v1/dora's. */
static int put_window(struct buf *b, int64_t from_us, int64_t to_us) {
        char from[TIMEFMT_LEN], to[TIMEFMT_LEN];
        int64_t span = to_us - from_us;
        int r = buf_puts(b, ",\"window\":{\"from\":");

        if (r == 0)
                r = jsontext_string(b, timefmt_format(from_us, from));
        if (r == 0)
                r = buf_puts(b, ",\"to\":");
        if (r == 0)
                r = jsontext_string(b, timefmt_format(to_us, to));
        if (r == 0)
                r = buf_puts(b, ",\"days\":");
        if (r == 0)
                r = span % CUBE_DAY_US == 0 ? jsontext_int(b, span / CUBE_DAY_US)
                                            : jsontext_real(b, (double) span / CUBE_DAY_US);
        return r ? r : buf_puts(b, "}");
}

/* The answer as JSON text: the window's figures, then service, window and the previous
 * window's figures. */
static int put_answer(struct buf *b, const struct params_window *p, const struct rca_sums *now,
                      const struct rca_sums *before) {
        int r = buf_puts(b, "{");

        if (r == 0)
                r = rca_sums_text(now, b);
        if (r == 0)
                r = buf_puts(b, ",\"service\":");
        if (r == 0)
                r = p->service ? jsontext_string(b, p->service) : buf_puts(b, "null");
        if (r == 0)
                r = put_window(b, p->from_us, p->to_us);
        if (r == 0)
                r = buf_puts(b, ",\"previous\":{");
        if (r == 0)
                r = rca_sums_text(before, b);
        return r ? r : buf_puts(b, "}}");
}

/* environment and bands are read (and checked) by params_window() but change nothing
 * here: incidents are not per environment. The answer is written as text (REPLY_JSON_TEXT):
 * a jansson tree of two windows' categories cost more than their sums. */
int rca_figures(const struct api *api, const struct api_request *req, json_t **ret_body,
                struct error *err) {
        struct rca_sums *now = NULL, *before = NULL;
        struct params_window p;
        struct mirror_session s;
        struct buf b;
        int r;

        r = params_window(req, &p, err);
        if (r)
                return r;
        r = mirror_begin(&s, api->mirror);
        if (r == 0) {
                r = mirror_rca(&s, p.service, p.from_us, p.to_us, &now);
                if (r == 0)
                        r = mirror_rca(&s, p.service, p.from_us - (p.to_us - p.from_us),
                                       p.from_us, &before);
                mirror_end(&s);
        }
        if (r < 0) {
                rca_sums_free(now);
                return reply_unavailable(err, &s.err, "the root-cause figures");
        }
        /* after mirror_end(): the other readers need not wait for the text */
        buf_init(&b, SIZE_MAX - 1);
        r = put_answer(&b, &p, now, before);
        rca_sums_free(now);
        rca_sums_free(before);
        *ret_body = r == 0 ? json_stringn_nocheck(b.data, b.len) : NULL;
        buf_free(&b);
        return *ret_body ? REPLY_JSON_TEXT : reply_oom(err);
}

struct gauge_lines {
        struct buf *out;
        int64_t from_us, to_us;
};

static int gauge_line(void *ctx, const char *service, const char *dimension,
                      int64_t incidents) {
        struct gauge_lines *g = ctx;
        char label[METRICS_LABEL_MAX], line[METRICS_LABEL_MAX + 128];

        if (metrics_label(service, label) < 0)
                return -ENOMEM;
        snprintf(line, sizeof(line),
                 "doraloop_incidents_by_dimension{service=\"%s\",dimension=\"%s\"} %" PRId64
                 "\n", label, dimension, incidents);
        return buf_puts(g->out, line) < 0 ? -ENOMEM : 0;
}

static int read_gauges(struct store *s, void *ctx, struct error *err) {
        struct gauge_lines *g = ctx;

        return store_rca_by_dimension(s, g->from_us, g->to_us, gauge_line, g, err);
}

int rca_metrics(const struct api *api, struct buf *out, struct error *err) {
        struct gauge_lines g = { .out = out };
        struct timespec now;

        clock_gettime(CLOCK_REALTIME, &now);
        g.to_us = (int64_t) now.tv_sec * 1000000 + now.tv_nsec / 1000;
        g.from_us = g.to_us - 30 * CUBE_DAY_US;
        int r = buf_puts(out, "# HELP doraloop_incidents_by_dimension Incidents opened in the "
                         "last 30 days with a contributing factor in the dimension (their own, "
                         "else their reviews').\n"
                         "# TYPE doraloop_incidents_by_dimension gauge\n");

        if (r == 0)
                r = api_with_store(api, read_gauges, &g, err);
        return r == -ENOMEM ? error_set(err, ENOMEM, "unavailable", NULL, "Out of memory") : r;
}
