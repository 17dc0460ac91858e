/* log: the daemon's only way to log. Structured journald entries under systemd (fields
 * SOURCE, DELIVERY_ID, EVENT, STATUS), else "<N>message" lines on stderr. Thread-safe. */
#pragma once

#include <stdbool.h>
#include <syslog.h>
#include <time.h>

/* Optional structured fields of a log entry; NULL fields are left out. */
struct log_fields {
        const char *source;
        const char *delivery_id;
        const char *event;
        const char *status;
};

/* Decides once where logs go: journald when stderr is the journal stream. */
void log_open(void);

void log_full(int priority, const struct log_fields *f, const char *file, int line,
              const char *func, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

#define log_at(prio, f, ...) log_full(prio, f, __FILE__, __LINE__, __func__, __VA_ARGS__)
#define log_error(...) log_at(LOG_ERR, NULL, __VA_ARGS__)
#define log_warning(...) log_at(LOG_WARNING, NULL, __VA_ARGS__)
#define log_notice(...) log_at(LOG_NOTICE, NULL, __VA_ARGS__)
#define log_info(...) log_at(LOG_INFO, NULL, __VA_ARGS__)

/* A limit on how often one message repeats: at most burst lines per interval seconds. */
struct log_ratelimit {
        int interval, burst;
        time_t start;
        int count, suppressed;
};
#define LOG_RATELIMIT(i, b) { .interval = (i), .burst = (b) }

/* Whether to log now; counts what it suppresses (reported with the next line let through).
 * Call under the caller's own serialization or accept approximate counts. */
bool log_ratelimit_pass(struct log_ratelimit *rl, int *ret_suppressed);
