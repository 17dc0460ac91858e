/* rca: GET /api/v1/rca: the figures of the window and the previous one, from the mirror
 * (daemon/mirror.c, lib/rcamirror.c), as JSON. */
#include "rca.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "../lib/cube.h"
#include "../lib/buf.h"
#include "../lib/error.h"
#include "../lib/metrics.h"
#include "../lib/rcamirror.h"
#include "../lib/store_rca.h"
#include "../lib/timefmt.h"
#include "mirror.h"
#include "params.h"
#include "reply.h"

static json_t *time_json(int64_t us) {
        char buf[TIMEFMT_LEN];

        return json_string(timefmt_format(us, buf));
}

/* The same "window" object as /api/v1/dora's. */
static json_t *window_json(int64_t from_us, int64_t to_us) {
        int64_t span = to_us - from_us;
        json_t *days = span % CUBE_DAY_US == 0 ? json_integer((json_int_t) (span / CUBE_DAY_US))
                                               : json_real((double) span / CUBE_DAY_US);

        return json_pack("{s:o,s:o,s:o}", "from", time_json(from_us), "to", time_json(to_us),
                         "days", days);
}

/* environment and bands are read (and checked) by params_window() but change nothing
 * here: incidents are not per environment. */
int rca_figures(const struct api *api, const struct api_request *req, json_t **ret_body,
                struct error *err) {
        struct rca_sums *now = NULL, *before = NULL;
        struct params_window p;
        struct mirror_session s;
        json_t *o, *previous;
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
        /* the JSON after mirror_end(): the other readers need not wait for it */
        o = rca_sums_json(now);
        previous = rca_sums_json(before);
        rca_sums_free(now);
        rca_sums_free(before);
        if (!o || !previous ||
            json_object_set_new(o, "service", p.service ? json_string(p.service)
                                                        : json_null()) < 0 ||
            json_object_set_new(o, "window", window_json(p.from_us, p.to_us)) < 0) {
                json_decref(o);
                json_decref(previous);
                return reply_oom(err);
        }
        if (json_object_set_new(o, "previous", previous) < 0) {
                json_decref(o);
                return reply_oom(err);
        }
        *ret_body = o;
        return 0;
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
