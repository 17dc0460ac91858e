/* json_parse: what one body costs jansson, parse plus free, with and without
 * JSON_REJECT_DUPLICATES and with malloc or the per-delivery arena (lib/arena.c), the way
 * lib/delivery.c parses. Built and run by bench/json (see bench/README.md).
 *   json_parse FILE [ITERATIONS [ROUNDS [VARIANT]]]
 * Each round times ITERATIONS parses of each variant in turn (interleaved, so drifting load
 * hits all four alike) on this thread's CPU clock; the figure is the median round. VARIANT
 * (1-4) runs that one only, for counting instructions under callgrind. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "arena.h"

struct variant {
        const char *name;
        size_t flags;
        int arena;
        double us[64];
};

static size_t mallocs;

static double cpu_us(void) {
        struct timespec ts;

        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
        return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmp(const void *a, const void *b) {
        double x = *(const double *) a, y = *(const double *) b;

        return x < y ? -1 : x > y;
}

/* One parse and free as delivery_normalize does it; 0, or -1 when the body does not parse. */
static int once(const char *body, size_t len, const struct variant *v) {
        struct arena a;
        json_error_t jerr;
        json_t *doc;

        if (v->arena)
                arena_begin(&a, 8 * len, ARENA_CAP_MAX);
        doc = json_loadb(body, len, v->flags, &jerr);
        json_decref(doc);
        if (v->arena)
                arena_end(&a);
        return doc ? 0 : -1;
}

static void *counting_malloc(size_t n) {
        mallocs++;
        return malloc(n);
}

int main(int argc, char **argv) {
        struct variant vs[] = {
                { "malloc, JSON_REJECT_DUPLICATES", JSON_REJECT_DUPLICATES, 0, { 0 } },
                { "malloc, duplicates allowed", 0, 0, { 0 } },
                { "arena, JSON_REJECT_DUPLICATES", JSON_REJECT_DUPLICATES, 1, { 0 } },
                { "arena, duplicates allowed", 0, 1, { 0 } },
        };
        int iters = argc > 2 ? atoi(argv[2]) : 2000, rounds = argc > 3 ? atoi(argv[3]) : 9;
        int only = argc > 4 ? atoi(argv[4]) : 0;
        FILE *f = argc > 1 ? fopen(argv[1], "rb") : NULL;
        char *body;
        long len;
        json_error_t jerr;
        json_t *doc;

        if (!f || iters < 1 || rounds < 1 || rounds > 64 || only < 0 || only > 4) {
                fprintf(stderr, "usage: json_parse FILE [ITERATIONS [ROUNDS<=64 [VARIANT]]]\n");
                return 2;
        }
        fseek(f, 0, SEEK_END);
        len = ftell(f);
        rewind(f);
        body = malloc((size_t) len + 1);
        if (!body || fread(body, 1, (size_t) len, f) != (size_t) len)
                return 1;
        fclose(f);

        /* How many allocations one parse makes, counted through the same hook. */
        json_set_alloc_funcs(counting_malloc, free);
        doc = json_loadb(body, (size_t) len, JSON_REJECT_DUPLICATES, &jerr);
        json_decref(doc);
        if (!doc) {
                fprintf(stderr, "%s: %s\n", argv[1], jerr.text);
                return 1;
        }
        arena_install(); /* a variant without a scope is plain malloc through the hook */

        for (int r = 0; r < rounds; r++)
                for (size_t i = 0; i < sizeof(vs) / sizeof(vs[0]); i++) {
                        double t0 = cpu_us();

                        if (only && (size_t) only != i + 1)
                                continue;
                        for (int k = 0; k < iters; k++)
                                if (once(body, (size_t) len, &vs[i]) < 0)
                                        return 1;
                        vs[i].us[r] = (cpu_us() - t0) / iters;
                }
        printf("%s: %ld bytes, %zu allocations a parse; %d rounds of %d parses, "
               "median round (min..max), thread CPU time per parse + free:\n",
               argv[1], len, mallocs, rounds, iters);
        for (size_t i = 0; i < sizeof(vs) / sizeof(vs[0]); i++) {
                if (only && (size_t) only != i + 1)
                        continue;
                qsort(vs[i].us, (size_t) rounds, sizeof(double), cmp);
                printf("  %-32s %7.1f us (%.1f..%.1f)  %5.1f MB/s\n", vs[i].name,
                       vs[i].us[rounds / 2], vs[i].us[0], vs[i].us[rounds - 1],
                       len / vs[i].us[rounds / 2]);
        }
        free(body);
        return 0;
}
