/* import: `doraloopctl import FILE|- [--fourkeys]`: the file streamed to POST /api/v1/import
 * as it is read, never whole in memory; with --fourkeys each Four Keys row is mapped first
 * (fourkeys.h), and a row that cannot be mapped is sent as a blank line, so that the
 * daemon's line numbers stay the file's, and reported with its number. */
#include "ctl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../lib/buf.h"
#include "args.h"
#include "fourkeys.h"
#include "upload.h"

/* A Four Keys row bigger than this is refused as a line (the daemon bounds lines too). */
#define ROW_MAX (64u << 20)

struct reader {
        FILE *in;
        const char *name;
        uint64_t pos;           /* bytes read */
        bool fourkeys;
        /* --fourkeys: the mapped line waiting to be sent, and the rows refused */
        struct buf line;
        size_t sent;
        uint64_t row;
        char *row_text;
        size_t row_cap;
        json_t *refused;
};

static ssize_t read_plain(struct reader *r, char *buf, size_t max) {
        size_t n = fread(buf, 1, max, r->in);

        if (n == 0 && ferror(r->in)) {
                ctl_error("import: reading %s: %s", r->name, strerror(errno));
                return -1;
        }
        r->pos += n;
        return (ssize_t) n;
}

/* The next row mapped into r->line (a blank line when it cannot be); false at the end. */
static int next_row(struct reader *r) {
        ssize_t n = getline(&r->row_text, &r->row_cap, r->in);
        char why[256];

        if (n < 0) {
                if (ferror(r->in)) {
                        ctl_error("import: reading %s: %s", r->name, strerror(errno));
                        return -1;
                }
                return 0;
        }
        r->pos += (uint64_t) n;
        r->row++;
        buf_free(&r->line);
        buf_init(&r->line, ROW_MAX);
        r->sent = 0;
        while (n && (r->row_text[n - 1] == '\n' || r->row_text[n - 1] == '\r'))
                n--;
        if (n && fourkeys_map(r->row_text, (size_t) n, &r->line, why, sizeof(why)) < 0) {
                json_array_append_new(r->refused, json_pack("{s:I,s:s,s:s}", "line",
                                                            (json_int_t) r->row, "code",
                                                            "unmappable", "message", why));
                buf_free(&r->line);
                buf_init(&r->line, ROW_MAX);
        }
        return buf_puts(&r->line, "\n") == 0 ? 1 : -1;
}

static ssize_t read_fourkeys(struct reader *r, char *buf, size_t max) {
        size_t n;

        if (r->sent == r->line.len) {
                int more = next_row(r);

                if (more <= 0)
                        return more;
        }
        n = r->line.len - r->sent;
        if (n > max)
                n = max;
        memcpy(buf, r->line.data + r->sent, n);
        r->sent += n;
        return (ssize_t) n;
}

static ssize_t produce(void *arg, char *buf, size_t max) {
        struct reader *r = arg;

        return r->fourkeys ? read_fourkeys(r, buf, max) : read_plain(r, buf, max);
}

static const char import_usage[] =
        "Usage: doraloopctl import FILE|- [--fourkeys] [--json]\n"
        "Streams NDJSON history to POST /api/v1/import: one generic body ({\"type\":...}) or\n"
        "recorded delivery ({\"source\",\"headers\",\"body\"|\"raw\"}) a line; - reads stdin.\n"
        "--fourkeys reads a Four Keys events_raw export (bq extract --destination_format\n"
        "NEWLINE_DELIMITED_JSON) instead; rows that cannot be mapped are reported by line.\n"
        "A progress bar with rate and ETA on a terminal, plain lines otherwise. Exit 0 all\n"
        "lines taken, 1 some refused (each on stderr), 2 any error.\n"
        "Token: DORALOOP_ADMIN_TOKEN or --token-file.\n";

int cmd_import(const struct ctl *cc, int argc, char **argv) {
        struct ctl c = *cc;
        const char *file = NULL;
        bool fourkeys = false;
        const struct args_option opts[] = { { "--fourkeys", NULL, &fourkeys },
                                            { NULL, NULL, NULL } };
        struct reader r = { 0 };
        struct upload_source s;
        struct stat st;
        int ret = args_parse(&c, argc, argv, opts, &file, 1, 1, import_usage);

        if (ret != ARGS_OK)
                return ret == ARGS_HELP ? CTL_OK : CTL_ERROR;
        r.name = strcmp(file, "-") == 0 ? "stdin" : file;
        r.in = strcmp(file, "-") == 0 ? stdin : fopen(file, "r");
        if (!r.in) {
                ctl_error("import: cannot open %s: %s", file, strerror(errno));
                return CTL_ERROR;
        }
        r.fourkeys = fourkeys;
        r.refused = json_array();
        buf_init(&r.line, ROW_MAX);
        s = (struct upload_source) { .produce = produce, .arg = &r, .pos = &r.pos,
                                     .total = fstat(fileno(r.in), &st) == 0 &&
                                                      S_ISREG(st.st_mode) ? (uint64_t) st.st_size
                                                                          : 0 };
        ret = r.refused ? upload_import(&c, &s, r.refused) : CTL_ERROR;
        if (r.in != stdin)
                fclose(r.in);
        buf_free(&r.line);
        free(r.row_text);
        json_decref(r.refused);
        return ret;
}
