/* gauge: a /metrics gauge from the rows of one store query. */
#include "gauge.h"

#include <errno.h>

#include "../lib/buf.h"
#include "../lib/error.h"

struct gauge_read {
        const struct gauge *g;
        struct buf *out;
        size_t start;           /* out's length before the lines: a retry starts there */
};

static int add_lines(void *ctx, const struct store_row *r) {
        struct gauge_read *rd = ctx;

        return rd->g->lines(rd->out, r);
}

static int read_lines(struct store *s, void *ctx, struct error *err) {
        struct gauge_read *rd = ctx;

        rd->out->len = rd->start;
        if (rd->out->data)
                rd->out->data[rd->start] = '\0';
        return rd->g->query(s, rd->g->args, add_lines, rd, err);
}

int gauge_write(const struct api *api, const struct gauge *g, struct buf *out,
                struct error *err) {
        struct gauge_read rd = { g, out, 0 };
        int r = buf_puts(out, g->help);

        if (r == 0) {
                rd.start = out->len;
                r = api_with_store(api, read_lines, &rd, err);
        }
        if (r < 0 && r != -EIO)
                return error_set(err, ENOMEM, "unavailable", NULL, "Out of memory");
        return r < 0 ? r : 0;   /* the store answers its row count */
}
