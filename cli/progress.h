/* progress: how far a long command is. On a terminal a bar redrawn in place with the rate
 * and the time left; otherwise a plain line every few seconds, which a log keeps well. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

struct progress {
        const char *what;       /* "import", "replay" */
        const char *unit;       /* "bytes", or a noun for counts ("deliveries") */
        bool tty;
        uint64_t total;         /* 0: unknown (no percentage, no ETA) */
        uint64_t done;
        double started, last_drawn;
        bool drawn;
};

/* Starts one on stderr; tty picks the bar. */
void progress_start(struct progress *p, const char *what, const char *unit, bool tty,
                    uint64_t total);

/* Records done (and total, when it became known) and redraws when it is time to. */
void progress_update(struct progress *p, uint64_t done, uint64_t total);

/* The final state, drawn once more; the bar's line is ended. */
void progress_end(struct progress *p);
