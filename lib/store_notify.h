/* store_notify: LISTEN on a connection of its own and wait for NOTIFYs, so a daemon hears
 * at once that another one committed rows (lib/store.h's STORE_NOTIFY_CHANNEL). A struct
 * store is one connection: one thread at a time. */
#pragma once

struct error;
struct store;

/* LISTENs on STORE_NOTIFY_CHANNEL. Returns 0 or -EIO (a standby refuses LISTEN). */
int store_listen(struct store *s, struct error *err) __attribute__((warn_unused_result));

/* Waits up to timeout_ms for notifications on s, or until wake_fd (-1: none) is readable.
 * Returns how many notifications arrived (0: timeout or woken), or -EIO once the
 * connection is lost. */
int store_wait_notify(struct store *s, int wake_fd, int timeout_ms, struct error *err)
        __attribute__((warn_unused_result));
