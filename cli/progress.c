/* progress: a bar with rate and ETA on a terminal, plain lines elsewhere (progress.h). */
#include "progress.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#define BAR_WIDTH 30
#define TTY_EVERY 0.1           /* seconds between redraws of the bar */
#define PLAIN_EVERY 5.0         /* seconds between plain lines */

static double now(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

/* n in the progress's unit: "12.3 MiB" for bytes, "1234 deliveries" otherwise. */
static void amount(const struct progress *p, double n, char *buf, size_t len) {
        if (strcmp(p->unit, "bytes") == 0) {
                static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
                size_t u = 0;

                while (n >= 1024 && u < 4) {
                        n /= 1024;
                        u++;
                }
                snprintf(buf, len, u ? "%.1f %s" : "%.0f %s", n, units[u]);
        } else {
                snprintf(buf, len, "%.0f %s", n, p->unit);
        }
}

static void draw(struct progress *p, double t) {
        double elapsed = t - p->started, rate = elapsed > 0 ? (double) p->done / elapsed : 0;
        char done[32], total[32], per[32], eta[32] = "--:--";

        amount(p, (double) p->done, done, sizeof(done));
        amount(p, (double) p->total, total, sizeof(total));
        amount(p, rate, per, sizeof(per));
        if (p->total && rate > 0 && p->done <= p->total) {
                long s = (long) ((double) (p->total - p->done) / rate + 0.5);

                snprintf(eta, sizeof(eta), "%ld:%02ld", s / 60, s % 60);
        }
        if (p->tty) {
                char bar[BAR_WIDTH + 1];
                unsigned filled = p->total ? (unsigned) (BAR_WIDTH * (p->done > p->total
                                  ? 1.0 : (double) p->done / (double) p->total)) : 0;

                memset(bar, '#', filled);
                memset(bar + filled, '-', BAR_WIDTH - filled);
                bar[BAR_WIDTH] = '\0';
                if (p->total)
                        fprintf(stderr, "\r%s [%s] %3.0f%% %s / %s, %s/s, ETA %s\033[K", p->what,
                                bar, 100.0 * (double) filled / BAR_WIDTH, done, total, per, eta);
                else
                        fprintf(stderr, "\r%s %s, %s/s\033[K", p->what, done, per);
        } else if (p->total) {
                fprintf(stderr, "%s: %s of %s (%.0f%%), %s/s, ETA %s\n", p->what, done, total,
                        100.0 * (double) p->done / (double) p->total, per, eta);
        } else {
                fprintf(stderr, "%s: %s, %s/s\n", p->what, done, per);
        }
        fflush(stderr);
        p->last_drawn = t;
        p->drawn = true;
}

void progress_start(struct progress *p, const char *what, const char *unit, bool tty,
                    uint64_t total) {
        *p = (struct progress) { .what = what, .unit = unit, .tty = tty, .total = total,
                                 .started = now() };
        if (tty)
                draw(p, p->started);
}

void progress_update(struct progress *p, uint64_t done, uint64_t total) {
        double t = now();

        p->done = done;
        if (total)
                p->total = total;
        if (t - p->last_drawn >= (p->tty ? TTY_EVERY : PLAIN_EVERY))
                draw(p, t);
}

void progress_end(struct progress *p) {
        draw(p, now());
        if (p->tty)
                fputc('\n', stderr);
}
